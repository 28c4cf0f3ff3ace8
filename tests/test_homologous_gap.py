"""homologous_gap on a local dataset in the hub's layout: multiple-choice questions, self or model judge."""

import io
import json

import datasets
import numpy as np
import pytest
from click.testing import CliRunner

from hermes_bench.cli import main
from hermes_bench.models import embedded_model_dir
from hermes_bench.world.benchmarks import homologous
from hermes_bench.world.scene import COLORS, render

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
