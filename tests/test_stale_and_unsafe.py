"""Nothing stale (caches follow the weights, the data and the options) and nothing unasked (no code runs from data)."""

import json
import pickle
import shutil

import pytest
import torch
from click.testing import CliRunner
from hub_mirror import build_pope
from safetensors.torch import load_file, save_file

from hermes_bench.align.curate import CurationConfig, caption_samples
from hermes_bench.align.data import shapes_records
from hermes_bench.align.trainer import TrainingConfig, train
from hermes_bench.cli import main
from hermes_bench.errors import HermesBenchError
from hermes_bench.models import embedded_model_dir, load_model
from hermes_bench.storage import SampleCache

POPE = ["--tasks", "shapes_pope_random", "--limit", "8", "--batch-size", "8", "--no-progress"]


def _eval(*args):
    result = CliRunner().invoke(main, ["eval", *args])
    assert result.exit_code == 0, result.output
    return result


def _responses(out):
    return [json.loads(line)["response"] for line in (out / "samples_shapes_pope_random.jsonl").open()]


def test_weights_overwritten_in_place_are_recomputed_not_served_from_the_cache(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(embedded_model_dir(), model)
    _eval("--model", str(model), "--output", str(tmp_path / "run"), *POPE)
    before = _responses(tmp_path / "run")
    weights = load_file(model / "model.safetensors")
    torch.manual_seed(0)
    save_file({k: v + 0.5 * torch.randn_like(v) if v.is_floating_point() else v for k, v in weights.items()},
              model / "model.safetensors")  # another checkpoint saved over the first
    _eval("--model", str(model), "--output", str(tmp_path / "fresh"), *POPE)
    fresh = _responses(tmp_path / "fresh")
    assert fresh != before  # the two checkpoints answer differently, so a stale cache would show
    _eval("--model", str(model), "--output", str(tmp_path / "run"), *POPE)
    assert _responses(tmp_path / "run") == fresh
    run = json.loads((tmp_path / "run" / "results.json").read_text())
    assert run["results"] == json.loads((tmp_path / "fresh" / "results.json").read_text())["results"]


def test_a_mirror_is_read_as_it_is_now_and_recorded(tmp_path):
    mirror = tmp_path / "mirror"
    build_pope(mirror, n=2)
    args = ["--tasks", "pope_random", "--data-dir", str(mirror), "--no-progress"]
    _eval("--output", str(tmp_path / "a"), *args)
    shutil.rmtree(mirror)
    build_pope(mirror, n=4)  # the same folder, fixed in place
    _eval("--output", str(tmp_path / "b"), *args)
    counts = [len((tmp_path / o / "samples_pope_random.jsonl").read_text().splitlines()) for o in "ab"]
    assert counts == [2, 4]
    data = [json.loads((tmp_path / o / "results.json").read_text())["provenance"]["data"]["lmms-lab/POPE"]
            for o in "ab"]
    assert data[0]["source"] == data[1]["source"] == str(mirror.resolve() / "lmms-lab/POPE")
    assert data[0]["fingerprint"] != data[1]["fingerprint"]


def test_two_mirrors_with_the_same_folder_name_give_their_own_results(tmp_path):
    for name, n in (("x", 2), ("y", 3)):
        build_pope(tmp_path / name / "mirror", n=n)
        _eval("--output", str(tmp_path / f"out-{name}"), "--tasks", "pope_random", "--data-dir",
              str(tmp_path / name / "mirror"), "--no-progress")
    assert [len((tmp_path / f"out-{n}" / "samples_pope_random.jsonl").read_text().splitlines())
            for n in "xy"] == [2, 3]


@pytest.mark.slow
def test_align_resumed_with_other_options_is_refused_and_reports_only_what_ran(tmp_path):
    small = ["--records", "12", "--images", "4", "--train-batch-size", "2", "--gate-limit", "8", "--rounds", "1",
             "--output", str(tmp_path)]  # as test_align_cli's quick runs
    first = CliRunner().invoke(main, ["align", "--steps", "2", *small])
    assert first.exit_code == 0, first.output
    rounds = (tmp_path / "rounds.json").read_text()
    again = CliRunner().invoke(main, ["align", "--steps", "3", *small])
    lines = again.output.strip().splitlines()
    assert again.exit_code == 2 and len(lines) == 1 and "other options" in lines[0] and "steps" in lines[0]
    assert (tmp_path / "rounds.json").read_text() == rounds
    assert json.loads(rounds)["config"]["training"]["steps"] == 2


class _Planted:
    """Unpickled, it would run code: create the file $PLANTED names."""

    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['PLANTED'], 'w')",))


def test_a_planted_pickle_checkpoint_does_not_run(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("PLANTED", str(marker))
    folder = tmp_path / "candidate"
    records = {r.id: r for r in shapes_records(2, seed=5)}
    pairs = {i: {"understanding": {"win": r.caption, "lose": "a cat"}} for i, r in records.items()}
    refs = {i: {"und_w": -1.0, "und_l": -2.0} for i in records}
    config = TrainingConfig(mode="understanding", steps=2, checkpoint_every=1)
    train(load_model(None, "cpu", "float32"), records, pairs, refs, config, folder, print)  # leaves step-1
    for name in ("optimizer.bin", "scheduler.bin", "random_states_0.pkl"):  # what accelerate loads with torch.load
        (folder / "checkpoints" / "step-1" / name).write_bytes(pickle.dumps({"state": _Planted()}))
    with pytest.raises(HermesBenchError, match="not a checkpoint hermes-bench wrote"):
        train(load_model(None, "cpu", "float32"), records, pairs, refs, config, folder, print)
    assert not marker.exists()


def test_a_killed_curation_resumes_and_loses_at_most_one_batch(tmp_path):
    model = load_model(None, "cpu", "float32")
    records = shapes_records(8, seed=9)
    config = CurationConfig(batch_size=2, top_k=(2,), temperatures=(0.7,))  # 2 settings x 4 batches
    calls = []
    answer = model.answer

    def dies_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt  # a kill, mid-curation
        calls.append(1)
        return answer(*args, **kwargs)

    model.answer = dies_after_three
    scorer = __import__("hermes_bench.align.sample_scores", fromlist=["SceneCaptionScorer"]).SceneCaptionScorer()
    with pytest.raises(KeyboardInterrupt):
        caption_samples(model, records, scorer, config, SampleCache(tmp_path, "curation"))
    calls.clear()
    model.answer = lambda *a, **k: (calls.append(1), answer(*a, **k))[1]
    resumed = caption_samples(model, records, scorer, config, SampleCache(tmp_path, "curation"))
    assert len(calls) == 8 - 3  # only the batches the kill stopped before
    model.answer = answer
    assert resumed == caption_samples(model, records, scorer, config)  # and the same samples as one whole run


def test_secrets_are_redacted_from_messages():
    from hermes_bench.models.api import redact

    text = "the API at http://admin:hunter2@judge.local:8000/v1 failed (key sk-abcdef123456 refused)"
    assert "hunter2" not in redact(text) and "sk-abcdef123456" not in redact(text)
    assert "judge.local:8000/v1" in redact(text)


def test_output_files_respect_the_umask_and_killed_writes_are_cleaned(tmp_path):
    import os

    from hermes_bench.storage import atomic_write_json, remove_partial_writes

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    (tmp_path / ".r.json.x1.partial").write_text("half")  # what a kill mid-write leaves
    (tmp_path / "lm_eval" / ".results.x2.partial").mkdir(parents=True)
    remove_partial_writes(tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["lm_eval", "r.json"]
