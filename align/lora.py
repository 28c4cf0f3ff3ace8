"""LoRA through peft: adapters injected into the adapter's own network (in place, so the adapter's calls see them),
only they train; at the end they are saved on their own and merged, so the kept model loads like any other."""

from __future__ import annotations

from pathlib import Path

from peft import LoraConfig, PeftModel, get_peft_model

from hermes_bench.errors import HermesBenchError
from hermes_bench.models.base import UnifiedModel


def add_lora(model: UnifiedModel, rank: int, alpha: float, targets: str | None) -> PeftModel:
    """LoRA of `rank` on the modules whose names fully match `targets` (a regex; default: the family's language
    model's attention and MLP projections). Everything else is frozen. `model.module` stays the same object."""
    pattern = targets or model.lora_targets
    if pattern is None:
        raise HermesBenchError(f"{model.name} has no default LoRA targets: pass --lora-targets REGEX")
    try:
        return get_peft_model(model.module, LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0,
                                                       target_modules=pattern))
    except ValueError as err:
        if "not found in the base model" not in str(err):
            raise
        raise HermesBenchError(f"--lora-targets {pattern!r} matches no module of {model.name}: give a regex that "
                               "fully matches Linear module names (see the model's named_modules())") from None


def keep_and_merge(peft_model: PeftModel, folder: Path, write: bool = True) -> None:
    """Save the adapter alone (peft's layout, `PeftModel.from_pretrained` loads it onto the base; `write`: this
    process writes files), then merge it into the base weights and remove the LoRA layers, leaving the plain
    network trained."""
    if write:
        peft_model.save_pretrained(folder)
    peft_model.merge_and_unload()
