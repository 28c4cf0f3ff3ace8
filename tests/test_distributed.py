"""Two processes (torchrun, gloo on CPU) give the same results as one: the multi-GPU code path, at CPU size."""

import json

import pytest
from launch import run_python

pytestmark = pytest.mark.slow  # subprocesses, training or several processes


def _run(args: list[str], cwd, processes: int = 1):
    return run_python(["-m", "hermes_bench", *args], cwd, processes)


def test_two_processes_match_one(tiny_janus, tmp_path):
    args = ["eval", "--model", str(tiny_janus), "--device", "cpu", "--limit", "8", "--batch-size", "8",
            "--no-progress"]
    _run([*args, "--output", str(tmp_path / "one")], tmp_path)
    multi = _run([*args, "--output", str(tmp_path / "two")], tmp_path, processes=2)
    assert multi.stdout.count("results:") == 1  # only the main process reports
    caches = sorted(p.name for p in (tmp_path / "two" / "cache").iterdir())
    assert "understanding.rank1.jsonl" in caches and "generation.shapes_geneval.rank1.jsonl" in caches
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    for key in ("results", "summary", "headlines"):
        assert one[key] == two[key]


def test_align_on_two_processes_matches_one(tmp_path):
    """Curation and reference log-probs are shared out by batch, training by half-batches, the gate's eval as
    eval's; the main process decides, writes and reports."""
    args = ["align", "--rounds", "1", "--records", "40", "--images", "4", "--curation-batch-size", "8", "--steps",
            "10", "--train-batch-size", "4", "--gate-limit", "16", "--device", "cpu"]
    _run([*args, "--output", str(tmp_path / "one")], tmp_path)
    multi = _run([*args, "--output", str(tmp_path / "two")], tmp_path, processes=2)
    assert multi.stdout.count("rounds:") == 1
    one, two = tmp_path / "one", tmp_path / "two"
    for name in ("samples.json", "pairs.json"):
        assert (one / "round-1" / name).read_text() == (two / "round-1" / name).read_text()
    reference = [json.loads((run / "round-1" / "reference.json").read_text()) for run in (one, two)]
    assert list(reference[0]) == list(reference[1])
    assert all(reference[1][i] == pytest.approx(v, abs=1e-4) for i, v in reference[0].items())
    rows = [json.loads((run / "rounds.json").read_text())["rounds"] for run in (one, two)]
    assert len(rows[0]) == len(rows[1])
    for a, b in zip(*rows, strict=True):
        assert b == {**a, "final_loss": pytest.approx(a["final_loss"], rel=1e-4)}
