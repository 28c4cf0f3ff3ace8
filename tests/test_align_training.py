"""Log-probs and Pair-DPO training on the shipped model (real weights, real processor)."""

import json
import math
import re
import subprocess
import sys
from dataclasses import asdict

import peft
import pytest
import safetensors.torch
import torch
from launch import run_python
from safetensors import safe_open

from hermes_bench.align.curate import CAPTION_PROMPT
from hermes_bench.align.data import shapes_records
from hermes_bench.align.trainer import PairLogProbs, TrainingConfig, reference_logprobs, step_loss, train
from hermes_bench.errors import HermesBenchError
from hermes_bench.models import load_model


@pytest.fixture(scope="module")
def model():
    return load_model(None, "cpu", "float32")


@pytest.fixture(scope="module")
def records():
    return shapes_records(6, seed=21)


def test_answer_logprobs_do_not_depend_on_padding(model, records):
    answers = [records[0].caption, "a red circle and two blue squares and a green triangle"]
    batch = model.answer_logprobs([CAPTION_PROMPT, "<image>Is there a cat? Please answer yes or no."],
                                  [[records[0].image], [records[1].image]], answers)
    alone = torch.cat([model.answer_logprobs([CAPTION_PROMPT], [[records[0].image]], answers[:1]),
                       model.answer_logprobs(["<image>Is there a cat? Please answer yes or no."],
                                             [[records[1].image]], answers[1:])])
    assert torch.allclose(batch, alone, atol=1e-4)
    assert (batch < 0).all()


def test_greedy_answer_is_the_most_likely_of_the_alternatives(model, records):
    image = records[0].image
    said = model.answer([CAPTION_PROMPT], [[image]], max_new_tokens=30)[0].strip()
    others = [r.caption for r in records[1:] if r.caption != said]
    scores = model.answer_logprobs([CAPTION_PROMPT] * (1 + len(others)), [[image]] * (1 + len(others)),
                                   [said, *others])
    assert scores.argmax().item() == 0


def test_image_logprobs_do_not_depend_on_padding_and_see_the_condition(model, records):
    tokens = model.image_tokens([r.image for r in records[:2]])
    assert tokens.shape == (2, 16)
    captions = [records[0].caption, "a red circle"]
    batch = model.image_logprobs(captions, tokens)
    alone = torch.cat([model.image_logprobs(captions[:1], tokens[:1]), model.image_logprobs(captions[1:], tokens[1:])])
    assert torch.allclose(batch, alone, atol=1e-4)
    unconditional = model.image_logprobs(captions, tokens, torch.tensor([True, False]))
    assert unconditional[1].item() == pytest.approx(batch[1].item(), abs=1e-4)
    assert unconditional[0] < batch[0] - 1  # the trained model's image is far likelier given its caption


def _pairs(records, tokens):
    return {r.id: {"understanding": {"win": r.caption, "lose": "a purple triangle", "win_score": 1.0,
                                     "lose_score": 0.0},
                   "generation": {"win": tokens[i].tolist(), "lose": tokens[(i + 1) % len(records)].tolist(),
                                  "win_score": 1.0, "lose_score": 0.5}}
            for i, r in enumerate(records)}


@pytest.fixture
def initial_state(model):
    """The shipped weights, restored after the test: tests train the module-wide model in place."""
    state = {k: v.clone() for k, v in model.module.state_dict().items()}
    yield state
    model.module.load_state_dict(state)


@pytest.fixture(scope="module")
def training_set(model, records):
    """Records by id, hand-made pairs and the shipped model's reference log-probs (tests restore the model)."""
    pairs = _pairs(records, model.image_tokens([r.image for r in records]))
    by_id = {r.id: r for r in records}
    return by_id, pairs, reference_logprobs(model, by_id, pairs, "pair")


def test_first_step_loss_is_log_two_per_modality_and_training_widens_margins(model, training_set, initial_state,
                                                                            tmp_path):
    by_id, pairs, refs = training_set
    config = TrainingConfig(steps=8, batch_size=3, lr=1e-4, warmup=0, checkpoint_every=4)
    ids = list(by_id)[:3]
    loss, stats = step_loss(PairLogProbs(model, "pair", config.mask_key), [by_id[i] for i in ids],
                            [pairs[i] for i in ids], [refs[i] for i in ids], torch.tensor([False, True, False]), config)
    assert loss.item() == pytest.approx(2 * torch.log(torch.tensor(2.0)).item(), abs=1e-4)  # policy = reference
    assert stats["understanding/margin"] == pytest.approx(0, abs=1e-4)
    history = train(model, by_id, pairs, refs, config, tmp_path, log=lambda _: None)
    assert len(history) == 8 and history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["generation/margin"] > 0 and history[-1]["understanding/accuracy"] == 1.0
    vq = [k for k in initial_state if "vqmodel" in k]
    assert all(torch.equal(initial_state[k], model.module.state_dict()[k]) for k in vq)  # the tokenizer is frozen


TRAINING_RUN = """
import json, os, sys
from pathlib import Path
import torch
from hermes_bench.align.data import shapes_records
from hermes_bench.align.trainer import TrainingConfig, make_accelerator, train
from hermes_bench.models import load_model

folder, die = Path(sys.argv[1]), sys.argv[2:] == ["--die-after-checkpoint"]
model = load_model(None, "cpu", "float32")
pairs, refs, config = (json.loads((folder.parent / f).read_text()) for f in ("pairs.json", "refs.json", "config.json"))

def log(_):  # with --die-after-checkpoint: dies, without any cleanup, at the first log line after a checkpoint
    if die and (folder / "checkpoints").is_dir():
        os._exit(3)

records = {r.id: r for r in shapes_records(6, seed=21)}
engine = make_accelerator(TrainingConfig(**config), torch.device("cpu"))
history = train(model, records, pairs, refs, TrainingConfig(**config), folder, log, engine)
rank = os.environ.get("RANK", "0")
folder.mkdir(parents=True, exist_ok=True)
(folder / "engine.txt").write_text(engine.distributed_type.value)
torch.save(model.module.state_dict(), folder / f"weights.rank{rank}.pt")
(folder / f"history.rank{rank}.json").write_text(json.dumps(history))
"""


def _training_run(tmp_path, pairs, refs, config: TrainingConfig) -> str:
    """The training inputs as files beside a script that trains on them (run as users run the installed package)."""
    for name, obj in (("pairs.json", pairs), ("refs.json", refs), ("config.json", asdict(config))):
        (tmp_path / name).write_text(json.dumps(obj))
    script = tmp_path / "train_run.py"
    script.write_text(TRAINING_RUN)
    return str(script)


@pytest.mark.slow
def test_a_killed_training_run_resumes_from_its_checkpoint_exactly(model, training_set, initial_state, tmp_path):
    by_id, pairs, refs = training_set
    config = TrainingConfig(steps=20, batch_size=2, lr=1e-4, warmup=2, checkpoint_every=5)
    script = _training_run(tmp_path, pairs, refs, config)
    straight = train(model, by_id, pairs, refs, config, tmp_path / "straight", log=lambda _: None)
    final = {k: v.clone() for k, v in model.module.state_dict().items()}
    killed = subprocess.run([sys.executable, script, str(tmp_path / "killed"), "--die-after-checkpoint"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert killed.returncode == 3, killed.stderr[-2000:]
    assert [p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()] == ["step-10"]  # whole, renamed
    (tmp_path / "killed" / "checkpoints" / ".step-15.partial").mkdir()  # a kill mid-write: never resumed from
    model.module.load_state_dict(initial_state)  # as a fresh process loads it
    lines = []
    resumed = train(model, by_id, pairs, refs, config, tmp_path / "killed", log=lines.append)
    assert lines[0].startswith("resuming training at step 10")
    assert [h["loss"] for h in resumed] == pytest.approx([h["loss"] for h in straight], abs=1e-5)
    assert all(torch.allclose(final[k], v, atol=1e-5) for k, v in model.module.state_dict().items())


@pytest.mark.slow
def test_two_processes_train_as_one(model, training_set, initial_state, tmp_path):
    """The multi-GPU path at CPU size (torchrun, gloo): each process takes half of every batch; the averaged
    gradients, and the schedule stepped once a step, give one process' weights."""
    by_id, pairs, refs = training_set
    config = TrainingConfig(steps=6, batch_size=4, lr=1e-4, warmup=0, condition_dropout=0.5, checkpoint_every=3)
    script = _training_run(tmp_path, pairs, refs, config)
    alone = train(model, by_id, pairs, refs, config, tmp_path / "one", log=lambda _: None)
    one = model.module.state_dict()
    run_python([script, str(tmp_path / "two")], tmp_path, processes=2)
    history = json.loads((tmp_path / "two" / "history.rank0.json").read_text())
    assert (tmp_path / "two" / "engine.txt").read_text() == "MULTI_CPU"  # accelerate's DDP over gloo
    assert [h["lr"] for h in history] == pytest.approx([h["lr"] for h in alone])
    ranks = [torch.load(tmp_path / "two" / f"weights.rank{r}.pt") for r in (0, 1)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in one)
    moved = max((one[k] - initial_state[k]).abs().max().item() for k in one)
    assert moved > 1e-4
    assert all(torch.allclose(one[k], ranks[0][k], atol=moved / 20) for k in one)
    # DDP's checkpoint names DDP's weights: one process refuses to resume from it, in one line
    with safe_open(tmp_path / "two" / "checkpoints" / "step-3" / "model.safetensors", "pt") as fh:
        assert all(k.startswith("module.network.") for k in fh.keys())
    with pytest.raises(HermesBenchError, match="another engine, process count"):
        train(model, by_id, pairs, refs, config, tmp_path / "two", log=lambda _: None)


def test_lora_trains_only_adapters_and_the_saved_adapter_reloads(model, training_set, initial_state, tmp_path):
    """Only the adapters train (the checkpoint holds nothing else); the merged model and base + saved adapter
    (peft's own loading) give the same log-probs; every weight LoRA does not target is unchanged."""
    by_id, pairs, refs = training_set
    config = TrainingConfig(steps=6, batch_size=3, lr=1e-3, warmup=0, checkpoint_every=3, lora_rank=4)
    history = train(model, by_id, pairs, refs, config, tmp_path, log=lambda _: None)
    assert history[0]["loss"] == pytest.approx(2 * math.log(2), abs=1e-4)  # fresh adapters: the policy is the base
    assert history[-1]["loss"] < history[0]["loss"]
    saved = safetensors.torch.load_file(tmp_path / "checkpoints" / "step-3" / "model.safetensors")
    assert saved and all("lora_" in k for k in saved)
    merged = model.module.state_dict()
    assert merged.keys() == initial_state.keys()  # merged and unloaded: the plain network again
    targeted = {k for k in merged if re.fullmatch(model.lora_targets, k.rsplit(".", 1)[0])}
    assert targeted and any(not torch.equal(merged[k], initial_state[k]) for k in targeted)
    assert all(torch.equal(merged[k], initial_state[k]) for k in merged.keys() - targeted)

    fresh = load_model(None, "cpu", "float32")
    peft.PeftModel.from_pretrained(fresh.module, tmp_path / "adapter")  # injects the adapter into fresh.module
    records = list(by_id.values())[:3]
    for scorer in (model, fresh):
        scorer.module.eval()
    with torch.no_grad():
        expected = PairLogProbs(model, "pair", "k")(records, [pairs[r.id] for r in records], torch.zeros(3) > 0)
        reloaded = PairLogProbs(fresh, "pair", "k")(records, [pairs[r.id] for r in records], torch.zeros(3) > 0)
    for side in ("understanding", "generation"):
        assert torch.allclose(expected[side], reloaded[side], atol=1e-4)


def test_lora_targets_that_match_nothing_are_one_line(model, training_set, tmp_path):
    by_id, pairs, refs = training_set
    config = TrainingConfig(steps=1, lora_rank=2, lora_targets="no_such_module")
    with pytest.raises(HermesBenchError, match="--lora-targets 'no_such_module' matches no module"):
        train(model, by_id, pairs, refs, config, tmp_path, log=lambda _: None)


FSDP_RUN = """
import json, os, sys
import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from hermes_bench.align.data import shapes_records
from hermes_bench.align.trainer import FROZEN, PairLogProbs, TrainingConfig, step_loss
from hermes_bench.models import load_model

if "RANK" in os.environ:  # torchrun
    dist.init_process_group("gloo")
else:  # alone: a group of one, so the same sharding code runs
    dist.init_process_group("gloo", store=dist.FileStore("store", 1), rank=0, world_size=1)
rank, world = dist.get_rank(), dist.get_world_size()
model = load_model(None, "cpu", "float32")
pairs, refs = (json.loads(open(f).read()) for f in sys.argv[1:3])
records = [r for r in shapes_records(6, seed=21) if r.id in pairs][:4]
for name, p in model.module.named_parameters():
    p.requires_grad_(FROZEN not in name)
policy = PairLogProbs(model, "pair", TrainingConfig().mask_key)
for layer in model.module.model.language_model.layers:  # as accelerate's FSDP v2 wraps decoder layers, then the root
    fully_shard(layer)
fully_shard(policy)
# plain SGD: Adam would scale the float noise of gradients that are zero in exact arithmetic (a key's bias) to lr
optimizer = torch.optim.SGD([p for p in policy.parameters() if p.requires_grad], lr=0.1)
mine = records[rank::world]  # each process takes its share of every batch
for step in range(3):
    drop = torch.tensor([step % 2 == 1] * len(mine))
    loss, _ = step_loss(policy, mine, [pairs[r.id] for r in mine], [refs[r.id] for r in mine], drop, TrainingConfig())
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
full = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach() for k, v in policy.state_dict().items()}
if rank == 0:
    torch.save({k.removeprefix("network."): v for k, v in full.items()}, sys.argv[3])
"""


@pytest.mark.slow
def test_fsdp_shards_the_logprob_module_and_two_processes_train_as_one(training_set, initial_state, tmp_path):
    """accelerate applies FSDP only on accelerators (on CPU processes it ignores the plugin), so this runs torch's
    FSDP v2 (`fully_shard`, what accelerate's FSDP v2 applies) directly on the module the trainer prepares: the
    adapter's log-prob calls under sharded parameters train as one unsharded process does."""
    _, pairs, refs = training_set
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    (tmp_path / "fsdp_run.py").write_text(FSDP_RUN)
    for processes in (1, 2):
        run_python(["fsdp_run.py", "pairs.json", "refs.json", f"weights{processes}.pt"], tmp_path, processes)
    one, two = (torch.load(tmp_path / f"weights{n}.pt") for n in (1, 2))
    moved = max((one[k] - initial_state[k]).abs().max().item() for k in one)
    assert moved > 0.1
    assert all(torch.allclose(one[k], two[k], atol=1e-4) for k in one)  # float noise only (1.9e-5 measured)


def test_gradient_checkpointing_trains_the_same_weights(model, training_set, initial_state, tmp_path):
    by_id, pairs, refs = training_set
    config = TrainingConfig(steps=3, batch_size=3, lr=1e-4, warmup=0)
    plain = train(model, by_id, pairs, refs, config, tmp_path / "plain", log=lambda _: None)
    expected = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.module.load_state_dict(initial_state)
    config = TrainingConfig(steps=3, batch_size=3, lr=1e-4, warmup=0, gradient_checkpointing=True)
    checkpointed = train(model, by_id, pairs, refs, config, tmp_path / "checkpointed", log=lambda _: None)
    assert [h["loss"] for h in checkpointed] == pytest.approx([h["loss"] for h in plain], abs=1e-5)
    assert all(torch.allclose(expected[k], v, atol=1e-5) for k, v in model.module.state_dict().items())
    assert not model.module.is_gradient_checkpointing  # evaluation runs as before
