"""MSCOCO-30K: FID and CLIP score of images generated from COCO captions (HermesFlow's Table 3).

Data: a dataset with an image and a caption column, from the hub or a --data-dir mirror (by default
sayakpaul/coco-30-val-2014: 30,000 image-caption pairs sampled from COCO val2014). The captions scored are the
first N rows of a seeded permutation of the dataset's rows (N = subset.size, 30,000; --limit for fewer).
Layout: <folder>/<row>.png (row zero-padded to 5 digits), one image per caption, where row is the caption's row
in the dataset; `hermes-bench score coco30k FOLDER` reads the same names.

Protocol:
- FID: real images = the chosen captions' own images. Real and generated images alike are centre-cropped to a
  square and resized (bicubic) to fid.image_size, then go through the FID Inception (fid_inception.py). The real
  statistics are computed once and cached, keyed by the data's fingerprint, the rows and the feature network.
- CLIP score: each generated image, whole, against its caption, with torchmetrics' CLIPScore.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path

import torch
from accelerate import PartialState
from huggingface_hub.constants import HF_HUB_CACHE
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from tqdm import tqdm
from transformers import AutoConfig, AutoProcessor, CLIPModel

from hermes_bench.errors import HermesBenchError, refuse_remote_code
from hermes_bench.hub import SOURCES, decode_image, load_split
from hermes_bench.models.base import UnifiedModel
from hermes_bench.processes import my_share
from hermes_bench.registry import TaskSpec
from hermes_bench.runners.generation import GenerationResult, GenerationSettings, generate, read_image
from hermes_bench.scoring import image_quality as iq
from hermes_bench.scoring.fid_inception import load_fid_inception
from hermes_bench.storage import SampleCache, atomic_save_png, atomic_write_bytes, digest, stat_fingerprint

CACHE_ENV = "HERMES_BENCH_CACHE"  # where real-image FID statistics are kept: ~/.cache/hermes-bench by default
CLIP_ID = "openai/clip-vit-large-patch14"


class Captions:
    """The task's dataset and the rows it scores, in order."""

    def __init__(self, spec: TaskSpec, limit: int | None = None) -> None:
        data = spec.config.get("dataset", {})
        subset = spec.config.get("subset", {})
        self.image_field, self.caption_field = data.get("image_field", "image"), data.get("caption_field", "caption")
        path, split = data.get("path", "sayakpaul/coco-30-val-2014"), data.get("split", "train")
        self.name = f"dataset {path} split {split}"
        self.rows_data = load_split(path, split, [self.image_field, self.caption_field],
                                    image_fields=[self.image_field])[split]
        self.fingerprint = SOURCES[path]["fingerprint"] or path  # a mirror's files, or the hub revision's data
        self.captions = list(self.rows_data[self.caption_field])  # one column read, not a row (and image) per caption
        order = random.Random(subset.get("seed", 0)).sample(range(len(self.rows_data)), len(self.rows_data))
        self.rows = order[:min(subset.get("size", 30_000), limit or len(order))]
        if not self.rows:
            raise HermesBenchError(f"{self.name} has no rows: point --data-dir at a mirror that holds the captions")

    def caption(self, row: int) -> str:
        text = self.captions[row]
        if not isinstance(text, str) or not text.strip():
            raise HermesBenchError(f"{self.name} row {row}: the caption is empty; fix or remove that row")
        return text

    def image(self, row: int):
        return decode_image(self.rows_data[row][self.image_field], f"{self.name} row {row}")


def image_path(folder: Path, row: int) -> Path:
    return folder / f"{row:05d}.png"


def _clip_source(spec: TaskSpec, settings: GenerationSettings) -> str:
    return settings.clip_model or spec.config.get("clip_model", CLIP_ID)


def _check_clip(source: str) -> None:
    refuse_remote_code(source, "CLIP model")
    try:
        AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError):
        raise HermesBenchError(f"CLIP score needs the CLIP model {source}, which is not available here: "
                               "download it into the Hugging Face cache "
                               f"{HF_HUB_CACHE} (hf download {source}) or pass --clip-model FOLDER") from None


def _load_clip(source: str, device: str) -> iq.CaptionClipScore:
    def load():
        return (CLIPModel.from_pretrained(source, trust_remote_code=False).eval(),
                AutoProcessor.from_pretrained(source, trust_remote_code=False))
    return iq.CaptionClipScore(load).to(device)


def _fid_settings(spec: TaskSpec) -> tuple[str, int]:
    fid = spec.config.get("fid", {})
    return fid.get("resize", "tf1"), int(fid.get("image_size", 256))


def preflight(spec: TaskSpec, settings: GenerationSettings) -> None:
    """The captions, the Inception weights and the CLIP model, all before any model work."""
    Captions(spec, settings.limit)
    load_fid_inception(settings.fid_features, _fid_settings(spec)[0])
    _check_clip(_clip_source(spec, settings))


class _Scorer:
    """Feature network and both metrics; each batch's features and scores are kept so a rerun skips it."""

    def __init__(self, spec: TaskSpec, settings: GenerationSettings, output: Path) -> None:
        resize, self.size = _fid_settings(spec)
        network, self.feature_fingerprint = load_fid_inception(settings.fid_features, resize)
        self.network = network.to(settings.device)
        clip_source = _clip_source(spec, settings)
        _check_clip(clip_source)
        self.clip = _load_clip(clip_source, settings.device)
        self.clip_fingerprint = (clip_source, stat_fingerprint(clip_source))
        self.fid = iq.frechet_metric(self.network.num_features).to(settings.device)
        self.features_dir = output / "cache" / "features"
        self.clip_cache = SampleCache(output, f"clip_score.{spec.name}", PartialState().process_index)
        self.device, self.batch_size, self.progress = settings.device, settings.batch_size, settings.progress

    @torch.no_grad()
    def features(self, images: list) -> torch.Tensor:
        path = self.features_dir / f"{digest(self.feature_fingerprint, self.size, images)}.safetensors"
        try:
            return load_file(path)["features"].to(self.device)
        except (OSError, SafetensorError, KeyError):
            pass
        found = self.network(iq.square_uint8(images, self.size).to(self.device)).float()
        atomic_write_bytes(path, save({"features": found.cpu().contiguous()}))
        return found

    def batches(self, rows: list[int], desc: str) -> Iterable[tuple[int, list[int]]]:
        chunks = [rows[s:s + self.batch_size] for s in range(0, len(rows), self.batch_size)]
        return tqdm(my_share(chunks), desc=desc, disable=not self.progress, leave=False)

    def real(self, captions: Captions) -> None:
        """The real images' statistics: read from the cache, or computed (in shares) and cached."""
        key = digest(captions.fingerprint, captions.rows, self.size, self.feature_fingerprint)
        cache = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "hermes-bench"))
        path = cache / "fid_stats" / f"{key}.safetensors"
        state = PartialState()
        if path.is_file():  # every process checks: the file is there for all, or for none
            if state.is_main_process and not iq.load_real_stats(self.fid, path):
                raise HermesBenchError(f"cached FID statistics {path} are unreadable: delete the file to recompute "
                                       "them")
            return
        for _, rows in self.batches(captions.rows, "coco30k real images"):
            self.fid.update(self.features([captions.image(r) for r in rows]), real=True)
        with self.fid.sync_context():
            if state.is_main_process:
                iq.save_real_stats(self.fid, path, {
                    "dataset": captions.name, "data_fingerprint": captions.fingerprint, "rows": len(captions.rows),
                    "rows_digest": digest(captions.rows), "image_size": self.size,
                    "feature_network": self.feature_fingerprint})
        state.wait_for_everyone()

    @torch.no_grad()
    def generated(self, captions: Captions, folder: Path) -> None:
        for _, rows in self.batches(captions.rows, "coco30k scoring"):
            images = [read_image(image_path(folder, r)) for r in rows]
            texts = [captions.caption(r) for r in rows]
            self.fid.update(self.features(images), real=False)
            keys = [digest(self.clip_fingerprint, t, im) for t, im in zip(texts, images, strict=True)]
            if all(k in self.clip_cache for k in keys):
                self.clip.update(torch.tensor(rows), scores=torch.tensor([self.clip_cache.get(k) for k in keys]))
                continue
            before = len(self.clip.scores)
            self.clip.update(torch.tensor(rows), [iq.as_uint8(im).to(self.device) for im in images], texts)
            self.clip_cache.put_many(dict(zip(keys, self.clip.scores[before].tolist(), strict=True)))

    def result(self, captions: Captions, folder: Path, computed: int) -> GenerationResult | None:
        """Both metrics over every process; the result on the main process (None elsewhere)."""
        per_caption = self.clip.per_caption()
        clip_score = float(self.clip.compute())
        fid = float(self.fid.compute()) if len(captions.rows) >= 2 else float("nan")  # a covariance needs 2
        if not PartialState().is_main_process:
            return None
        records = [{"row": r, "caption": captions.caption(r), "path": str(image_path(folder, r)),
                    "clip_score": per_caption[r]} for r in captions.rows]
        metrics = {"clip_score": clip_score, "fid": fid, "images": len(records)}
        return GenerationResult(metrics, records, computed, clip_score_of, "row")


def clip_score_of(records: list[dict]) -> float:
    """CLIPScore's compute() on a set of captions: the mean score, floored at 0 (the bootstrap's statistic)."""
    return max(sum(r["clip_score"] for r in records) / len(records), 0.0)


def _score(spec: TaskSpec, settings: GenerationSettings, captions: Captions, folder: Path, output: Path,
           computed: int = 0) -> GenerationResult | None:
    missing = [r for r in captions.rows if not image_path(folder, r).is_file()]
    if missing:
        raise HermesBenchError(f"{len(missing)} of {len(captions.rows)} images are missing from {folder}, the "
                               f"first {image_path(folder, missing[0]).name}: one <row>.png per caption (see "
                               "docs/benchmarks.md)")
    scorer = _Scorer(spec, settings, output)
    scorer.real(captions)
    scorer.generated(captions, folder)
    return scorer.result(captions, folder, computed)


def run(model: UnifiedModel, spec: TaskSpec, settings: GenerationSettings, output: Path) -> GenerationResult | None:
    """One image per caption (resumable), then FID and CLIP score, each process scoring its share."""
    captions = Captions(spec, settings.limit)
    folder = output / "images" / spec.name
    computed = generate(model, spec.name, [captions.caption(r) for r in captions.rows], 1,
                        lambda i, images: _save(folder, captions.rows[i], images), output, settings.batch_size,
                        settings.seed, settings.guidance_scale, settings.progress)
    return _score(spec, settings, captions, folder, output, computed)


def _save(folder: Path, row: int, images: list) -> list[Path]:
    path = image_path(folder, row)
    atomic_save_png(path, images[0])
    return [path]


def score(spec: TaskSpec, config, settings: GenerationSettings, output: Path) -> GenerationResult | None:
    """Images made elsewhere: <folder>/<row>.png for each of the task's captions (the first --limit)."""
    return _score(spec, settings, Captions(spec, settings.limit), config.folder, output)
