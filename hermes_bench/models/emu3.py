"""Emu3 through transformers' Emu3ForConditionalGeneration: one token space for text and images.

An image is a grid of visual tokens, each row closed by an end-of-row token; generation is constrained to that
grid (visual tokens, then end-of-row at each row's end, then end-of-frame, end-of-image, end-of-sequence).
Classifier-free guidance runs the model a second time on the caption-free image prompt.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Emu3ForConditionalGeneration

from hermes_bench.models.base import TransformersModel, chat_prompt, mask_positions

DEFAULT_IMAGE_AREA = 518400  # the processor's default generation area (720 x 720)


class Emu3Model(TransformersModel):
    model_class = Emu3ForConditionalGeneration
    lora_targets = r"model\.text_model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)"
    image_input_names = ("pixel_values", "image_sizes")
    answer_kwargs = {"guidance_scale": None}  # noqa: RUF012 - the config's CFG scale is for images only

    def __init__(self, name: str, path: Path | None, source: str, device: str, dtype: torch.dtype) -> None:
        super().__init__(name, path, source, device, dtype)
        tokenizer, mapping = self.processor.tokenizer, self.model.vocabulary_mapping
        self.visual = torch.tensor(mapping.image_tokens, device=self.device)
        self.specials = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (
            ("wrapper", self.processor.fake_token_around_image), ("eof", self.processor.eof_token),
            ("eoi", self.processor.image_end_token))}
        self.specials.update(eol=mapping.eol_token_id, eos=tokenizer.eos_token_id, pad=tokenizer.pad_token_id)
        self.image_area = min(DEFAULT_IMAGE_AREA, self.processor.image_processor.max_pixels)

    @property
    def default_guidance_scale(self) -> float:
        return float(self.model.generation_config.guidance_scale or 3.0)

    def _image_prompts(self, prompts: list[str]):
        """Caption + '<|image start|>H*W<|image token|>', and the grid's height and width in tokens."""
        texts = [chat_prompt(self.processor, p, 0, generation_mode="image") if p else p for p in prompts]
        inputs = self.processor(text=texts, return_for_image_generation=True, padding=True, return_tensors="pt",
                                image_area=self.image_area)
        height, width = (int(x) for x in inputs.pop("image_sizes")[0])
        return inputs.to(self.device), height, width

    def _allowed(self, height: int, width: int):
        """prefix_allowed_tokens_fn: the grid's visual tokens and end-of-row tokens, then the closing tokens."""
        s, visual = self.specials, self.visual.tolist()
        grid = (width + 1) * height

        def allowed(_: int, ids: torch.Tensor) -> list[int]:
            offset = len(ids) - int(torch.nonzero(ids == s["wrapper"])[0][0])
            if offset <= grid:
                return [s["eol"]] if offset % (width + 1) == 0 else visual
            return {grid + 1: [s["eof"]], grid + 2: [s["eoi"]], grid + 3: [s["eos"]]}.get(offset, [s["pad"]])

        return allowed

    @torch.inference_mode()
    def _generate_image_tokens(self, prompts, n, guidance_scale, seed):
        repeated = [p for p in prompts for _ in range(n)]
        inputs, height, width = self._image_prompts(repeated)
        guidance = {"guidance_scale": guidance_scale}
        if guidance_scale != 1:  # the unconditional branch: the same image prompt without a caption
            empty, _, _ = self._image_prompts([""] * len(repeated))
            guidance.update(negative_prompt_ids=empty.input_ids, negative_prompt_attention_mask=empty.attention_mask)
        torch.manual_seed(seed)
        out = self.model.generate(**inputs, do_sample=True, max_new_tokens=(width + 1) * height + 3,
                                  prefix_allowed_tokens_fn=self._allowed(height, width), **guidance)
        grid = out[:, inputs.input_ids.shape[1]:inputs.input_ids.shape[1] + (width + 1) * height]
        return self.model.vocabulary_mapping.convert_bpe2img(grid.view(len(repeated), height, width + 1)).flatten(1)

    @torch.inference_mode()
    def _decode_images(self, tokens):
        _, height, width = self._image_prompts([""])
        pixels = self.model.model.vqmodel.decode(tokens.view(-1, height, width).to(self.device))
        return self.processor.postprocess(list(pixels.float().cpu()), return_tensors="PIL.Image.Image")["pixel_values"]

    @torch.no_grad()
    def image_tokens(self, images):
        inputs = self.processor.image_processor([im.convert("RGB") for im in images], return_tensors="pt")
        pixels = inputs.pixel_values.to(self.device, dtype=self.model.dtype)
        codes = self.model.model.vqmodel.encode(pixels, inputs.image_sizes.to(self.device)).image_tokens
        return torch.stack([c.flatten() for c in codes])

    def image_logits(self, prompts, tokens, unconditional=None, keys=None):
        drop = unconditional.tolist() if unconditional is not None else [False] * len(prompts)
        inputs, height, width = self._image_prompts(["" if d else p for p, d in zip(prompts, drop, strict=True)])
        mapping = self.model.vocabulary_mapping
        grid = torch.stack([mapping.convert_img2bpe(rows).flatten() for rows in tokens.view(-1, height, width).cpu()])
        grid = grid.to(self.device).long()  # each row of codes closed by end-of-row
        ids = torch.cat([inputs.input_ids, grid], 1)
        mask = torch.cat([inputs.attention_mask, torch.ones_like(grid)], 1)
        start = inputs.input_ids.shape[1]
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=mask_positions(mask)).logits
        logits = logits[:, start - 1:-1]
        is_code = grid != self.specials["eol"]
        # the sampler only ever chooses among visual tokens there: score with that same restriction
        not_visual = torch.ones(logits.shape[-1], dtype=torch.bool, device=self.device)
        not_visual[self.visual] = False
        logits = logits.masked_fill(is_code[..., None] & not_visual, float("-inf"))
        return logits, grid, is_code.long()
