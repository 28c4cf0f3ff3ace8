"""Generation tasks: generate images per prompt, save them in GenEval's layout, then detect and judge.

Prompts are cut into fixed batches, each seeded from (seed, task, batch); a batch is done when its entry is in
the cache and its PNGs are on disk, so a resumed run regenerates only unfinished batches and gets the same
images as an uninterrupted one. With several processes, batch b runs on process b % world_size.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from accelerate import PartialState
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from hermes_bench.errors import HermesBenchError
from hermes_bench.models.base import UnifiedModel
from hermes_bench.registry import TaskSpec
from hermes_bench.results import SampleCache, atomic_save_png, atomic_write_jsonl, digest
from hermes_bench.scoring import geneval
from hermes_bench.world import benchmarks
from hermes_bench.world.detector import detect as detect_shapes

DETECTORS: dict[str, Callable[[Image.Image], list[geneval.Detection]]] = {"shapes": detect_shapes}
REQUIRED_FIELDS = ("tag", "prompt", "include")


def load_prompts(spec: TaskSpec) -> list[dict]:
    """GenEval metadata records: built by the shapes world, or read from a JSONL file beside the YAML."""
    source = spec.config.get("prompts", {})
    if source.get("source") == "shapes":
        return benchmarks.geneval_metadata(source["n_per_tag"], source["seed"])
    if source.get("source") == "jsonl":
        path = (spec.path.parent / source["path"]).resolve()
        if not path.is_file():
            raise HermesBenchError(f"task {spec.name}: prompt file {path} does not exist")
        prompts = []
        for line_no, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise HermesBenchError(f"{path} line {line_no} is not JSON ({err.msg})") from None
            missing = [f for f in REQUIRED_FIELDS if f not in record]
            if missing:
                raise HermesBenchError(f"{path} line {line_no}: field {', '.join(missing)} is missing; "
                                       "each line needs tag, prompt and include (GenEval's schema)")
            prompts.append(record)
        return prompts
    raise HermesBenchError(f"task {spec.name}: prompts.source must be 'shapes' or 'jsonl' in {spec.path}")


def _seed(seed: int, task: str, batch: int) -> int:
    return int(hashlib.sha256(f"{seed}/{task}/{batch}".encode()).hexdigest()[:8], 16)


def _read_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise HermesBenchError(f"cannot read image {path} ({type(err).__name__}): delete it and its prompt "
                               "folder, then rerun to regenerate it") from None


def generate(model: UnifiedModel, spec: TaskSpec, prompts: list[dict], folder: Path, output: Path,
             batch_size: int, seed: int, guidance_scale: float, progress: bool = True) -> SampleCache:
    """Generate the missing images of `prompts` into folder/<00000>/samples/<0000>.png."""
    n = int(spec.config.get("images_per_prompt", 4))
    state = PartialState()
    cache = SampleCache(output, f"generation.{spec.name}", state.process_index)
    keys = [digest(model.name, p["prompt"], n, guidance_scale, seed, i) for i, p in enumerate(prompts)]
    per_batch = max(1, batch_size // n)
    batches = [list(range(s, min(s + per_batch, len(prompts)))) for s in range(0, len(prompts), per_batch)]
    mine = [(b, idx) for b, idx in enumerate(batches) if b % state.num_processes == state.process_index]
    for b, indices in tqdm(mine, desc=spec.name, disable=not progress, leave=False):
        if all(keys[i] in cache and all((output / p).is_file() for p in cache.get(keys[i])) for i in indices):
            continue
        images = model.generate_images([prompts[i]["prompt"] for i in indices], n, guidance_scale,
                                       _seed(seed, spec.name, b))
        entries = {}
        for i, ims in zip(indices, images, strict=True):
            prompt_dir = folder / f"{i:05d}"
            atomic_write_jsonl(prompt_dir / "metadata.jsonl", [prompts[i]])
            paths = []
            for k, im in enumerate(ims):
                atomic_save_png(prompt_dir / "samples" / f"{k:04d}.png", im)
                paths.append(str((prompt_dir / "samples" / f"{k:04d}.png").relative_to(output)))
            entries[keys[i]] = paths
        cache.put_many(entries)
    state.wait_for_everyone()
    return cache


def score(spec: TaskSpec, prompts: list[dict], cache: SampleCache, output: Path, model_name: str,
          guidance_scale: float, seed: int) -> list[dict]:
    """One record per image: detections, GenEval verdict and reason."""
    detector = DETECTORS[spec.config.get("detector", "shapes")]
    n = int(spec.config.get("images_per_prompt", 4))
    records = []
    for i, meta in enumerate(prompts):
        for k, rel in enumerate(cache.get(digest(model_name, meta["prompt"], n, guidance_scale, seed, i))):
            detections = detector(_read_image(output / rel))
            correct, reason = geneval.judge(geneval.select(detections, meta["tag"]), meta)
            records.append({"prompt_index": i, "image_index": k, "tag": meta["tag"], "prompt": meta["prompt"],
                            "path": rel, "correct": correct, "reason": reason,
                            "detections": [[d.label, d.color, round(d.score, 4), d.box] for d in detections]})
    return records


def overall(records: list[dict]) -> float:
    return geneval.tag_scores([r["tag"] for r in records], [r["correct"] for r in records])["overall"]


def run_generation(model: UnifiedModel, spec: TaskSpec, output: Path, batch_size: int, limit: int | None,
                   seed: int, guidance_scale: float, progress: bool = True) -> tuple[dict, list[dict], int]:
    """Metrics (per tag and overall), per-image records, and how many prompts were generated anew."""
    prompts = load_prompts(spec)[:limit]
    computed = generate(model, spec, prompts, output / "images" / spec.name, output, batch_size, seed,
                        guidance_scale, progress).computed
    cache = SampleCache(output, f"generation.{spec.name}")  # every process's batches
    records = score(spec, prompts, cache, output, model.name, guidance_scale, seed)
    return geneval.tag_scores([r["tag"] for r in records], [r["correct"] for r in records]), records, computed
