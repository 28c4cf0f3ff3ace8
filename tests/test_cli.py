"""The CLI end to end on a tiny Janus saved with save_pretrained, and its one-line errors."""

import json
import shutil

import pytest
from click.testing import CliRunner

from hermes_bench.cli import main

SMALL = ["--limit", "6", "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tiny_janus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_janus), "--output", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    return out


def test_eval_writes_results_samples_and_images(run_dir, tiny_janus):
    run = json.loads((run_dir / "results.json").read_text())
    assert set(run["headlines"]) == {"shapes_pope", "shapes_mme", "shapes_geneval"}
    for side in ("U", "G", "gap"):
        lo, hi = run["summary"][side]["ci"]
        assert lo <= run["summary"][side]["value"] <= hi
    assert run["summary"]["gap"]["value"] == pytest.approx(run["summary"]["U"]["value"] - run["summary"]["G"]["value"])
    assert {"shapes_pope_random", "shapes_pope_popular", "shapes_pope_adversarial"} <= set(run["results"])
    assert run["model"]["path"] == str(tiny_janus) and len(run["model"]["weights_sha256"]) == 64
    assert run["provenance"]["timings"]["model_s"] > 0 and run["provenance"]["packages"]["lm_eval"]
    rows = [json.loads(line) for line in (run_dir / "samples_shapes_pope_random.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {"prompt", "response", "f1"} <= set(rows[0])
    images = sorted((run_dir / "images" / "shapes_geneval").glob("*/samples/*.png"))
    assert len(images) == 6 * 4
    assert json.loads((images[0].parent.parent / "metadata.jsonl").read_text())["tag"]


def test_eval_also_writes_lm_evals_own_results_format(run_dir):
    from lm_eval.utils import make_table

    run = json.loads((run_dir / "results.json").read_text())
    [path] = (run_dir / "lm_eval").glob("*/results_*.json")
    lm = json.loads(path.read_text())
    assert lm["results"]["shapes_pope_random"]["f1,none"] == run["results"]["shapes_pope_random"]["f1"]
    assert lm["results"]["shapes_geneval"]["overall,none"] == run["headlines"]["shapes_geneval"]["value"]
    assert lm["results"]["shapes_geneval"]["overall_stderr,none"] == "N/A"
    assert lm["n-samples"]["shapes_mme"] == {"original": 320, "effective": 6}
    assert lm["n-samples"]["shapes_geneval"]["effective"] == 6 * 4  # images
    assert lm["higher_is_better"]["shapes_pope_random"]["f1"] is True
    assert set(lm["task_hashes"]) >= {"shapes_pope_random", "shapes_mme", "shapes_geneval"}
    assert lm["configs"]["shapes_geneval"]["guidance_scale"] > 0 and "guidance_scale,none" not in lm["results"][
        "shapes_geneval"]
    assert {"date", "versions", "n-shot", "config", "model_name", "lm_eval_version"} <= set(lm)
    assert run["date"].startswith(__import__("time").strftime("%Y-"))
    table = make_table(lm)  # lm-eval's own table of a results file
    assert "shapes_pope_random" in table and "shapes_geneval" in table


@pytest.mark.parametrize("fmt", ["md", "csv", "latex", "html"])
def test_leaderboard_formats(run_dir, fmt):
    result = CliRunner().invoke(main, ["leaderboard", str(run_dir), str(run_dir / "results.json"), "--format", fmt])
    assert result.exit_code == 0, result.output
    marker = {"md": "| model", "csv": "model,shapes_pope,shapes_pope_ci_low", "latex": "\\toprule",
              "html": "<table"}[fmt]
    assert marker in result.output and "gap" in result.output


def test_tasks_lists_both_kinds():
    result = CliRunner().invoke(main, ["tasks"])
    assert result.exit_code == 0
    rows = {cells[0]: cells[1] for cells in _table(result.output)}
    assert rows["shapes_geneval"] == "generation" and rows["shapes_pope"] == "understanding"


def test_help_and_version():
    runner = CliRunner()
    assert "--batch-size" in runner.invoke(main, ["eval", "--help"]).output
    assert "version" in runner.invoke(main, ["--version"]).output


def _table(markdown):
    return [[c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines()
            if line.startswith("|") and not line.startswith("|--")]


def _assert_clean_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0]


def test_unknown_task(tmp_path, tiny_janus):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_janus), "--tasks", "nope", "--output", str(out)])
    _assert_clean_error(result, "unknown task nope", "hermes-bench tasks")
    assert not out.exists()


def test_missing_model_folder(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--model", str(tmp_path / "missing"), "--output", str(out)])
    _assert_clean_error(result, "missing", "does not exist")
    assert not out.exists()


def test_malformed_task_yaml(tmp_path, tiny_janus):
    extra = tmp_path / "tasks"
    extra.mkdir()
    (extra / "broken.yaml").write_text("task: broken\noutput_type: [generate_until\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_janus), "--include-path", str(extra),
                                       "--output", str(out)])
    _assert_clean_error(result, "malformed task YAML", "broken.yaml")
    assert not out.exists()


@pytest.mark.parametrize("args, words", [
    (["eval", "--limit", "-1"], ["--limit", "-1"]),
    (["eval", "--batch-size", "0"], ["--batch-size"]),
    (["eval", "--device", "cuda:7"], ["cuda:7", "--device cpu"]),
    (["eval", "--device", "gpu"], ["unknown device 'gpu'"]),
    (["align", "--rounds", "0"], ["--rounds"]),
    (["align", "--records", "0"], ["--records"]),
    (["align", "--beta", "abc"], ["--beta", "'abc'"]),
    (["align", "--beta", "0.2,-1"], ["--beta", "above 0"]),
    (["align", "--lr", "0"], ["--lr"]),
    (["align", "--pairing", "latest"], ["--pairing", "on-policy"]),
    (["world", "train", "--guidance-scales", "two"], ["--guidance-scales"]),
    (["score", "geneval", "no_such_folder"], ["no_such_folder", "does not exist"]),
])
def test_bad_option_values_are_one_line(tmp_path, args, words):
    out = tmp_path / "out"
    _assert_clean_error(CliRunner().invoke(main, [*args, "--output", str(out)]), *words)
    assert not out.exists()


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "out"
    _assert_clean_error(CliRunner().invoke(main, ["eval", "--limit", "1", "--output", str(out)]), str(out))


def test_unreadable_image(run_dir, tmp_path, tiny_janus):
    out = tmp_path / "out"
    shutil.copytree(run_dir, out)
    (out / "results.json").unlink()
    broken = out / "images" / "shapes_geneval" / "00002" / "samples" / "0001.png"
    broken.write_bytes(b"not a png")
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_janus), "--output", str(out), *SMALL])
    _assert_clean_error(result, "cannot read image", "00002")
    assert not (out / "results.json").exists()


def test_embedded_default_runs_and_says_which_model(tmp_path):
    result = CliRunner().invoke(main, ["eval", "--output", str(tmp_path / "out"), "--limit", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "model: shapes-janus-tiny (embedded default" in result.output
    header = _table(result.output.split("model: ")[1].split("\n", 2)[2])[0]
    assert header[-3:] == ["U", "G", "gap"]


def test_generation_prompts_from_a_jsonl_file_are_validated(tmp_path, tiny_janus):
    extra = tmp_path / "tasks"
    extra.mkdir()
    (extra / "my_geneval.yaml").write_text(
        "task: my_geneval\nkind: generation\nprompts: {source: jsonl, path: prompts.jsonl}\nimages_per_prompt: 2\n"
        "detector: shapes\nmetadata: {version: 1, headline: overall}\n")
    good = {"tag": "colors", "prompt": "a red circle", "include": [{"class": "circle", "count": 1, "color": "red"}]}
    (extra / "prompts.jsonl").write_text(json.dumps(good) + "\n" + json.dumps({"tag": "colors", "prompt": "x"}) + "\n")
    args = ["eval", "--model", str(tiny_janus), "--tasks", "my_geneval", "--include-path", str(extra), "--no-progress"]
    _assert_clean_error(CliRunner().invoke(main, [*args, "--output", str(tmp_path / "bad")]),
                        "prompts.jsonl line 2", "include")
    (extra / "prompts.jsonl").write_text(json.dumps(good) + "\n")
    result = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "ok")])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "ok" / "results.json").read_text())
    assert set(run["results"]["my_geneval"]) == {"colors", "overall", "correct_images", "correct_prompts",
                                                 "guidance_scale"}
    assert "U" not in run["summary"] and "gap" not in run["summary"]
