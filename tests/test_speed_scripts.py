"""POPE, MME and MMMU end to end on local mirrors in the hub's schemas, through the real loading code."""

import json
import os
import subprocess
import sys

import datasets
import pytest
from click.testing import CliRunner
from hub_mirror import MMMU_FEATURES, POPE_FEATURES, build_mme, build_mmmu, build_pope, pope_rows, write_repo

from hermes_bench.cli import main
from hermes_bench.tasks.mme import mme_utils
from hermes_bench.tasks.pope import pope_utils


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    build_pope(root)
    build_mme(root)
    build_mmmu(root)
    return root


@pytest.fixture(scope="module")
def real_run(mirror, tiny_janus, tmp_path_factory):
    out = tmp_path_factory.mktemp("real")
    tasks = "pope_full,pope,mme,mme_lmms_eval,mmmu"
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_janus), "--tasks", tasks, "--data-dir", str(mirror),
                                       "--output", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    return out


def test_every_task_runs_and_reports_its_breakdown(real_run):
    run = json.loads((real_run / "results.json").read_text())
    results = run["results"]
    for split in ("pope_random", "pope_popular", "pope_adversarial"):
        assert set(results[split]) == {"accuracy", "precision", "recall", "f1", "yes_ratio"}
    assert results["pope_full"]["f1"] == pytest.approx(
        sum(results[s]["f1"] for s in ("pope_random", "pope_popular", "pope_adversarial")) / 3)
    assert {"mme_perception_score", "mme_cognition_score", "existence", "OCR", "code_reasoning"} <= set(results["mme"])
    assert results["mme"]["count"] is None  # a subtask without questions is not a zero
    disciplines = run["headlines"]["mmmu"]["details"]
    assert len(disciplines) == 6 and "mmmu_tech_engineering" in disciplines
    # instance-weighted: overall = correct / 60 questions
    rows = [json.loads(line) for f in sorted(real_run.glob("samples_mmmu_*.jsonl")) for line in f.open()]
    assert len(rows) == 60
    assert results["mmmu"]["acc"] == pytest.approx(sum(r["acc"]["correct"] for r in rows) / 60)
    assert run["headlines"]["mmmu"]["value"] == pytest.approx(results["mmmu"]["acc"])
    assert run["headlines"]["mme"]["details"] == {"mme_cognition_score": results["mme"]["mme_cognition_score"]}
    for name, headline in run["headlines"].items():
        assert headline["ci"][0] <= headline["value"] <= headline["ci"][1], name


def test_leaderboard_shows_splits_disciplines_cognition_and_paper_rows(real_run):
    result = CliRunner().invoke(main, ["leaderboard", str(real_run), "--details", "--reference"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["model", "task", "metric", "value", "source"]
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[1:3]) for line in lines[2:]}
    assert {("pope_full", "pope_adversarial"), ("mme", "mme_cognition_score"), ("mmmu", "mmmu_health_medicine"),
            ("geneval", "position"), ("homologous_gap", "generation")} <= rows
    assert "HermesFlow 1.3B (reported)" in result.output and "1249.7" in result.output and "70.22" in result.output


def test_pope_and_mme_hooks_on_fixed_raw_outputs():
    # POPE: gold y n y n, raw "Yes." "No, it is not." "There is no cat." "yes" -> pred y n n y
    # TP 1, FP 1, FN 1, TN 1 -> accuracy .5, precision .5, recall .5, F1 .5, yes-ratio .5
    from hermes_bench.scoring import mme, pope
    docs = [{"answer": a} for a in ("yes", "no", "yes", "no")]
    items = [pope_utils.process_results(d, [r])["f1"]
             for d, r in zip(docs, ["Yes.", "No, it is not.", "There is no cat.", "yes"], strict=True)]
    assert [pope.accuracy(items), pope.precision(items), pope.recall(items), pope.f1(items),
            pope.yes_ratio(items)] == [0.5, 0.5, 0.5, 0.5, 0.5]
    # MME: OCR image both right (acc 1, acc+ 1 -> 200); code_reasoning one 'other' (acc .5, acc+ 0 -> 50)
    rows = [("OCR", "Yes", "Yes"), ("OCR", "No", "no"), ("code_reasoning", "Yes", "Yes"),
            ("code_reasoning", "No", "Maybe")]
    items = [mme_utils.process_results({"answer": g, "question_id": f"{c}/1.png", "category": c}, [r])["OCR"]
             for c, g, r in rows]
    assert mme.perception_score(items) == 200.0 and mme.cognition_score(items) == 50.0
    assert mme_utils.OCR(items) == 200.0 and mme_utils.code_reasoning(items) == 50.0


def test_mme_prompt_variants():
    doc = {"question": "Is there a dog? Please answer yes or no."}
    assert mme_utils.doc_to_text(doc) == "<image>Is there a dog? Please answer yes or no."
    assert mme_utils.doc_to_text_lmms_eval(doc) == ("<image>Is there a dog?\n"
                                                    "Answer the question using a single word or phrase.")


def _assert_clean_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]


def _eval(model, root, tasks, out, *extra):
    return CliRunner().invoke(main, ["eval", "--model", str(model), "--tasks", tasks, "--data-dir", str(root),
                                     "--output", str(out), "--no-progress", *extra])


def test_missing_field(tmp_path, tiny_janus):
    features = datasets.Features({k: v for k, v in POPE_FEATURES.items() if k != "answer"})
    rows = [{k: v for k, v in r.items() if k != "answer"} for r in pope_rows("random", 2)]
    write_repo(tmp_path / "mirror", "lmms-lab/POPE", {("Full", "random"): rows}, features)
    result = _eval(tiny_janus, tmp_path / "mirror", "pope_random", tmp_path / "out")
    _assert_clean_error(result, "lmms-lab/POPE", "field answer is missing")
    assert not (tmp_path / "out" / "results.json").exists()


def test_wrong_split_name(tmp_path, tiny_janus, mirror):
    extra = tmp_path / "tasks"
    extra.mkdir()
    (extra / "pope_typo.yaml").write_text("include: " + str(pope_utils.__file__).replace("pope_utils.py", "")
                                          + "_pope_template.yaml\ntask: pope_typo\ndataset_kwargs:\n"
                                          "  path: lmms-lab/POPE\n  name: Full\n  split: adversrial\n"
                                          "  fields: [question]\ntest_split: adversrial\n"
                                          "metadata: {version: 1, headline: f1}\n")
    result = _eval(tiny_janus, mirror, "pope_typo", tmp_path / "out", "--include-path", str(extra))
    _assert_clean_error(result, "lmms-lab/POPE", "adversrial")


def test_undecodable_image(tmp_path, tiny_janus):
    rows = [{"id": "validation_Art_1", "question": "<image 1> What is it?", "options": "[]", "explanation": "",
             **{f"image_{k}": None for k in range(1, 8)}, "image_1": {"bytes": b"not an image", "path": None},
             "img_type": "[]", "answer": "x", "topic_difficulty": "Easy", "question_type": "open",
             "subfield": "Art"}]
    write_repo(tmp_path / "mirror", "MMMU/MMMU", {("Art", "validation"): rows}, MMMU_FEATURES)
    result = _eval(tiny_janus, tmp_path / "mirror", "mmmu_art", tmp_path / "out")
    _assert_clean_error(result, "MMMU", "validation_Art_1", "image_1")
    assert not (tmp_path / "out" / "results.json").exists()


def test_missing_mirror_folder(tmp_path, tiny_janus):
    result = _eval(tiny_janus, tmp_path, "pope_random", tmp_path / "out")
    _assert_clean_error(result, "lmms-lab/POPE", "mirror folder")


@pytest.mark.slow
def test_plain_lm_eval_runs_our_yaml_with_hf_multimodal(mirror, tiny_janus, tmp_path):
    """The same YAML under lm-eval's own CLI and its hf-multimodal model (README's command)."""
    from hermes_bench.registry import BUILTIN_TASKS

    env = {**os.environ, "HERMES_BENCH_DATA_DIR": str(mirror)}
    proc = subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf-multimodal", "--model_args",
                           f"pretrained={tiny_janus}", "--device", "cpu", "--include_path",
                           str(BUILTIN_TASKS / "pope"), "--tasks", "pope_random", "--limit", "2"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pope_random" in proc.stdout and "f1" in proc.stdout
