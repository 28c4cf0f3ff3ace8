"""Janus / Janus-Pro through transformers' JanusForConditionalGeneration."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoProcessor, JanusForConditionalGeneration

from hermes_bench.errors import HermesBenchError
from hermes_bench.models.base import (
    IMAGE_PLACEHOLDER,
    UnifiedModel,
    mask_positions,
    right_pad,
    token_logprobs,
)


class JanusModel(UnifiedModel):
    def __init__(self, name: str, path: Path | None, source: str, device: str, dtype: torch.dtype) -> None:
        super().__init__(name, path)
        self.processor = AutoProcessor.from_pretrained(source)
        self.processor.tokenizer.padding_side = "left"  # batched generation continues from the right edge
        self.model = JanusForConditionalGeneration.from_pretrained(source, dtype=dtype).to(device).eval()
        self.device = torch.device(device)
        self.module = self.model

    @property
    def default_guidance_scale(self) -> float:
        return float(self.model.generation_config.guidance_scale or 5.0)

    def _prompt(self, text: str, n_images: int, generation_mode: str = "text") -> str:
        """The model's own image token in place of ours, and its chat template when it has one."""
        if generation_mode == "text":
            missing = n_images - text.count(IMAGE_PLACEHOLDER)
            text = IMAGE_PLACEHOLDER * max(missing, 0) + text
        if self.processor.chat_template is None:
            return text.replace(IMAGE_PLACEHOLDER, self.processor.image_token)
        parts = text.split(IMAGE_PLACEHOLDER)
        content = [{"type": "text", "text": parts[0]}] if parts[0] else []
        for part in parts[1:]:
            content.append({"type": "image"})
            if part:
                content.append({"type": "text", "text": part})
        return self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                  add_generation_prompt=True)

    @torch.inference_mode()
    def _answer(self, prompts, images, max_new_tokens, do_sample, temperature, top_k):
        texts = [self._prompt(p, len(ims)) for p, ims in zip(prompts, images, strict=True)]
        flat = [im.convert("RGB") for ims in images for im in ims]
        inputs = self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt")
        inputs = inputs.to(self.device, dtype=self.model.dtype)
        sampling = {"temperature": temperature, "top_k": top_k} if do_sample else {}
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=do_sample, **sampling)
        return self.processor.batch_decode(out[:, inputs.input_ids.shape[1]:], skip_special_tokens=True)

    @torch.inference_mode()
    def _generate_images(self, prompts, n, guidance_scale, seed):
        if guidance_scale <= 1:  # Janus' generate always batches the unconditional branch, which CFG > 1 folds in
            raise HermesBenchError(f"guidance scale {guidance_scale:g}: Janus needs a CFG scale above 1")
        texts = [self._prompt(p, 0, generation_mode="image") for p in prompts]
        inputs = self.processor(text=texts, generation_mode="image", padding=True, return_tensors="pt")
        torch.manual_seed(seed)
        tokens = self.model.generate(**inputs.to(self.device), generation_mode="image", do_sample=True,
                                     guidance_scale=guidance_scale, num_return_sequences=n)
        pixels = self.model.model.vqmodel.decode(tokens).float().cpu()
        flat = self.processor.postprocess(list(pixels), return_tensors="PIL.Image.Image")["pixel_values"]
        return [flat[i * n:(i + 1) * n] for i in range(len(prompts))]

    def answer_logprobs(self, prompts, images, answers):
        texts = [self._prompt(p, len(ims)) for p, ims in zip(prompts, images, strict=True)]
        flat = [im.convert("RGB") for ims in images for im in ims]
        inputs = self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt")
        inputs = inputs.to(self.device, dtype=self.model.dtype)
        tokenizer = self.processor.tokenizer
        targets = [[*tokenizer(a, add_special_tokens=False).input_ids, tokenizer.eos_token_id] for a in answers]
        answer_ids, answer_mask = right_pad(targets, tokenizer.pad_token_id)
        ids = torch.cat([inputs.input_ids, answer_ids.to(self.device)], 1)
        mask = torch.cat([inputs.attention_mask, answer_mask.to(self.device)], 1)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=mask_positions(mask),
                            pixel_values=inputs.get("pixel_values")).logits
        start = inputs.input_ids.shape[1]
        return token_logprobs(logits[:, start - 1:-1], answer_ids.to(self.device), answer_mask.to(self.device))

    @torch.no_grad()
    def image_tokens(self, images):
        pixels = self.processor.image_processor([im.convert("RGB") for im in images], return_tensors="pt")
        pixels = pixels.pixel_values.to(self.device, dtype=self.model.dtype)
        return self.model.model.vqmodel.encode(pixels).image_tokens.view(len(images), -1)

    def image_logprobs(self, prompts, tokens, unconditional=None):
        texts = [self._prompt(p, 0, generation_mode="image") for p in prompts]
        inputs = self.processor(text=texts, generation_mode="image", padding=True, return_tensors="pt")
        ids, mask = inputs.input_ids.to(self.device), inputs.attention_mask.to(self.device)
        if unconditional is not None:  # Janus' CFG branch: all but BOS and <begin_of_image> become padding
            config = self.model.generation_config
            keep = (ids == config.bos_token_id) | (ids == config.generation_kwargs["boi_token_id"])
            ids = torch.where(unconditional.to(self.device)[:, None] & ~keep, config.pad_token_id, ids)
        tokens = tokens.to(self.device)
        embeds = torch.cat([self.model.get_input_embeddings()(ids),
                            self.model.prepare_embeddings_for_image_generation(tokens[:, :-1])], 1)
        full_mask = torch.cat([mask, torch.ones_like(tokens[:, :-1])], 1)
        hidden = self.model.model.language_model(inputs_embeds=embeds, attention_mask=full_mask,
                                                 position_ids=mask_positions(full_mask)).last_hidden_state
        logits = self.model.model.generation_head(hidden[:, ids.shape[1] - 1:])
        return token_logprobs(logits, tokens, torch.ones_like(tokens))

    def save(self, folder):
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
