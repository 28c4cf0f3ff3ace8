"""Pair-DPO training on accelerate: AdamW with a warmed-up cosine schedule, bf16 where the device supports it,
gradient accumulation, a checkpoint every N steps, resume from the last one.

Reference log-probs are computed once before training (`reference_logprobs`), so no reference model stays in
memory. Each step draws records (not loose pairs), so a step's understanding and generation pairs are
homologous; win and lose go through one concatenated forward per modality and share one condition-dropout draw.
The draws are seeded by step, so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from transformers import get_cosine_schedule_with_warmup

from hermes_bench.align.curate import CAPTION_PROMPT
from hermes_bench.align.data import Record
from hermes_bench.align.pair_dpo import Preference, pair_dpo_loss
from hermes_bench.configs import TrainingConfig
from hermes_bench.errors import HermesBenchError
from hermes_bench.models.base import UnifiedModel
from hermes_bench.processes import merged, my_batches
from hermes_bench.progress import bar
from hermes_bench.storage import SampleCache, atomic_write_bytes, digest

MODES = ("pair", "understanding", "generation")  # Pair-DPO, and the paper's two single-modality ablations
SIDES = {"pair": ("understanding", "generation"), "understanding": ("understanding",),
         "generation": ("generation",)}



def trainable_ids(pairs: dict[str, dict], mode: str) -> list[str]:
    """Records with a pair on every side the mode trains (joined on id)."""
    return sorted(i for i, p in pairs.items() if all(p.get(side) for side in SIDES[mode]))


def _understanding_logprobs(model: UnifiedModel, records: list[Record], wins: list[str],
                            loses: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    images = [[r.image] for r in records]
    both = model.answer_logprobs([CAPTION_PROMPT] * 2 * len(records), images + images, wins + loses)
    return both[:len(records)], both[len(records):]


def _generation_logprobs(model: UnifiedModel, records: list[Record], wins: list[list[int]], loses: list[list[int]],
                         unconditional: torch.Tensor, mask_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    captions = [r.caption for r in records]
    keys = [f"{r.id} {mask_key}" for r in records]  # a win and its lose share one draw
    both = model.image_logprobs(captions + captions, torch.tensor(wins + loses),
                                torch.cat([unconditional, unconditional]), keys + keys)
    return both[:len(records)], both[len(records):]


@torch.no_grad()
def reference_logprobs(model: UnifiedModel, records: dict[str, Record], pairs: dict[str, dict], mode: str,
                       batch_size: int = 16, cache: SampleCache | None = None,
                       mask_key: str = TrainingConfig().mask_key) -> dict[str, dict[str, float]]:
    """Per record id: the reference model's summed log-probs of each pair's win and lose (images both with and
    without the condition, for condition dropout), drawn under the training's `mask_key`. With a cache, each batch
    is kept as it finishes (a kill loses at most one batch)."""
    model.module.eval()
    ids = trainable_ids(pairs, mode)
    out: dict[str, dict[str, float]] = {}
    for start in bar(my_batches(len(ids), batch_size), "reference log-probs"):
        chunk = ids[start:start + batch_size]
        key = digest(model.fingerprint, mode, mask_key, [(i, pairs[i]) for i in chunk])
        if cache is not None and key in cache:
            out.update(cache.get(key))
            continue
        recs = [records[i] for i in chunk]
        found = {}
        if "understanding" in SIDES[mode]:
            found["und_w"], found["und_l"] = _understanding_logprobs(
                model, recs, [pairs[i]["understanding"]["win"] for i in chunk],
                [pairs[i]["understanding"]["lose"] for i in chunk])
        if "generation" in SIDES[mode]:
            for name, drop in (("cond", False), ("uncond", True)):
                found[f"gen_w_{name}"], found[f"gen_l_{name}"] = _generation_logprobs(
                    model, recs, [pairs[i]["generation"]["win"] for i in chunk],
                    [pairs[i]["generation"]["lose"] for i in chunk], torch.full((len(chunk),), drop), mask_key)
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


def step_loss(model: UnifiedModel, records: list[Record], pairs: list[dict], refs: list[dict[str, float]],
              unconditional: torch.Tensor, config: TrainingConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean Pair-DPO loss over one batch of records, and its logged statistics."""
    device = next(model.module.parameters()).device
    sides, stats = {}, {}
    if "understanding" in SIDES[config.mode]:
        pw, pl = _understanding_logprobs(model, records, [p["understanding"]["win"] for p in pairs],
                                         [p["understanding"]["lose"] for p in pairs])
        ref = torch.tensor([[r["und_w"], r["und_l"]] for r in refs], device=device)
        sides["understanding"] = Preference(pw, pl, ref[:, 0], ref[:, 1])
    if "generation" in SIDES[config.mode]:
        pw, pl = _generation_logprobs(model, records, [p["generation"]["win"] for p in pairs],
                                      [p["generation"]["lose"] for p in pairs], unconditional, config.mask_key)
        ref = torch.tensor([[r["gen_w_uncond"], r["gen_l_uncond"]] if drop else [r["gen_w_cond"], r["gen_l_cond"]]
                            for r, drop in zip(refs, unconditional.tolist(), strict=True)], device=device)
        sides["generation"] = Preference(pw, pl, ref[:, 0], ref[:, 1])
    loss = pair_dpo_loss(sides.get("understanding"), sides.get("generation"), config.beta, config.form,
                         config.c_und, config.c_gen).mean()
    for side, preference in sides.items():
        stats.update(_stats(side, preference, config.beta))
    return loss, {"loss": loss.item(), **stats}


def train(model: UnifiedModel, records: dict[str, Record], pairs: dict[str, dict], refs: dict[str, dict],
          config: TrainingConfig, folder: Path, log: Callable[[str], None] = print) -> list[dict]:
    """Train in place; returns the per-step log. A checkpoint in `folder` (from a killed run) is resumed from."""
    ids = trainable_ids(pairs, config.mode)
    if not ids:
        raise HermesBenchError(f"no record has a {' and '.join(SIDES[config.mode])} preference pair to train on: "
                               "curate more records (--records) or relax --min-best-score")
    device = next(model.module.parameters()).device
    # split_batches: each step's batch is shared out among the processes, so the schedule steps once a step (else
    # accelerate steps it once per process and the cosine ends early)
    accelerator = Accelerator(gradient_accumulation_steps=config.grad_accum, cpu=device.type == "cpu",
                              mixed_precision="bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported()
                              else "no", dataloader_config=DataLoaderConfiguration(split_batches=True))
    params = [p for name, p in model.module.named_parameters() if "vqmodel" not in name]  # the image tokenizer stays
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = get_cosine_schedule_with_warmup(optimizer, config.warmup, config.steps)
    optimizer, schedule = accelerator.prepare(optimizer, schedule)
    checkpoint, history, start = folder / "checkpoint.pt", [], 0
    if checkpoint.is_file():
        try:  # tensors and plain data only: a pickle that would run code is refused, not run
            state = torch.load(checkpoint, map_location=device, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
            raise HermesBenchError(f"{checkpoint} is not a checkpoint hermes-bench wrote ({type(err).__name__}): "
                                   "delete it to restart this training from its first step") from None
        model.module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        history, start = state["history"], state["step"]
        log(f"resuming training at step {start} from {checkpoint}")
    model.module.train()
    share = slice(accelerator.process_index, None, accelerator.num_processes)  # this process' part of a batch
    steps = bar(range(start, config.steps), "training")
    for step in steps:
        for micro in range(config.grad_accum):
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step * 101 + micro)
            picks = torch.randint(len(ids), (config.batch_size,), generator=generator).tolist()
            drop = torch.rand(config.batch_size, generator=generator) < config.condition_dropout
            chosen = [ids[k] for k in picks][share]
            with accelerator.accumulate(model.module), accelerator.autocast():
                loss, stats = step_loss(model, [records[i] for i in chosen], [pairs[i] for i in chosen],
                                        [refs[i] for i in chosen], drop[share], config)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    if accelerator.num_processes > 1:  # the adapter calls the bare module: average grads here
                        for p in params:
                            if p.grad is not None:
                                p.grad = accelerator.reduce(p.grad, "mean")
                    accelerator.clip_grad_norm_(params, 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
        if accelerator.num_processes > 1:  # log the whole batch, not this process' share of it
            values = accelerator.reduce(torch.tensor(list(stats.values()), device=accelerator.device), "mean")
            stats = dict(zip(stats, values.tolist(), strict=True))
        history.append({"step": step + 1, "lr": schedule.get_last_lr()[0], **stats})
        steps.set_postfix(loss=f"{stats['loss']:.4f}")
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps and accelerator.is_main_process:
            buffer = io.BytesIO()
            torch.save({"model": model.module.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": schedule.state_dict(), "history": history, "step": step + 1}, buffer)
            atomic_write_bytes(checkpoint, buffer.getvalue())
        if (step + 1) % 10 == 0 or step + 1 == config.steps:
            log(json.dumps({k: v if isinstance(v, int) else float(f"{v:.4g}") for k, v in history[-1].items()}))
    model.module.eval()
    return history
