"""Training checkpoints through accelerate's save_state / load_state (sharded where the engine shards; weights in
safetensors, optimizer and schedule loaded weights-only, so a planted pickle is refused, never run).

Each checkpoint is written into `.step-N.partial` and renamed to `step-N` once complete, so a kill never leaves a
half checkpoint where a resume would look; the loop's own state (step, log) is a JSON file inside it."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import DistributedType
from safetensors import SafetensorError, safe_open

from hermes_bench.errors import HermesBenchError
from hermes_bench.storage import PARTIAL, atomic_write_json

STATE = "trainer_state.json"
NAME = re.compile(r"step-(\d+)")


def latest(folder: Path) -> Path | None:
    """The finished checkpoint with the most steps under `folder`, if any."""
    found = [(int(m.group(1)), p) for p in folder.glob("step-*") if (m := NAME.fullmatch(p.name)) and p.is_dir()]
    return max(found)[1] if found else None


def save(accelerator: Accelerator, folder: Path, step: int, history: list[dict]) -> None:
    """Every process writes its part (sharded engines), the main process renames the whole into place and drops
    the older checkpoints."""
    final, partial = folder / f"step-{step}", folder / f".step-{step}{PARTIAL}"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()  # every shard written before the folder moves
    if accelerator.is_main_process:
        atomic_write_json(partial / STATE, {"step": step, "history": history})
        partial.rename(final)
        for older in folder.glob("step-*"):
            if older != final:
                shutil.rmtree(older, ignore_errors=True)
    accelerator.wait_for_everyone()


def load(accelerator: Accelerator, checkpoint: Path, trainable: set[str]) -> tuple[int, list[dict]]:
    """Restore the prepared model, optimizer and schedule; returns the step reached and the log so far. Where the
    weights file holds only the trainable weights, it must hold exactly `trainable` (the prepared model's names),
    or the run that wrote it trained something else (another engine, process count or LoRA setting)."""
    try:
        weights = checkpoint / "model.safetensors"
        if weights.is_file():
            with safe_open(weights, "pt") as fh:
                saved = set(fh.keys())
            if saved != trainable:
                raise HermesBenchError(f"{checkpoint} was written by a training of other weights ({len(saved)} "
                                       f"saved, {len(trainable)} trained now: another engine, process count or "
                                       "--lora-rank): delete it to restart this training from its first step")
        # strict=False: frozen weights are not saved (DeepSpeed loads its own files and takes no such argument)
        accelerator.load_state(str(checkpoint), **({} if accelerator.distributed_type == DistributedType.DEEPSPEED
                                                   else {"strict": False}))
        state = json.loads((checkpoint / STATE).read_text())
        return int(state["step"]), list(state["history"])
    except (pickle.UnpicklingError, SafetensorError, RuntimeError, EOFError, ValueError, OSError, KeyError) as err:
        raise HermesBenchError(f"{checkpoint} is not a checkpoint hermes-bench wrote ({type(err).__name__}): "
                               "delete it to restart this training from its first step") from None
