"""GenEval detector backends behind one interface: the shapes world's exact detector, and Mask2Former + CLIP."""

from __future__ import annotations

from hermes_bench.detectors.base import Detector
from hermes_bench.errors import HermesBenchError
from hermes_bench.storage import stat_fingerprint


def fingerprint(config: str | dict) -> list:
    """What a detector's verdicts depend on, for cache keys: its setting and what each local model folder holds
    (a folder changed in place gets new keys)."""
    if isinstance(config, str):
        return [config]
    return [config, {k: stat_fingerprint(v) for k, v in sorted(config.items()) if k.endswith("_id")}]


def load_detector(config: dict, device: str = "cpu") -> Detector:
    """`config` is a task's `detector:` entry: a backend name, or {backend: ..., its options}."""
    options = {"backend": config} if isinstance(config, str) else dict(config)
    backend = options.pop("backend", None)
    if backend == "shapes":
        from hermes_bench.detectors.shapes import ShapesDetector

        return ShapesDetector()
    if backend == "mask2former":
        from hermes_bench.detectors.mask2former import Mask2FormerClip

        return Mask2FormerClip(device=device, **options)
    raise HermesBenchError(f"unknown detector backend {backend!r}: use 'shapes' or 'mask2former'")
