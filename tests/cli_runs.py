"""One eval and one alignment round of a tiny model through the CLI, as a user runs them (`--model DIR`)."""

import json
from pathlib import Path

from click.testing import CliRunner

from hermes_bench.cli import main


def eval_and_align(model_dir: Path, out: Path, records: int = 12, images: int = 4) -> tuple[dict, dict]:
    """results.json of `eval` on the shapes suite, and rounds.json of one generation-only round judged exactly
    (a random model's captions all score 0 against the scene graph)."""
    result = CliRunner().invoke(main, ["eval", "--model", str(model_dir), "--limit", "4", "--batch-size", "8",
                                       "--no-progress", "--output", str(out / "eval")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["align", "--model", str(model_dir), "--rounds", "1", "--records", str(records),
                                       "--images", str(images), "--steps", "2", "--train-batch-size", "2",
                                       "--gate-limit", "4", "--mode", "generation", "--judge", "exact", "--output",
                                       str(out / "align")])
    assert result.exit_code == 0, result.output
    return (json.loads((out / "eval" / "results.json").read_text()),
            json.loads((out / "align" / "rounds.json").read_text()))
