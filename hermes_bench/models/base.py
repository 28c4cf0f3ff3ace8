"""The interface every unified model adapter implements: answer questions about images, generate images."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

from PIL import Image

from hermes_bench.results import files_sha256

IMAGE_PLACEHOLDER = "<image>"  # lm-eval's generic placeholder; adapters swap in their own image token


class UnifiedModel(ABC):
    """A model that understands and generates images. Adapters implement `_answer` and `_generate_images`;
    the public methods add timing so the harness can tell model time from its own."""

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

    def weights_sha256(self) -> str | None:
        """Hash of the weight files, so a result names exactly which weights produced it."""
        if self.path is None:
            return None
        return files_sha256(sorted(self.path.glob("*.safetensors")) + sorted(self.path.glob("*.bin")))
