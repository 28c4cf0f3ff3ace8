"""Janus / Janus-Pro through transformers' JanusForConditionalGeneration."""

from __future__ import annotations

import torch
from transformers import JanusForConditionalGeneration

from hermes_bench.errors import HermesBenchError
from hermes_bench.models.base import TransformersModel, chat_prompt, mask_positions


class JanusModel(TransformersModel):
    model_class = JanusForConditionalGeneration
    lora_targets = r"model\.language_model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)"

    @property
    def default_guidance_scale(self) -> float:
        return float(self.model.generation_config.guidance_scale or 5.0)

    @torch.inference_mode()
    def _generate_image_tokens(self, prompts, n, guidance_scale, seed):
        if guidance_scale <= 1:  # Janus' generate always batches the unconditional branch, which CFG > 1 folds in
            raise HermesBenchError(f"guidance scale {guidance_scale:g}: Janus needs a CFG scale above 1")
        texts = [chat_prompt(self.processor, p, 0, generation_mode="image") for p in prompts]
        inputs = self.processor(text=texts, generation_mode="image", padding=True, return_tensors="pt")
        torch.manual_seed(seed)
        return self.model.generate(**inputs.to(self.device), generation_mode="image", do_sample=True,
                                   guidance_scale=guidance_scale, num_return_sequences=n)

    @torch.inference_mode()
    def _decode_images(self, tokens):
        pixels = self.model.model.vqmodel.decode(tokens.to(self.device)).float().cpu()
        return self.processor.postprocess(list(pixels), return_tensors="PIL.Image.Image")["pixel_values"]

    @torch.no_grad()
    def image_tokens(self, images):
        pixels = self.processor.image_processor([im.convert("RGB") for im in images], return_tensors="pt")
        pixels = pixels.pixel_values.to(self.device, dtype=self.model.dtype)
        return self.model.model.vqmodel.encode(pixels).image_tokens.view(len(images), -1)

    def image_logits(self, prompts, tokens, unconditional=None, keys=None):
        texts = [chat_prompt(self.processor, p, 0, generation_mode="image") for p in prompts]
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
        return logits, tokens, torch.ones_like(tokens)
