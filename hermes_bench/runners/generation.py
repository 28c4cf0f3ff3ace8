"""Generating images for a generation benchmark: fixed seeded batches, saved as they finish, resumable.

Prompts are cut into fixed batches, each seeded from (seed, task, batch); a batch is done when its entry is in
the cache and its files are on disk, so a resumed run regenerates only unfinished batches and gets the same
images as an uninterrupted one. With several processes, batch b runs on process b % world_size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from accelerate import PartialState
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from hermes_bench.errors import HermesBenchError
from hermes_bench.judges import JUDGE_HELP, load_answerer
from hermes_bench.models.base import Answerer, UnifiedModel
from hermes_bench.processes import my_share
from hermes_bench.storage import SampleCache, digest

SaveImages = Callable[[int, list[Image.Image]], list[Path]]  # (prompt index, its images) -> files written


@dataclass
class GenerationSettings:
    """What a generation benchmark's runner takes from the eval's configuration."""

    batch_size: int
    limit: int | None
    seed: int
    guidance_scale: float
    device: str
    progress: bool = True
    detector_model: str | None = None  # overrides the task's Mask2Former id
    clip_model: str | None = None  # overrides the task's CLIP id
    judge: str | None = None  # overrides the task's VQA judge
    fid_features: Path | None = None  # the FID Inception's weights file

    def images_per_prompt(self, spec) -> int:
        n = spec.config.get("images_per_prompt", 4)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise HermesBenchError(f"task {spec.name} ({spec.path}): images_per_prompt must be a whole number of 1 "
                                   f"or more, not {n!r}")
        return n

    def judge_name(self, default: str | None) -> str:
        """The judge this task asks: --judge, else the task's own."""
        if not (self.judge or default):
            raise HermesBenchError(f"this task needs a judge: pass --judge ({JUDGE_HELP})")
        return self.judge or default

    def detector_setting(self, setting: str | dict) -> str | dict:
        if isinstance(setting, str) and setting != "mask2former":
            return setting
        setting = {"backend": "mask2former"} if isinstance(setting, str) else dict(setting)
        if self.detector_model:
            setting["detector_id"] = self.detector_model
        if self.clip_model:
            setting["clip_id"] = self.clip_model
        return setting

    def load_judge(self, default: str | None, model: Answerer | None, needs: str) -> Answerer:
        """The model that answers this task's questions about generated images (see judges.load_answerer)."""
        return load_answerer(self.judge_name(default), model, self.device, needs)


@dataclass
class GenerationResult:
    metrics: dict[str, float]
    records: list[dict]  # one per image (GenEval) or grid (DPG): what the samples file holds
    computed: int  # prompts generated anew (the rest came from the cache)
    statistic: Callable[[list[dict]], float]  # the headline, for the bootstrap
    unit: str  # the record field to resample by: a prompt's images stay together


def _seed(seed: int, task: str, batch: int) -> int:
    return int(hashlib.sha256(f"{seed}/{task}/{batch}".encode()).hexdigest()[:8], 16)


def read_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise HermesBenchError(f"cannot read image {path} ({type(err).__name__}): delete it (and, for a run of "
                               "ours, its prompt folder), then rerun to regenerate it") from None


def generate(model: UnifiedModel, task: str, prompts: list[str], n: int, save: SaveImages, output: Path,
             batch_size: int, seed: int, guidance_scale: float, progress: bool = True) -> int:
    """Generate n images for every prompt not yet done; returns how many prompts were generated anew."""
    state = PartialState()
    cache = SampleCache(output, f"generation.{task}", state.process_index)
    keys = [digest(model.fingerprint, text, n, guidance_scale, seed, i) for i, text in enumerate(prompts)]
    per_batch = max(1, batch_size // n)
    batches = [list(range(s, min(s + per_batch, len(prompts)))) for s in range(0, len(prompts), per_batch)]
    for b, indices in tqdm(my_share(batches), desc=task, disable=not progress, leave=False):
        if all(keys[i] in cache and all((output / p).is_file() for p in cache.get(keys[i])) for i in indices):
            continue
        images = model.generate_images([prompts[i] for i in indices], n, guidance_scale, _seed(seed, task, b))
        cache.put_many({keys[i]: [str(p.relative_to(output)) for p in save(i, ims)]
                        for i, ims in zip(indices, images, strict=True)})
    state.wait_for_everyone()
    return cache.computed
