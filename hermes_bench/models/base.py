"""The interface every unified model adapter implements: answer questions about images, generate images."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image
from transformers import AutoProcessor

from hermes_bench.storage import digest, files_sha256

IMAGE_PLACEHOLDER = "<image>"  # lm-eval's generic placeholder; adapters swap in their own image token


class Answerer(Protocol):
    """What a judge needs: a name, a fingerprint of what its answers depend on (cache keys use it), and answers to
    prompts about images (a UnifiedModel, or an API model)."""

    name: str
    fingerprint: str

    def answer(self, prompts: list[str], images: list[list[Image.Image]], max_new_tokens: int = 16) -> list[str]:
        ...


class UnifiedModel(ABC):
    """A model that understands and generates images. Adapters implement `_answer`, `_generate_image_tokens` and
    `_decode_images`; the public methods add timing so the harness can tell model time from its own. For alignment
    they also give teacher-forced logits (so per-sample summed log-probs, with gradients) of an answer and of an
    image's codes, and save their weights."""

    module: torch.nn.Module  # the network that alignment trains
    lora_targets: str | None = None  # LoRA's default modules: a regex fully matching names in `module`

    def __init__(self, name: str, path: Path | None) -> None:
        self.name = name
        self.path = path
        self.model_seconds = 0.0
        self._weights_sha256: str | None = None

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
        flat = self.decode_images(self.generate_image_tokens(prompts, n, guidance_scale, seed))
        return [flat[i * n:(i + 1) * n] for i in range(len(prompts))]

    def generate_image_tokens(self, prompts: list[str], n: int, guidance_scale: float, seed: int) -> torch.Tensor:
        """The image codes of n sampled images per prompt (prompt-major): (len(prompts) * n, codes)."""
        start = time.perf_counter()
        try:
            return self._generate_image_tokens(prompts, n, guidance_scale, seed)
        finally:
            self.model_seconds += time.perf_counter() - start

    def decode_images(self, tokens: torch.Tensor) -> list[Image.Image]:
        """Images from their codes (what image_tokens gives and image_logits scores)."""
        start = time.perf_counter()
        try:
            return self._decode_images(tokens)
        finally:
            self.model_seconds += time.perf_counter() - start

    @abstractmethod
    def _answer(self, prompts: list[str], images: list[list[Image.Image]], max_new_tokens: int,
                do_sample: bool, temperature: float, top_k: int | None) -> list[str]: ...

    @abstractmethod
    def _generate_image_tokens(self, prompts: list[str], n: int, guidance_scale: float, seed: int) -> torch.Tensor: ...

    @abstractmethod
    def _decode_images(self, tokens: torch.Tensor) -> list[Image.Image]: ...

    @property
    @abstractmethod
    def default_guidance_scale(self) -> float: ...

    def answer_logprobs(self, prompts: list[str], images: list[list[Image.Image]],
                        answers: list[str]) -> torch.Tensor:
        """Summed log-prob of each answer (its tokens and the end-of-sequence token) given its prompt and images,
        the prompt built as `answer` builds it: (batch,), with gradients."""
        return token_logprobs(*self.answer_logits(prompts, images, answers))

    def image_logprobs(self, prompts: list[str], tokens: torch.Tensor, unconditional: torch.Tensor | None = None,
                       keys: list[str] | None = None) -> torch.Tensor:
        """Summed log-prob of each image's tokens given its prompt, teacher-forced; rows where `unconditional`
        is True see the model's unconditional (CFG) prompt instead: (batch,), with gradients. A family whose
        log-prob is a Monte-Carlo estimate (Show-o) draws it from each row's key, so equal keys give equal draws
        (default: the prompt); exact families ignore keys."""
        return token_logprobs(*self.image_logits(prompts, tokens, unconditional, keys))

    @abstractmethod
    def answer_logits(self, prompts: list[str], images: list[list[Image.Image]],
                      answers: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced logits predicting each answer token (batch, length, vocab), the tokens (batch, length)
        and their mask."""

    @abstractmethod
    def image_tokens(self, images: list[Image.Image]) -> torch.Tensor:
        """The image tokenizer's codes for each image, (batch, codes): what image_logits scores."""

    @abstractmethod
    def image_logits(self, prompts: list[str], tokens: torch.Tensor, unconditional: torch.Tensor | None = None,
                     keys: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced logits predicting each image token as the model samples it (batch, length, vocab), the
        target ids (batch, length) and a mask of the positions scored (see image_logprobs for keys)."""

    @abstractmethod
    def save(self, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Weights, config and processor, loadable again by path. `state_dict`: the module's weights gathered from
        a sharding engine (default: the module's own)."""

    def weights_sha256(self) -> str | None:
        """Hash of the weight files, so a result names exactly which weights produced it (read once)."""
        if self.path is None:
            return None
        if self._weights_sha256 is None:
            files = sorted(self.path.glob("*.safetensors")) + sorted(self.path.glob("*.bin"))
            self._weights_sha256 = files_sha256(files)
        return self._weights_sha256

    @property
    def fingerprint(self) -> str:
        """What this model's outputs depend on, for cache keys: its name, weights (their sha256; a hub model's
        revision) and dtype. Overwriting a checkpoint in place changes it, so stale outputs are never reused."""
        revision = self.weights_sha256() or getattr(getattr(self.module, "config", None), "_commit_hash", None)
        return digest(self.name, revision, str(getattr(self.module, "dtype", "")))


class TransformersModel(UnifiedModel):
    """A unified model that transformers ships: its processor and model class, loaded by path or hub id.
    Subclasses name the class, the image inputs their forward takes, and implement generation."""

    model_class: type
    image_input_names: tuple[str, ...] = ("pixel_values",)
    answer_kwargs: dict = {}  # noqa: RUF012 - read only: extra generate() arguments for text answers

    def __init__(self, name: str, path: Path | None, source: str, device: str, dtype: torch.dtype) -> None:
        super().__init__(name, path)
        self.processor = AutoProcessor.from_pretrained(source, trust_remote_code=False)
        self.processor.tokenizer.padding_side = "left"  # batched generation continues from the right edge
        self.model = self.model_class.from_pretrained(source, dtype=dtype, trust_remote_code=False).to(device).eval()
        self.device = torch.device(device)
        self.module = self.model

    def understanding_inputs(self, prompts: list[str], images: list[list[Image.Image]]):
        """The processor's batch for prompts with images, built as `answer` builds it."""
        texts = [chat_prompt(self.processor, p, len(ims)) for p, ims in zip(prompts, images, strict=True)]
        flat = [im.convert("RGB") for ims in images for im in ims]
        inputs = self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt")
        return inputs.to(self.device, dtype=self.model.dtype)

    @torch.inference_mode()
    def _answer(self, prompts, images, max_new_tokens, do_sample, temperature, top_k):
        inputs = self.understanding_inputs(prompts, images)
        sampling = {"temperature": temperature, "top_k": top_k} if do_sample else {}
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=do_sample, **sampling,
                                  **self.answer_kwargs)
        return self.processor.batch_decode(out[:, inputs.input_ids.shape[1]:], skip_special_tokens=True)

    def answer_logits(self, prompts, images, answers):
        tokenizer = self.processor.tokenizer
        targets = [[*tokenizer(a, add_special_tokens=False).input_ids, tokenizer.eos_token_id] for a in answers]
        return self.answer_token_logits(self.understanding_inputs(prompts, images), targets)

    def answer_token_logits(self, inputs, targets: list[list[int]]) -> tuple[torch.Tensor, ...]:
        """As answer_logits, for answers given as token ids after `inputs` (from understanding_inputs)."""
        return teacher_forced(self.model, inputs, targets, self.processor.tokenizer.pad_token_id,
                              **{k: inputs.get(k) for k in self.image_input_names})

    def save(self, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        self.model.save_pretrained(folder, state_dict=state_dict)
        self.processor.save_pretrained(folder)


def chat_prompt(processor, text: str, n_images: int, generation_mode: str = "text") -> str:
    """A prompt with the processor's own image token in place of ours (missing ones go first), in its chat
    template when it has one."""
    if generation_mode == "text":
        text = IMAGE_PLACEHOLDER * max(n_images - text.count(IMAGE_PLACEHOLDER), 0) + text
    if processor.chat_template is None:
        return text.replace(IMAGE_PLACEHOLDER, processor.image_token)
    parts = text.split(IMAGE_PLACEHOLDER)
    content = [{"type": "text", "text": parts[0]}] if parts[0] else []
    for part in parts[1:]:
        content.append({"type": "image"})
        if part:
            content.append({"type": "text", "text": part})
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)


def right_pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows padded on the right, and their mask."""
    width = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    return ids, (torch.arange(width) < torch.tensor([len(r) for r in rows])[:, None]).long()


def teacher_forced(model: torch.nn.Module, inputs, targets: list[list[int]], pad: int,
                   **image_inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prompts (left-padded `inputs`) followed by target tokens (right-padded), in one forward: the logits
    predicting each target token, the tokens and their mask."""
    answer_ids, answer_mask = (t.to(inputs.input_ids.device) for t in right_pad(targets, pad))
    ids = torch.cat([inputs.input_ids, answer_ids], 1)
    mask = torch.cat([inputs.attention_mask, answer_mask], 1)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=mask_positions(mask), **image_inputs).logits
    start = inputs.input_ids.shape[1]
    return logits[:, start - 1:-1], answer_ids, answer_mask


def mask_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding, so a padded row scores as it would alone."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over each row of log p(target) where mask is set, in float32: (batch,)."""
    picked = logits.float().log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
    return (picked * mask).sum(-1)
