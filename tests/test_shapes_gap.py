"""shapes_gap end to end on a tiny Janus: both sides on the same questions, the judge swappable, the gap paired."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from hermes_bench.cli import main
from hermes_bench.judges import ExactJudge
from hermes_bench.runners.shapes_gap import metrics
from hermes_bench.world.datasets import homologous
from hermes_bench.world.questions import QUESTION_TYPES


def _eval(model, out, *extra):
    result = CliRunner().invoke(main, ["eval", "--model", str(model), "--tasks", "shapes_gap", "--limit", "9",
                                       "--batch-size", "8", "--no-progress", "--output", str(out), *extra])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "results.json").read_text())
    rows = [json.loads(line) for line in (out / "samples_shapes_gap.jsonl").read_text().splitlines()]
    return run, rows


@pytest.fixture(scope="module")
def exact_run(tiny_janus, tmp_path_factory):
    return _eval(tiny_janus, tmp_path_factory.mktemp("gap"))


def test_both_sides_answer_the_same_caption_questions(exact_run):
    run, rows = exact_run
    items = homologous(300, 4004)[:9]
    assert [r["question"] for r in rows] == [q.text for it in items for q in it.questions]
    assert [r["truth"] for r in rows] == [t for it in items for t in it.truths]
    assert {r["judge"] for r in rows} == {"exact"}
    result = run["results"]["shapes_gap"]
    u = np.mean([r["understanding_correct"] for r in rows])
    g = np.mean([r["generation_correct"] for r in rows])
    assert result["understanding"] == pytest.approx(u) and result["generation"] == pytest.approx(g)
    assert run["headlines"]["shapes_gap"]["value"] == pytest.approx(u - g)
    lo, hi = run["headlines"]["shapes_gap"]["ci"]
    assert lo <= u - g <= hi
    assert {f"understanding/{k}" for k in QUESTION_TYPES} <= set(result)
    assert "U" not in run["summary"]  # a gap task reports its own gap; U and G come from the benchmarks


def test_self_judge_scores_generation_with_the_models_own_answers(tiny_janus, tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "gap_self.yaml").write_text(
        "task: gap_self\nkind: gap\nbenchmark: shapes_gap\nscenes: {n: 300, seed: 4004}\njudge: self\n"
        "metadata: {version: 1, headline: gap}\n")
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_janus), "--tasks", "gap_self", "--include-path",
                                       str(tmp_path / "tasks"), "--limit", "9", "--batch-size", "8",
                                       "--no-progress", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples_gap_self.jsonl").read_text().splitlines()]
    assert {r["judge"] for r in rows} == {"self"}
    assert [r["generation_correct"] for r in rows] == [r["self_correct"] for r in rows]
    items = homologous(300, 4004)[:9]  # the oracle still reads every saved image, beside the self judge
    images = [Image.open(tmp_path / "out" / f"images/gap_self/{i:05d}.png").convert("RGB") for i in range(9)]
    said = ExactJudge().answer(images, [list(it.questions) for it in items])
    assert [r["generation_exact_correct"] for r in rows] == [
        a == t for it, answers in zip(items, said, strict=True) for a, t in zip(answers, it.truths, strict=True)]


def test_self_agreement_counts_images_where_both_judges_give_the_same_verdict():
    def row(scene, exact, self_):
        return {"scene_index": scene, "type": "color", "understanding_correct": True, "generation_correct": exact,
                "generation_exact_correct": exact, "self_correct": self_}

    rows = [row(0, True, True), row(0, True, True),  # both: right
            row(1, True, False), row(1, True, True),  # oracle right, self says wrong
            row(2, False, False), row(2, True, True)]  # both: wrong
    found = metrics(rows)
    assert found["self_agreement"] == pytest.approx(2 / 3)
    assert found["gap"] == pytest.approx(1 - 5 / 6)


def test_an_api_judge_answers_about_the_generated_images_once(tiny_janus, tmp_path, openai_server):
    args = ["eval", "--model", str(tiny_janus), "--tasks", "shapes_gap", "--limit", "3", "--judge",
            "openai:shapes-vlm", "--no-progress", "--output", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "samples_shapes_gap.jsonl").read_text().splitlines()]
    assert {r["judge"] for r in rows} == {"openai:shapes-vlm"} and len(openai_server.requests) == len(rows)
    images = [Image.open(tmp_path / f"images/shapes_gap/{i:05d}.png").convert("RGB") for i in range(3)]
    items = homologous(300, 4004)[:3]
    said = [openai_server.answer(image, q.text) == "Yes" for image, it in zip(images, items, strict=True)
            for q in it.questions]
    truths = [t for it in items for t in it.truths]
    assert [r["generation_correct"] for r in rows] == [s == t for s, t in zip(said, truths, strict=True)]
    (tmp_path / "results.json").unlink()
    assert CliRunner().invoke(main, args).exit_code == 0
    assert len(openai_server.requests) == len(rows)  # the rerun read the judge's answers back
