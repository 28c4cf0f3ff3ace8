"""Load a unified model by path or hub id: the family comes from config.json (transformers' model_type, or
Show-o's `_class_name`; a Show-o bundle keeps it in showo/config.json)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from transformers import PretrainedConfig

from hermes_bench.errors import HermesBenchError, loading, refuse_remote_code
from hermes_bench.models.base import UnifiedModel
from hermes_bench.models.emu3 import Emu3Model
from hermes_bench.models.janus import JanusModel
from hermes_bench.models.showo import ShowoModel, is_bundle, is_showo

FAMILIES = {"janus": JanusModel, "emu3": Emu3Model, "showo": ShowoModel}
EMBEDDED_NAME = "shapes-janus-tiny (embedded default)"
EMBEDDED_DIR = Path(str(files("hermes_bench.models"))) / "shapes_janus_tiny"  # trained: see its README.md
DTYPES = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def embedded_model_dir() -> Path:
    """The embedded default: a tiny Janus trained on the shapes world, shipped inside the package."""
    if not (EMBEDDED_DIR / "model.safetensors").is_file():
        raise HermesBenchError(f"the embedded model is missing from {EMBEDDED_DIR}: reinstall hermes-bench, or "
                               "pass --model")
    return EMBEDDED_DIR


def resolve_device(device: str) -> str:
    """auto: cuda when a GPU is visible, else cpu. Any other name must be a device this machine has."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise HermesBenchError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if parsed.type not in ("cpu", "cuda"):
        raise HermesBenchError(f"device {device!r} is not supported: use auto, cpu, cuda or cuda:N")
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        raise HermesBenchError(f"device {device} is not available here ({torch.cuda.device_count()} CUDA GPUs "
                               "visible): pass --device cpu, or auto to use a GPU when there is one")
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise HermesBenchError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    if DTYPES[dtype] is not None:
        return DTYPES[dtype]
    return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32


def check_source(source: str, what: str = "model folder") -> Path | None:
    """The local folder `source` names (None for a hub id), once it is known to hold a config.json and no code
    of its own: a cheap check, made before any work."""
    local = Path(source).expanduser()
    looks_local = local.exists() or source.startswith((".", "/", "~")) or source.count("/") != 1
    if is_bundle(local):  # its parts are checked as they load
        return local
    if looks_local and not (local / "config.json").is_file():
        found = "has no config.json" if local.is_dir() else "does not exist"
        raise HermesBenchError(f"{what} {source} {found}: pass a folder saved with save_pretrained "
                               "or a hub id such as deepseek-community/Janus-Pro-1B")
    refuse_remote_code(source, what)
    if looks_local:
        for weights in sorted(local.glob("*.safetensors")):
            try:  # the header only: a truncated or corrupt file fails here, not after hours of work
                with safe_open(str(weights), "pt"):
                    pass
            except (SafetensorError, OSError) as err:
                raise HermesBenchError(f"{what} {source}: {weights.name} cannot be read ({' '.join(str(err).split())}):"
                                       " save the weights again") from None
    return local if looks_local else None


def load_model(model: str | None, device: str = "auto", dtype: str = "auto") -> UnifiedModel:
    """Load a unified model behind the UnifiedModel interface; its family comes from config.json.

    Args:
        model: a local folder or hub id (a Show-o bundle folder too); None means the embedded default.
        device: auto (a GPU when there is one), cpu, cuda or cuda:N.
        dtype: auto (bf16 on GPUs that have it, else float32), float32, bfloat16 or float16.

    Returns:
        The model, ready for answers, image generation and, for alignment, teacher-forced log-probs.

    Raises:
        HermesBenchError: a missing or broken folder, an unsupported family, or weights that do not fit.
    """
    source, name = (str(embedded_model_dir()), EMBEDDED_NAME) if model is None else (model, model)
    local = check_source(source)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    with loading(f"model {source}", "check the folder's files (config, weights, tokenizer) or pass another --model"):
        model_type = family(source, local)
        if model_type not in FAMILIES:
            raise HermesBenchError(f"model {source} has model_type {model_type!r}, which hermes-bench does not "
                                   f"support: supported types are {', '.join(sorted(FAMILIES))}")
        return FAMILIES[model_type](name, local, source, device, torch_dtype)


def family(source: str, local: Path | None) -> str | None:
    """The model family config.json names: `showo` for a Show-o checkpoint or bundle, else its model_type."""
    if local is not None and is_bundle(local):
        return "showo"
    config, _ = PretrainedConfig.get_config_dict(source)
    return "showo" if is_showo(config) else config.get("model_type")
