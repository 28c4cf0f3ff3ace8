"""`hermes-bench align` end to end on the shipped model and the shapes world, at a small size."""

import importlib.util
import json
import struct

import pytest
import safetensors.torch
import torch
from click.testing import CliRunner
from PIL import Image

from hermes_bench.align.data import shapes_records
from hermes_bench.cli import main
from hermes_bench.models import embedded_model_dir
from hermes_bench.storage import files_sha256

pytestmark = pytest.mark.slow  # subprocesses, training or several processes

SMALL = ["--records", "12", "--images", "4", "--steps", "6", "--train-batch-size", "2", "--gate-limit", "8"]


def _align(out, *args):
    result = CliRunner().invoke(main, ["align", "--output", str(out), *SMALL, *args])
    assert result.exit_code == 0, result.output
    return result.output, json.loads((out / "rounds.json").read_text())


@pytest.fixture(scope="module")
def one_round(tmp_path_factory):
    out = tmp_path_factory.mktemp("align")
    return out, *_align(out, "--rounds", "1", "--report-to", "tensorboard")


def test_align_writes_the_rounds_table_and_plot(one_round):
    out, printed, rounds = one_round
    row = rounds["rounds"][0]
    assert row["round"] == 1 and row["decision"] in ("kept", "rolled back")
    assert row["pairs_understanding"] + row["pairs_generation"] > 0
    for side in ("U", "G", "gap", "homologous_gap"):
        assert row[f"{side}_ci_low"] <= row[f"{side}_delta"] <= row[f"{side}_ci_high"]
        assert row[f"{side}_delta"] == pytest.approx(row[f"{side}_after"] - row[f"{side}_before"])
    assert row["gap_before"] == pytest.approx(row["U_before"] - row["G_before"])
    kept = [r for r in rounds["rounds"] if r["decision"] == "kept"]  # a rolled-back beta is retried with the next
    assert rounds["final"] == (str(out / "round-1" / f"beta-{kept[0]['beta']:g}" / "model") if kept
                               else rounds["initial"])
    for suffix in ("md", "csv", "tex", "html", "png"):
        assert (out / f"rounds.{suffix}").stat().st_size > 0
    assert "round" in printed and "ΔG" in printed and row["decision"] in printed
    pairs = json.loads((out / "round-1" / "pairs.json").read_text())
    refs = json.loads((out / "round-1" / "reference.json").read_text())
    assert set(refs) <= set(pairs)  # reference log-probs only for records with both pairs (Pair-DPO)
    assert all(pairs[i]["understanding"] and pairs[i]["generation"] for i in refs)
    log = json.loads((out / "round-1" / "beta-0.5" / "train_log.json").read_text())
    assert len(log) == 6 and {"understanding/margin", "generation/accuracy", "lr"} <= set(log[0])


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TensorBoard event files under `folder`, by tag: (step, value) in order. The files are
    TFRecords (length, its CRC, an Event proto, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            length = struct.unpack("<Q", data[at:at + 8])[0]
            event = Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value.simple_value))
    return found


def test_trackers_get_every_training_step_and_the_gate(one_round):
    out, _, rounds = one_round
    scalars = _scalars(out / "trackers")
    log = json.loads((out / "round-1" / "beta-0.5" / "train_log.json").read_text())
    assert [v for _, v in scalars["train/loss"]][:6] == pytest.approx([h["loss"] for h in log], abs=1e-6)
    assert [s for s, _ in scalars["train/loss"]][:6] == [1, 2, 3, 4, 5, 6]
    assert {"train/lr", "train/understanding/margin", "train/generation/accuracy"} <= set(scalars)
    row = rounds["rounds"][0]
    assert scalars["gate/kept"][0] == (6, float(row["decision"] == "kept"))
    assert scalars["gate/homologous_gap/delta"][0][1] == pytest.approx(row["homologous_gap_delta"], abs=1e-6)
    assert scalars["gate/homologous_gap/ci_low"][0][1] == pytest.approx(row["homologous_gap_ci_low"], abs=1e-6)


def test_a_rerun_resumes_without_redoing_finished_stages(one_round):
    out, _, rounds = one_round
    stamps = {p: p.stat().st_mtime_ns for p in (out / "round-1").rglob("*") if p.is_file()}
    _, again = _align(out, "--rounds", "1")
    assert again["rounds"] == rounds["rounds"]
    for name in ("samples.json", "reference.json", "beta-0.5/train_log.json", "beta-0.5/model/model.safetensors"):
        assert (out / "round-1" / name).stat().st_mtime_ns == stamps[out / "round-1" / name]


def test_a_round_that_makes_things_worse_is_rolled_back(tmp_path):
    before = files_sha256([embedded_model_dir() / "model.safetensors"])
    # a learning rate far too high wrecks generation: every beta's round must be rolled back
    _, rounds = _align(tmp_path, "--rounds", "2", "--mode", "generation", "--lr", "0.05", "--beta", "0.2,0.5",
                       "--coefficients", "1,2")
    assert (rounds["config"]["training"]["c_und"], rounds["config"]["training"]["c_gen"]) == (1, 2)
    assert [(r["round"], r["beta"], r["decision"]) for r in rounds["rounds"]] == \
        [(1, 0.2, "rolled back"), (1, 0.5, "rolled back")]
    assert all(r["G_delta"] < 0 for r in rounds["rounds"])
    assert rounds["final"] == rounds["initial"] == str(embedded_model_dir())
    assert files_sha256([embedded_model_dir() / "model.safetensors"]) == before
    assert not (tmp_path / "round-2").exists()  # no round after a roll-back
    decision = json.loads((tmp_path / "round-1" / "decision.json").read_text())
    assert decision["kept"] == str(embedded_model_dir()) and not decision["keep"]


@pytest.mark.parametrize("args, message", [
    (["--data", "nope.json"], "does not exist"),
    (["--judge", "exact", "--data", "{data}"], "needs the shapes world"),
    (["--gate-tasks", "no_such_task"], "no_such_task"),
    (["--coefficients", "0.5"], "needs two numbers"),
    (["--coefficients", "0,1"], "needs finite numbers above 0"),
    (["--data", "{empty}"], "gives no records"),
    (["--data", "{data}", "--question-generator", "{data}.missing"], "--question-generator folder"),
    (["--data", "{data}", "--mode", "understanding", "--gate-limit", "2", "--caption-scorer", "{data}.missing"],
     "--caption-scorer folder"),
    pytest.param(["--report-to", "wandb"], "pip install 'hermes-bench[wandb]'",
                 marks=pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")),
])
def test_align_bad_input_is_one_line(tmp_path, args, message):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "d.json").write_text(json.dumps([{"image": "a.png", "caption": "a cat"}]))
    (tmp_path / "e.json").write_text("[]")
    args = [a.replace("{data}", str(tmp_path / "d.json")).replace("{empty}", str(tmp_path / "e.json")) for a in args]
    result = CliRunner().invoke(main, ["align", "--output", str(tmp_path / "o"), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_align_on_a_json_file_with_a_similarity_caption_scorer(tmp_path, tiny_bert):
    records = shapes_records(6, seed=31)
    rows = []
    for r in records:
        r.image.save(tmp_path / f"{r.id}.png")
        rows.append({"id": r.id, "image": f"{r.id}.png", "caption": r.caption,
                     "questions": [q.stored() for q in r.questions]})
    (tmp_path / "data.json").write_text(json.dumps(rows))
    _, rounds = _align(tmp_path / "out", "--rounds", "1", "--data", str(tmp_path / "data.json"),
                       "--caption-scorer", str(tiny_bert))
    samples = json.loads((tmp_path / "out" / "round-1" / "samples.json").read_text())
    assert len(samples["understanding"]) == 6 and len(samples["understanding"][0]["contents"]) == 10
    assert all(abs(s) <= 1 + 1e-5 for x in samples["understanding"] for s in x["scores"])  # cosine similarities
    assert len(samples["generation"][0]["contents"]) == 4  # --images 4, each scored by self-VQA
    assert rounds["rounds"][0]["pairs_understanding"] > 0


def test_a_lora_round_saves_its_adapter_and_a_merged_model_that_eval_loads(tmp_path):
    _, rounds = _align(tmp_path, "--rounds", "1", "--lora-rank", "4", "--lora-alpha", "8", "--lr", "1e-3",
                       "--beta", "0.5")
    candidate = tmp_path / "round-1" / "beta-0.5"
    adapter = json.loads((candidate / "adapter" / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"]) == (4, 8)
    assert not (candidate / "checkpoints").exists()  # removed once the model is saved
    merged = safetensors.torch.load_file(candidate / "model" / "model.safetensors")
    initial = safetensors.torch.load_file(embedded_model_dir() / "model.safetensors")
    assert merged.keys() == initial.keys()  # a plain checkpoint: no LoRA layers left
    changed = {k for k in merged if not torch.equal(merged[k], initial[k])}
    assert changed and all(".language_model.layers." in k for k in changed)
    gate = json.loads((candidate / "gate" / "results.json").read_text())  # the gate's eval loaded the merged model
    assert gate["model"]["path"] == str(candidate / "model")
    assert gate["model"]["weights_sha256"] == files_sha256([candidate / "model" / "model.safetensors"])
    assert rounds["rounds"][0]["decision"] in ("kept", "rolled back")
