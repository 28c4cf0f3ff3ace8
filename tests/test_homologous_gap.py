"""homologous_gap on a local dataset in the hub's layout: multiple-choice questions, self, model or API judge (a
local server that speaks the OpenAI protocol, see conftest)."""

import io
import json
import socket

import datasets
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from hermes_bench.cli import main
from hermes_bench.models import embedded_model_dir
from hermes_bench.models.api import STRICT_JUDGE, APIModel
from hermes_bench.models.base import IMAGE_PLACEHOLDER
from hermes_bench.world.datasets import homologous
from hermes_bench.world.scene import COLORS, Scene, SceneObject, render

TASK = ("task: {name}\nkind: gap\nbenchmark: homologous_gap\n"
        "dataset: {{path: {path}, split: test, image: picture, caption: text, questions: qa}}\n"
        "metadata: {{version: 1, headline: gap}}\n")


def _png(scene) -> dict:
    buffer = io.BytesIO()
    render(scene).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("homologous")
    rows = []
    for it in homologous(8, seed=77):
        qa = [{"question": q.text, "choices": ["yes", "no"], "answer": "yes" if t else "no"}
              for q, t in zip(it.questions, it.truths, strict=True)][:4]
        first = it.scene.objects[0]
        qa.append({"question": f"What colour is the {first.shape}?", "choices": list(COLORS),
                   "answer": first.color})
        rows.append({"picture": _png(it.scene), "text": it.caption, "qa": qa})
    features = datasets.Features({"picture": datasets.Image(), "text": datasets.Value("string"),
                                 "qa": [{"question": datasets.Value("string"), "answer": datasets.Value("string"),
                                         "choices": datasets.Sequence(datasets.Value("string"))}]})
    (root / "data").mkdir()
    datasets.Dataset.from_list(rows, features=features).to_parquet(root / "data" / "test-00000-of-00001.parquet")
    return root


def _eval(tmp_path, path, *extra, name="my_gap"):
    (tmp_path / "tasks").mkdir(exist_ok=True)
    (tmp_path / "tasks" / f"{name}.yaml").write_text(TASK.format(name=name, path=path))
    return CliRunner().invoke(main, ["eval", "--tasks", name, "--include-path", str(tmp_path / "tasks"),
                                     "--batch-size", "8", "--no-progress", "--output", str(tmp_path / "out"), *extra])


@pytest.mark.parametrize("judge", [None, "model"])
def test_gap_on_a_homologous_dataset(dataset_dir, tmp_path, judge):
    extra = ["--judge", str(embedded_model_dir())] if judge else []
    result = _eval(tmp_path, dataset_dir, *extra)
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples_my_gap.jsonl").read_text().splitlines()]
    assert len(rows) == 8 * 5 and len({r["path"] for r in rows}) == 8
    assert {r["judge"] for r in rows} == {str(embedded_model_dir()) if judge else "self"}
    colour_rows = [r for r in rows if r["question"].startswith("What colour")]
    assert all(r["truth"] in COLORS for r in colour_rows)
    u, g = np.mean([r["understanding_correct"] for r in rows]), np.mean([r["generation_correct"] for r in rows])
    assert u > 0.7  # the trained model reads its world, colour questions included
    assert run["results"]["my_gap"]["understanding"] == pytest.approx(u)
    headline = run["headlines"]["my_gap"]
    assert headline["value"] == pytest.approx(u - g) and headline["ci"][0] <= u - g <= headline["ci"][1]


def test_wrong_schema_is_one_line(dataset_dir, tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "bad_gap.yaml").write_text(
        TASK.format(name="bad_gap", path=dataset_dir).replace("questions: qa", "questions: missing_column"))
    result = CliRunner().invoke(main, ["eval", "--tasks", "bad_gap", "--include-path", str(tmp_path / "tasks"),
                                       "--no-progress", "--output", str(tmp_path / "out")])
    assert result.exit_code == 2 and "missing_column is missing" in result.output


def test_api_judge_answers_about_the_image_it_was_sent(openai_server):
    red = render(Scene((SceneObject("red", "circle", 0, 0),)))
    blue = render(Scene((SceneObject("blue", "square", 1, 2),)))
    said = APIModel("openai:shapes-vlm").answer([IMAGE_PLACEHOLDER + "Is there a red circle?", "Is it blue?"],
                                                [[red], [blue]], max_new_tokens=4)
    assert said == ["Yes", "Yes"]
    assert APIModel("openai:shapes-vlm").answer(["Is there a red circle?"], [[blue]]) == ["No"]
    first = openai_server.requests[0]
    assert first["temperature"] == 0 and first["max_tokens"] == 4
    assert first["messages"][0] == {"role": "system", "content": STRICT_JUDGE}
    assert [p["type"] for p in first["messages"][1]["content"]] == ["image_url", "text"]


def test_gap_with_an_api_judge_asks_each_question_once(dataset_dir, tmp_path, openai_server):
    result = _eval(tmp_path, dataset_dir, "--judge", "openai:shapes-vlm")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples_my_gap.jsonl").read_text().splitlines()]
    assert len(openai_server.requests) == len(rows) == 8 * 5 and {r["judge"] for r in rows} == {"openai:shapes-vlm"}
    for r in rows:  # the judge saw the very image the model generated
        expected = openai_server.answer(Image.open(tmp_path / "out" / r["path"]), r["question"]).lower()
        assert r["generation_answer"] == (expected if r["truth"] in ("yes", "no") else None)
    (tmp_path / "out" / "results.json").unlink()
    (tmp_path / "out" / "samples_my_gap.jsonl").unlink()
    assert _eval(tmp_path, dataset_dir, "--judge", "openai:shapes-vlm").exit_code == 0
    assert len(openai_server.requests) == 8 * 5  # a rerun reads the judge's answers back


@pytest.mark.parametrize("problem, words", [
    ("unknown model", ["openai:no-such-model", "NotFoundError", "model name"]),
    ("no server", ["APIConnectionError", "OPENAI_BASE_URL"]),
    ("no key", ["openai:shapes-vlm", "OPENAI_API_KEY"]),
])
def test_api_judge_problems_are_one_line(dataset_dir, tmp_path, openai_server, monkeypatch, problem, words):
    judge = "openai:no-such-model" if problem == "unknown model" else "openai:shapes-vlm"
    if problem == "no server":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed once the block ends: nothing listens there
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    if problem == "no key":
        monkeypatch.delenv("OPENAI_API_KEY")
    result = _eval(tmp_path, dataset_dir, "--judge", judge, "--limit", "2")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    assert all(word in lines[0] for word in words), lines[0]
