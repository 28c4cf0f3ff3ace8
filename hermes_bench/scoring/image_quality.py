"""Image-quality metrics on torchmetrics: FID (FrechetInceptionDistance) and CLIP score (CLIPScore).

Both are accumulated states (feature sums and covariance sums; score sums and each caption's score) that
torchmetrics sums or concatenates across processes at compute(), so several processes give one process' value.
The feature network runs outside the FID metric, batch by batch, so that each batch's features can be kept on
disk: a resumed run feeds finished batches from there (`Passthrough` hands them to torchmetrics as they are).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn
from torchmetrics.functional.multimodal.clip_score import _clip_score_update
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.multimodal.clip_score import CLIPScore
from torchmetrics.utilities import dim_zero_cat

from hermes_bench.storage import atomic_write_bytes

REAL_STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


def square_uint8(images: list[Image.Image], size: int) -> torch.Tensor:
    """FID's input: each image centre-cropped to a square, resized (bicubic) to size x size; (N, 3, size, size)."""
    arrays = []
    for image in images:
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        square = image.convert("RGB").crop((left, top, left + side, top + side))
        arrays.append(np.asarray(square.resize((size, size), Image.Resampling.BICUBIC)))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def as_uint8(image: Image.Image) -> torch.Tensor:
    """CLIP's input: the whole image, (3, H, W) uint8; CLIP's processor resizes and crops it."""
    return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).contiguous()


class Passthrough(nn.Module):
    """FID's `feature` module for features computed (or read back) outside the metric."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_metric(num_features: int) -> FrechetInceptionDistance:
    """torchmetrics' FID over features; the real statistics survive reset() (they are computed once). It starts
    with an empty update, as CaptionClipScore.per_caption does: torchmetrics' FID cannot compute() on a process
    that never updated, and a process left without a batch of its own must still take part in the sync."""
    metric = FrechetInceptionDistance(feature=Passthrough(num_features), reset_real_features=False)
    metric.update(torch.zeros(0, num_features), real=False)
    return metric


def save_real_stats(metric: FrechetInceptionDistance, path: Path, provenance: dict) -> None:
    """The real images' accumulated states, with where they came from, as safetensors (written atomically)."""
    states = {name: getattr(metric, name).detach().cpu().contiguous() for name in REAL_STATES}
    atomic_write_bytes(path, save(states, metadata={"provenance": json.dumps(provenance)}))


def load_real_stats(metric: FrechetInceptionDistance, path: Path) -> bool:
    """Fill the metric's real states from a file save_real_stats wrote; False when there is none (or it is torn)."""
    try:
        states = load_file(path)
    except (OSError, SafetensorError):
        return False
    if set(states) != set(REAL_STATES) or states["real_features_sum"].shape != metric.real_features_sum.shape:
        return False
    for name in REAL_STATES:
        setattr(metric, name, states[name].to(getattr(metric, name).device))
    return True


class _ClipTensors(nn.Module):
    """A transformers CLIP whose get_*_features return tensors, as torchmetrics expects (transformers 5 returns
    output objects, with the projected embeddings as pooler_output)."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.clip = clip
        self.config = clip.config

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return _tensor(self.clip.get_image_features(pixel_values=pixel_values))

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return _tensor(self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask))


def _tensor(output: torch.Tensor | object) -> torch.Tensor:
    return getattr(output, "pooler_output", output)


class CaptionClipScore(CLIPScore):
    """torchmetrics' CLIPScore (100 x cosine of image and caption embeddings; compute() is the mean, floored at 0)
    that also keeps each caption's score and row, so that its interval can resample captions."""

    def __init__(self, load: Callable[[], tuple[nn.Module, object]]) -> None:
        super().__init__(model_name_or_path=lambda: _with_tensors(load()))
        self.add_state("rows", [], dist_reduce_fx="cat")
        self.add_state("scores", [], dist_reduce_fx="cat")

    def update(self, rows: torch.Tensor, images: list[torch.Tensor] | None = None, captions: list[str] | None = None,
               scores: torch.Tensor | None = None) -> None:
        """Each row's caption scored against its image; or `scores` computed before (a resumed run's batches)."""
        if scores is None:
            scores, _ = _clip_score_update(images, captions, self.model, self.processor)
        scores = scores.detach().to(self.score.device, self.score.dtype)
        self.score += scores.sum(0)
        self.n_samples += len(scores)
        self.rows.append(rows.to(self.score.device))
        self.scores.append(scores)

    def per_caption(self) -> dict[int, float]:
        """{row: score} over every process (call it on all of them: it synchronises)."""
        if not self.rows:  # a process with no captions still takes part in the gather
            self.update(torch.zeros(0, dtype=torch.long), scores=torch.zeros(0))
        with self.sync_context():
            rows, scores = dim_zero_cat(self.rows), dim_zero_cat(self.scores)
        return dict(zip(rows.tolist(), scores.tolist(), strict=True))


def _with_tensors(loaded: tuple[nn.Module, object]) -> tuple[nn.Module, object]:
    model, processor = loaded
    return _ClipTensors(model), processor
