"""Pair-DPO training on accelerate: the log-prob forward is one prepared module (DDP by default; FSDP or DeepSpeed
from `accelerate launch --config_file`), AdamW with a warmed-up cosine schedule, bf16 where the device supports it,
gradient accumulation, full fine-tuning or LoRA, sharded checkpoints every N steps, resume from the last one, and
the step statistics sent to accelerate's trackers.

Reference log-probs are computed once before training (`reference_logprobs`), so no reference model stays in
memory. Each step draws records (not loose pairs), so a step's understanding and generation pairs are
homologous; win and lose go through one concatenated forward per modality and share one condition-dropout draw.
The draws are seeded by step, so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import DistributedType
from peft import PeftModel
from transformers import PreTrainedModel, get_cosine_schedule_with_warmup

from hermes_bench.align import checkpoints
from hermes_bench.align.curate import CAPTION_PROMPT
from hermes_bench.align.data import Record
from hermes_bench.align.lora import add_lora, keep_and_merge
from hermes_bench.align.pair_dpo import Preference, pair_dpo_loss
from hermes_bench.configs import TrainingConfig
from hermes_bench.errors import HermesBenchError
from hermes_bench.models.base import UnifiedModel
from hermes_bench.processes import merged, my_batches
from hermes_bench.progress import bar
from hermes_bench.storage import SampleCache, digest

SIDES = {"pair": ("understanding", "generation"), "understanding": ("understanding",),  # Pair-DPO, the ablations
         "generation": ("generation",)}
FROZEN = "vqmodel"  # parameters whose name holds this never train: the image tokenizer fixes the codes
SHARDING = (DistributedType.FSDP, DistributedType.DEEPSPEED)  # engines that split the weights among processes


def trainable_ids(pairs: dict[str, dict], mode: str) -> list[str]:
    """Records with a pair on every side the mode trains (joined on id)."""
    return sorted(i for i, p in pairs.items() if all(p.get(side) for side in SIDES[mode]))


class PairLogProbs(torch.nn.Module):
    """A batch's summed log-probs of every win and lose the mode trains, as one module's forward. accelerate wraps
    this module, so the adapter's calls run inside the engine's forward (DDP's gradient hooks, FSDP's unsharding)."""

    def __init__(self, model: UnifiedModel, mode: str, mask_key: str) -> None:
        super().__init__()
        self.network = model.module  # registered, so the engine sees and shards its parameters
        self.adapter, self.sides, self.mask_key = model, SIDES[mode], mask_key
        # FSDP's shard units when the launcher's config names none: every decoder layer class the network declares
        self._no_split_modules = sorted({name for m in self.network.modules()
                                         for name in getattr(m, "_no_split_modules", None) or ()})

    def forward(self, records: list[Record], pairs: list[dict], unconditional: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per side trained: the wins' log-probs then the loses', (2 * batch,) (one tensor, not views of one:
        FSDP hooks the backward of what the forward returns)."""
        out = {}
        if "understanding" in self.sides:
            images = [[r.image] for r in records]
            answers = [p["understanding"]["win"] for p in pairs] + [p["understanding"]["lose"] for p in pairs]
            out["understanding"] = self.adapter.answer_logprobs([CAPTION_PROMPT] * len(answers), images + images,
                                                                answers)
        if "generation" in self.sides:
            captions = [r.caption for r in records]
            keys = [f"{r.id} {self.mask_key}" for r in records]  # a win and its lose share one draw
            tokens = [p["generation"]["win"] for p in pairs] + [p["generation"]["lose"] for p in pairs]
            out["generation"] = self.adapter.image_logprobs(captions + captions, torch.tensor(tokens),
                                                            torch.cat([unconditional, unconditional]), keys + keys)
        return out


@torch.no_grad()
def reference_logprobs(model: UnifiedModel, records: dict[str, Record], pairs: dict[str, dict], mode: str,
                       batch_size: int = 16, cache: SampleCache | None = None,
                       mask_key: str = TrainingConfig().mask_key) -> dict[str, dict[str, float]]:
    """Per record id: the reference model's summed log-probs of each pair's win and lose (images both with and
    without the condition, for condition dropout), drawn under the training's `mask_key`. With a cache, each batch
    is kept as it finishes (a kill loses at most one batch)."""
    model.module.eval()
    logprobs = PairLogProbs(model, mode, mask_key)
    images = PairLogProbs(model, "generation", mask_key)  # the unconditional pass, for condition dropout
    ids = trainable_ids(pairs, mode)
    out: dict[str, dict[str, float]] = {}
    for start in bar(my_batches(len(ids), batch_size), "reference log-probs"):
        chunk = ids[start:start + batch_size]
        key = digest(model.fingerprint, mode, mask_key, [(i, pairs[i]) for i in chunk])
        if cache is not None and key in cache:
            out.update(cache.get(key))
            continue
        recs, chunk_pairs = [records[i] for i in chunk], [pairs[i] for i in chunk]
        found, n = {}, len(chunk)
        sides = logprobs(recs, chunk_pairs, torch.zeros(n, dtype=torch.bool))
        if "understanding" in sides:
            found["und_w"], found["und_l"] = sides["understanding"].chunk(2)
        if "generation" in sides:
            found["gen_w_cond"], found["gen_l_cond"] = sides["generation"].chunk(2)
            found["gen_w_uncond"], found["gen_l_uncond"] = images(recs, chunk_pairs, torch.ones(n, dtype=torch.bool))[
                "generation"].chunk(2)
        batch: dict[str, dict[str, float]] = {}
        for name, values in found.items():
            for i, v in zip(chunk, values.tolist(), strict=True):
                batch.setdefault(i, {})[name] = v
        if cache is not None:
            cache.put_many({key: batch})
        out.update(batch)
    return dict(zip(ids, merged(out, ids), strict=True))


def _stats(prefix: str, preference: Preference, beta: float) -> dict[str, float]:
    chosen, rejected = preference.rewards(beta)
    margin = chosen - rejected
    return {f"{prefix}/margin": margin.mean().item(), f"{prefix}/chosen_reward": chosen.mean().item(),
            f"{prefix}/rejected_reward": rejected.mean().item(),
            f"{prefix}/accuracy": (margin > 0).float().mean().item()}


def step_loss(policy: Callable[..., dict], records: list[Record], pairs: list[dict], refs: list[dict[str, float]],
              unconditional: torch.Tensor, config: TrainingConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean Pair-DPO loss over one batch of records, and its logged statistics. `policy` is a PairLogProbs, or
    the engine's wrapping of one."""
    found = policy(records, pairs, unconditional)
    device = next(iter(found.values())).device
    sides, stats = {}, {}
    if "understanding" in found:
        ref = torch.tensor([[r["und_w"], r["und_l"]] for r in refs], device=device)
        sides["understanding"] = Preference(*found["understanding"].chunk(2), ref[:, 0], ref[:, 1])
    if "generation" in found:
        ref = torch.tensor([[r["gen_w_uncond"], r["gen_l_uncond"]] if drop else [r["gen_w_cond"], r["gen_l_cond"]]
                            for r, drop in zip(refs, unconditional.tolist(), strict=True)], device=device)
        sides["generation"] = Preference(*found["generation"].chunk(2), ref[:, 0], ref[:, 1])
    loss = pair_dpo_loss(sides.get("understanding"), sides.get("generation"), config.beta, config.form,
                         config.c_und, config.c_gen).mean()
    for side, preference in sides.items():
        stats.update(_stats(side, preference, config.beta))
    return loss, {"loss": loss.item(), **stats}


def make_accelerator(config: TrainingConfig, device: str | torch.device, report_to: str = "none",
                     project_dir: Path | None = None) -> Accelerator:
    """The engine for every round of a run. The launcher's config picks DDP, FSDP or DeepSpeed; trackers
    (tensorboard, wandb) log under `project_dir`."""
    return Accelerator(
        gradient_accumulation_steps=config.grad_accum, cpu=torch.device(device).type == "cpu",
        mixed_precision="bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no",
        # split_batches: each step's batch is shared out among the processes, so the schedule steps once a step
        # (else accelerate steps it once per process and the cosine ends early)
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        # a mode can leave trainable parts unused (understanding-only never runs the generation head)
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        log_with=None if report_to == "none" else report_to, project_dir=project_dir)


def train(model: UnifiedModel, records: dict[str, Record], pairs: dict[str, dict], refs: dict[str, dict],
          config: TrainingConfig, folder: Path, log: Callable[[str], None] = print,
          accelerator: Accelerator | None = None, tracker_step: int = 0, save_to: Path | None = None) -> list[dict]:
    """Train in place; returns the per-step log. A checkpoint in `folder` (from a killed run) is resumed from.
    With LoRA the adapter is saved in `folder/adapter` and merged into the weights at the end. Each step's
    statistics go to the accelerator's trackers at step `tracker_step` + step. With `save_to`, the trained model is
    saved there whole (gathered from every process when the engine shards it)."""
    ids = trainable_ids(pairs, config.mode)
    if not ids:
        raise HermesBenchError(f"no record has a {' and '.join(SIDES[config.mode])} preference pair to train on: "
                               "curate more records (--records) or relax --min-best-score")
    accelerator = accelerator or make_accelerator(config, next(model.module.parameters()).device)
    _check_engine(config, accelerator)
    checkpointed = _transformers_model(model.module) if config.gradient_checkpointing else None
    if checkpointed is not None:
        checkpointed.gradient_checkpointing_enable({"use_reentrant": False})
    lora = _choose_trainable(model, config)
    policy = PairLogProbs(model, config.mode, config.mask_key)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    schedule = get_cosine_schedule_with_warmup(optimizer, config.warmup, config.steps)
    policy, optimizer, schedule = accelerator.prepare(policy, optimizer, schedule)
    trainable = {name for name, p in policy.named_parameters() if p.requires_grad}

    def only_trainable(_models: list, weights: list[dict], _output_dir: str) -> None:
        weights[:] = [{k: v for k, v in w.items() if k in trainable} for w in weights]  # frozen ones equal the loaded

    hook = accelerator.register_save_state_pre_hook(only_trainable)
    try:
        history, start = [], 0
        if (found := checkpoints.latest(folder / "checkpoints")) is not None:
            start, history = checkpoints.load(accelerator, found, trainable)
            log(f"resuming training at step {start} from {found}")
        history = _loop(accelerator, policy, optimizer, schedule, ids, records, pairs, refs, config, folder, history,
                        start, log, tracker_step)
    finally:
        hook.remove()
    if lora is not None:
        keep_and_merge(lora, folder / "adapter", write=accelerator.is_main_process)
    if save_to is not None:
        state = accelerator.get_state_dict(policy)  # every process takes part; the main one gets the whole
        if accelerator.is_main_process:
            model.save(save_to, {k.removeprefix("network."): v for k, v in state.items()})
        accelerator.wait_for_everyone()
    if checkpointed is not None:
        checkpointed.gradient_checkpointing_disable()
    accelerator.free_memory()  # the next round prepares a fresh model on the same engine
    model.module.eval()
    return history


def _check_engine(config: TrainingConfig, accelerator: Accelerator) -> None:
    if config.batch_size % accelerator.num_processes:
        raise HermesBenchError(f"--train-batch-size {config.batch_size} does not split evenly over "
                               f"{accelerator.num_processes} processes: use a multiple of {accelerator.num_processes}")
    if config.lora_rank and accelerator.distributed_type in SHARDING:
        raise HermesBenchError("--lora-rank trains on one process or with DDP (LoRA's state is small; nothing to "
                               "shard): launch with configs/accelerate/1gpu.yaml or 8gpu_ddp.yaml")


def _choose_trainable(model: UnifiedModel, config: TrainingConfig) -> PeftModel | None:
    """LoRA adapters (returned: peft's model, for saving and merging) or every weight but the image tokenizer's."""
    if config.lora_rank:
        return add_lora(model, config.lora_rank, config.lora_alpha, config.lora_targets)
    for name, p in model.module.named_parameters():
        p.requires_grad_(FROZEN not in name)
    return None


def _transformers_model(network: torch.nn.Module) -> PreTrainedModel:
    """The outermost transformers model in the network (Show-o's is its Phi), whose layers can be checkpointed."""
    found = next((m for m in network.modules() if isinstance(m, PreTrainedModel)), None)
    if found is None or not found.supports_gradient_checkpointing:
        raise HermesBenchError(f"--gradient-checkpointing: {type(network).__name__} holds no transformers model "
                               "that supports it")
    return found


def _loop(accelerator: Accelerator, policy, optimizer, schedule, ids: list[str], records: dict[str, Record],
          pairs: dict[str, dict], refs: dict[str, dict], config: TrainingConfig, folder: Path, history: list[dict],
          start: int, log: Callable[[str], None], tracker_step: int) -> list[dict]:
    policy.train()
    share = slice(accelerator.process_index, None, accelerator.num_processes)  # this process' part of a batch
    steps = bar(range(start, config.steps), "training")
    for step in steps:
        for micro in range(config.grad_accum):
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step * 101 + micro)
            picks = torch.randint(len(ids), (config.batch_size,), generator=generator).tolist()
            drop = torch.rand(config.batch_size, generator=generator) < config.condition_dropout
            chosen = [ids[k] for k in picks][share]
            with accelerator.accumulate(policy), accelerator.autocast():
                loss, stats = step_loss(policy, [records[i] for i in chosen], [pairs[i] for i in chosen],
                                        [refs[i] for i in chosen], drop[share], config)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(policy.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
        if accelerator.num_processes > 1:  # log the whole batch, not this process' share of it
            values = accelerator.reduce(torch.tensor(list(stats.values()), device=accelerator.device), "mean")
            stats = dict(zip(stats, values.tolist(), strict=True))
        history.append({"step": step + 1, "lr": schedule.get_last_lr()[0], **stats})
        accelerator.log({f"train/{k}": v for k, v in history[-1].items() if k != "step"},
                        step=tracker_step + step + 1)
        steps.set_postfix(loss=f"{stats['loss']:.4f}")
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
            checkpoints.save(accelerator, folder / "checkpoints", step + 1, history)
        if (step + 1) % 10 == 0 or step + 1 == config.steps:
            log(json.dumps({k: v if isinstance(v, int) else float(f"{v:.4g}") for k, v in history[-1].items()}))
    return history
