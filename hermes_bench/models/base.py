"""The interface every unified model adapter implements: answer questions about images, generate images."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

import torch
from PIL import Image

from hermes_bench.results import files_sha256

IMAGE_PLACEHOLDER = "<image>"  # lm-eval's generic placeholder; adapters swap in their own image token


class UnifiedModel(ABC):
    """A model that understands and generates images. Adapters implement `_answer` and `_generate_images`;
    the public methods add timing so the harness can tell model time from its own. For alignment they also
    give per-sample summed log-probs (with gradients) of an answer and of an image's tokens, and save their
    weights."""

    module: torch.nn.Module  # the network that alignment trains

    def __init__(self, name: str, path: Path | None) -> None:
        self.name = name
        self.path = path
        self.model_seconds = 0.0

    def answer(self, prompts: list[str], images: list[list[Image.Image]], max_new_tokens: int = 16,
               do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None) -> list[str]:
        """One answer per prompt; prompt i mentions its images with IMAGE_PLACEHOLDER (else they go first)."""
        start = time.perf_counter()
        try:
            return self._answer(prompts, images, max_new_tokens, do_sample, temperature, top_k)
        finally:
            self.model_seconds += time.perf_counter() - start

    def generate_images(self, prompts: list[str], n: int, guidance_scale: float, seed: int) -> list[list[Image.Image]]:
        """n images per prompt, seeded, with classifier-free guidance."""
        start = time.perf_counter()
        try:
            return self._generate_images(prompts, n, guidance_scale, seed)
        finally:
            self.model_seconds += time.perf_counter() - start

    @abstractmethod
    def _answer(self, prompts: list[str], images: list[list[Image.Image]], max_new_tokens: int,
                do_sample: bool, temperature: float, top_k: int | None) -> list[str]: ...

    @abstractmethod
    def _generate_images(self, prompts: list[str], n: int, guidance_scale: float,
                         seed: int) -> list[list[Image.Image]]: ...

    @property
    @abstractmethod
    def default_guidance_scale(self) -> float: ...

    @abstractmethod
    def answer_logprobs(self, prompts: list[str], images: list[list[Image.Image]],
                        answers: list[str]) -> torch.Tensor:
        """Summed log-prob of each answer (its tokens and the end-of-sequence token) given its prompt and images,
        the prompt built as `answer` builds it: (batch,)."""

    @abstractmethod
    def image_tokens(self, images: list[Image.Image]) -> torch.Tensor:
        """The discrete tokens the model generates an image as: (batch, tokens)."""

    @abstractmethod
    def image_logprobs(self, prompts: list[str], tokens: torch.Tensor,
                       unconditional: torch.Tensor | None = None) -> torch.Tensor:
        """Summed log-prob of each image's tokens given its prompt, teacher-forced; rows where `unconditional`
        is True see the model's unconditional (CFG) prompt instead: (batch,)."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Weights, config and processor, loadable again by path."""

    def weights_sha256(self) -> str | None:
        """Hash of the weight files, so a result names exactly which weights produced it."""
        if self.path is None:
            return None
        return files_sha256(sorted(self.path.glob("*.safetensors")) + sorted(self.path.glob("*.bin")))


def right_pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows padded on the right, and their mask."""
    width = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    return ids, (torch.arange(width) < torch.tensor([len(r) for r in rows])[:, None]).long()


def mask_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding, so a padded row scores as it would alone."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over each row of log p(target) where mask is set, in float32: (batch,)."""
    picked = logits.float().log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
    return (picked * mask).sum(-1)
