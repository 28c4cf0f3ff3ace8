"""Show-o (and HermesFlow, a Show-o checkpoint) on transformers' Phi and our MAGVIT-v2, loading the official
checkpoint layout unchanged.

Where the three parts come from (`find_parts`):
- a bundle folder `DIR/{showo,magvitv2,tokenizer}`: the Show-o checkpoint, the MAGVIT-v2 checkpoint, and the
  language model's config.json with its tokenizer files (what `save` writes);
- a Show-o checkpoint (a folder or hub id whose config.json has `_class_name: "Showo"`): the language model's
  config and tokenizer from its `llm_model_path` (microsoft/phi-1_5), the image tokenizer from showlab/magvitv2.
The language model is the official Show-o Phi: transformers' Phi with QK LayerNorm forced on, a vocabulary of
`vocab_size` (text, [PAD], nine task tokens, image codes, the mask token) and positions 0..L-1.
Only the VQ-token checkpoints are supported (`w_clip_vit: false`): showlab/show-o, showlab/show-o-512x512 and
Gen-Verse/HermesFlow, the variant HermesFlow's evaluation scripts run.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoTokenizer, DynamicCache, PhiConfig, PhiForCausalLM
from transformers.models.phi.modeling_phi import PhiRotaryEmbedding
from transformers.utils import cached_file

from hermes_bench.errors import HermesBenchError, loading
from hermes_bench.models.base import IMAGE_PLACEHOLDER, UnifiedModel, mask_positions, right_pad
from hermes_bench.models.magvitv2 import MagvitSizes, MagvitV2
from hermes_bench.models.showo_prompting import (
    ShowoVocab,
    dpo_image_mask,
    left_pad,
    maskgit_generate,
    mmu_attention_mask,
    mmu_prefix,
    mmu_question,
    t2i_attention_mask,
    t2i_ids,
)
from hermes_bench.storage import files_sha256

BUNDLE = ("showo", "magvitv2", "tokenizer")
MAGVIT_SOURCE = "showlab/magvitv2"
PHI = "microsoft/phi-1_5"
WEIGHT_NAMES = ("pytorch_model.safetensors", "pytorch_model.bin")  # Show-o's own save, its training script's save
# the official demos: 256 px (256 codes) with guidance 1.75 and 18 steps, 512 px (1024 codes) with 5 and 50
GENERATION_DEFAULTS = {256: (1.75, 18), 1024: (5.0, 50)}
# transformers renamed past_key_values to cache (5.2x); either way the cache object is updated in place
CACHE_ARGUMENT = "cache" if "cache" in inspect.signature(PhiForCausalLM.forward).parameters else "past_key_values"


@dataclass(frozen=True)
class ShowoParts:
    showo: str
    magvit: str
    llm: str


def read_config(source: str, what: str) -> dict:
    path = cached_file(source, "config.json", _raise_exceptions_for_missing_entries=False)
    if path is None:
        raise HermesBenchError(f"{what} {source}: no config.json, neither in a folder nor in the hub cache: download "
                               "it, or use a Show-o bundle (showo/, magvitv2/, tokenizer/; see the README)")
    return json.loads(Path(path).read_text())


def is_showo(config: dict) -> bool:
    return config.get("_class_name") == "Showo"


def is_bundle(folder: Path) -> bool:
    """A Show-o bundle folder: its parts are folders of their own, showo/ among them."""
    return (folder / "showo" / "config.json").is_file()


def find_parts(source: str) -> ShowoParts:
    """The rule in the module docstring."""
    folder = Path(source).expanduser()
    if is_bundle(folder):
        missing = [part for part in BUNDLE if not (folder / part / "config.json").is_file()]
        if missing:
            raise HermesBenchError(f"Show-o bundle {source} lacks {', '.join(f'{m}/config.json' for m in missing)}: a "
                                   "bundle holds showo/ (the checkpoint), magvitv2/ (showlab/magvitv2) and tokenizer/ "
                                   "(microsoft/phi-1_5's config.json and tokenizer files)")
        return ShowoParts(*(str(folder / part) for part in BUNDLE))
    config = read_config(source, "Show-o checkpoint")
    return ShowoParts(source, MAGVIT_SOURCE, config.get("llm_model_path") or PHI)


def _weight_file(source: str) -> Path | None:
    """The checkpoint's weights file, in a folder or the hub cache (Show-o's own name first)."""
    found = (cached_file(source, name, _raise_exceptions_for_missing_entries=False) for name in WEIGHT_NAMES)
    return next((Path(p) for p in found if p is not None), None)


def _weights(source: str, what: str) -> dict[str, torch.Tensor]:
    path = _weight_file(source)
    if path is None:
        raise HermesBenchError(f"{what} {source} has no weights ({' or '.join(WEIGHT_NAMES)}), neither in a folder "
                               "nor in the hub cache: download the checkpoint in full")
    if path.suffix == ".safetensors":
        return load_file(path)
    try:  # tensors only: a pickle that would run code is refused, not run
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise HermesBenchError(f"{what} {source}: {path.name} holds more than tensors (a pickle that would run code), "
                               "which hermes-bench refuses to load: save the weights as safetensors") from None


def load_into(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Weights into a module built on the meta device, every key accounted for; a mismatch names the first keys."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expects {tuple(v.shape)})" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = [f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}" for label, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)) if keys]
        raise HermesBenchError(f"{what} does not fit its config: {'; '.join(parts)}")
    module.load_state_dict(state, assign=True)


def phi_config(llm_config: PhiConfig, vocab_size: int) -> PhiConfig:
    """The official Show-o Phi's config: QK LayerNorm on whatever the Phi config says, the Show-o vocabulary."""
    config = copy.deepcopy(llm_config)
    config.vocab_size, config.qk_layernorm, config.tie_word_embeddings = vocab_size, True, False
    return config


class ShowoNetwork(nn.Module):
    """The trainable network, with the official module names (`showo.` = the Phi causal LM)."""

    def __init__(self, config: PhiConfig) -> None:
        super().__init__()
        self.showo = PhiForCausalLM(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.showo(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          use_cache=False).logits


def build_network(config: PhiConfig, device: str | torch.device = "meta") -> ShowoNetwork:
    with torch.device(device):
        return ShowoNetwork(config)


def build_magvit(sizes: MagvitSizes, device: str | torch.device = "meta") -> MagvitV2:
    with torch.device(device):
        return MagvitV2(sizes)


def load_network(source: str, config: PhiConfig) -> ShowoNetwork:
    network = build_network(config)
    load_into(network, _weights(source, "Show-o checkpoint"), f"Show-o checkpoint {source}")
    with torch.device("cpu"):  # the rotary frequencies are not saved: compute them for real
        network.showo.model.rotary_emb = PhiRotaryEmbedding(config=network.showo.model.rotary_emb.config)
    return network


def load_magvit(source: str) -> MagvitV2:
    magvit = build_magvit(MagvitSizes.from_config(read_config(source, "MAGVIT-v2 checkpoint")))
    load_into(magvit, _weights(source, "MAGVIT-v2 checkpoint"), f"MAGVIT-v2 checkpoint {source}")
    return magvit


def image_transform(image: Image.Image, resolution: int) -> torch.Tensor:
    """The official `image_transform`: shorter side to `resolution` (bicubic), centre crop, scaled to [-1, 1]."""
    image = image.convert("RGB")
    width, height = image.size
    short, long = sorted((width, height))
    size = (resolution, int(resolution * long / short))
    image = image.resize(size if width <= height else size[::-1], Image.BICUBIC)
    width, height = image.size
    top, left = round((height - resolution) / 2.0), round((width - resolution) / 2.0)  # torchvision's centre crop
    image = image.crop((left, top, left + resolution, top + resolution))
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (pixels - 0.5) / 0.5


class ShowoModel(UnifiedModel):
    """Show-o behind the UnifiedModel interface. `logits(input_ids, attention_mask)` is the network's forward for
    ids built as the official code builds them and a boolean [B, 1, L, L] mask (True = may attend)."""

    lora_targets = r"showo\.model\.layers\.\d+\.(self_attn\.([qkv]_proj|dense)|mlp\.fc[12])"

    def __init__(self, name: str, path: Path | None, source: str, device: str, dtype: torch.dtype) -> None:
        super().__init__(name, path)
        self.parts = find_parts(source)
        self.config = read_config(self.parts.showo, "Show-o checkpoint")
        if self.config.get("w_clip_vit"):
            raise HermesBenchError(f"Show-o checkpoint {source} understands images through CLIP-ViT features "
                                   "(w_clip_vit), which hermes-bench does not support: use showlab/show-o-512x512, "
                                   "showlab/show-o or Gen-Verse/HermesFlow")
        with loading(f"Show-o's language model config and tokenizer {self.parts.llm}", f"put {PHI}'s config.json "
                     "and tokenizer files in the hub cache, or use a bundle with them in tokenizer/"):
            self.llm_config = AutoConfig.from_pretrained(self.parts.llm, trust_remote_code=False)
            self.tokenizer = AutoTokenizer.from_pretrained(self.parts.llm, padding_side="left", trust_remote_code=False)
        self.vocab = ShowoVocab.attach(self.tokenizer, self.config["llm_vocab_size"], self.config["vocab_size"])
        self.device = torch.device(device)
        self.network = load_network(self.parts.showo, phi_config(self.llm_config, self.config["vocab_size"]))
        self.network.to(self.device, dtype).eval()
        with loading(f"Show-o's image tokenizer {self.parts.magvit}", f"put {MAGVIT_SOURCE} in the hub cache, or "
                     "use a bundle with it in magvitv2/"):
            self.magvit = load_magvit(self.parts.magvit).to(self.device).eval()  # float32, as the official scripts
        self.module = self.network
        self.num_vq_tokens = int(self.config["num_vq_tokens"])
        if self.vocab.codebook_size != self.magvit.codebook_size:
            raise HermesBenchError(f"Show-o checkpoint {source} has {self.vocab.codebook_size} image codes but its "
                                   f"MAGVIT-v2 has {self.magvit.codebook_size}: pair it with its own image tokenizer")
        self.resolution = math.isqrt(self.num_vq_tokens) * self.magvit.sizes.downsample
        self.guidance_scale, self.steps = GENERATION_DEFAULTS.get(self.num_vq_tokens, (5.0, 50))

    @property
    def default_guidance_scale(self) -> float:
        return self.guidance_scale

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Logits over the whole vocabulary (B, L, vocab_size); positions 0..L-1 unless given."""
        return self.network(input_ids, attention_mask, position_ids)

    # understanding

    @torch.no_grad()
    def image_tokens(self, images):
        pixels = torch.stack([image_transform(im, self.resolution) for im in images]).to(self.device)
        return self.magvit.encode(pixels)

    def _mmu_rows(self, prompts: list[str], images: list[list[Image.Image]]) -> list[list[int]]:
        flat = [im for ims in images for im in ims]
        codes = iter(self.image_tokens(flat) + self.vocab.image_offset) if flat else iter(())
        rows = []
        for prompt, ims in zip(prompts, images, strict=True):
            question = mmu_question(prompt.replace(IMAGE_PLACEHOLDER, "").strip())
            rows.append(mmu_prefix([next(codes) for _ in ims], self.vocab) + self.tokenizer(question)["input_ids"])
        return rows

    def _answer(self, prompts, images, max_new_tokens, do_sample, temperature, top_k):
        return [self._decode_text(row) for row in
                self.answer_ids(prompts, images, max_new_tokens, do_sample, temperature, top_k)]

    @torch.inference_mode()
    def answer_ids(self, prompts: list[str], images: list[list[Image.Image]], max_new_tokens: int,
                   do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None) -> list[list[int]]:
        """The generated token ids of each answer (through its <eos>, when one came), decoded with a KV cache."""
        ids, real = left_pad(self._mmu_rows(prompts, images), self.vocab.pad, self.device)
        positions = mask_positions(real.long())
        lm, cache = self.network.showo, {CACHE_ARGUMENT: DynamicCache()}  # filled in place, step by step
        out = lm(input_ids=ids, attention_mask=mmu_attention_mask(ids, real, self.vocab), position_ids=positions,
                 use_cache=True, **cache)
        done = torch.zeros(len(prompts), dtype=torch.bool, device=self.device)
        generated = []
        for _ in range(max_new_tokens):
            logits = out.logits[:, -1].float()
            if do_sample:  # the official mmu_generate: temperature, then top-k, then a draw
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, -float("inf"))
                token = torch.multinomial(logits.softmax(-1), 1)[:, 0]
            else:
                token = logits.argmax(-1)
            generated.append(token)
            done |= token == self.vocab.eos
            if done.all():
                break
            real = torch.cat([real, torch.ones_like(real[:, :1])], 1)
            positions = positions[:, -1:] + 1
            out = lm(input_ids=token[:, None], attention_mask=real[:, None, None, :], position_ids=positions,
                     use_cache=True, **cache)
        rows = torch.stack(generated, 1).tolist() if generated else [[] for _ in prompts]
        return [row[:row.index(self.vocab.eos) + 1] if self.vocab.eos in row else row for row in rows]

    def _decode_text(self, ids: list[int]) -> str:
        ids = [i for i in ids if i != self.vocab.eos and i < len(self.tokenizer)]  # image ids are not text
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def answer_logits(self, prompts, images, answers):
        targets = [[*self.tokenizer(a, add_special_tokens=False)["input_ids"], self.vocab.eos] for a in answers]
        return self.answer_token_logits(prompts, images, targets)

    def answer_token_logits(self, prompts: list[str], images: list[list[Image.Image]],
                            targets: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As answer_logits, for answers given as token ids."""
        prompt, real = left_pad(self._mmu_rows(prompts, images), self.vocab.pad, self.device)
        answer, answer_mask = (t.to(self.device) for t in right_pad(targets, self.vocab.pad))
        ids, real = torch.cat([prompt, answer], 1), torch.cat([real, answer_mask.bool()], 1)
        logits = self.logits(ids, mmu_attention_mask(ids, real, self.vocab), mask_positions(real.long()))
        return logits[:, prompt.shape[1] - 1:-1], answer, answer_mask

    # generation

    def _t2i(self, prompts: list[str], image_ids: torch.Tensor) -> torch.Tensor:
        return t2i_ids(self.tokenizer(prompts)["input_ids"], image_ids, self.vocab)

    @torch.inference_mode()
    def _generate_image_tokens(self, prompts, n, guidance_scale, seed):
        repeated = [p for p in prompts for _ in range(n)]
        blank = torch.full((len(repeated), self.num_vq_tokens), self.vocab.mask, device=self.device)
        ids = self._t2i(repeated, blank)
        uncond = self._t2i([""] * len(repeated), blank) if guidance_scale > 0 else None
        mask = t2i_attention_mask(ids if uncond is None else torch.cat([ids, uncond]), self.vocab)
        generator = torch.Generator(self.device).manual_seed(seed)
        return maskgit_generate(self.logits, ids, uncond, mask, self.vocab, guidance_scale, self.steps,
                                generator=generator)

    @torch.inference_mode()
    def _decode_images(self, tokens):
        pixels = self.decode_pixels(tokens)
        pixels = (torch.clamp((pixels + 1.0) / 2.0, 0.0, 1.0) * 255.0).permute(0, 2, 3, 1)
        return [Image.fromarray(p) for p in pixels.cpu().numpy().astype(np.uint8)]

    def decode_pixels(self, tokens: torch.Tensor) -> torch.Tensor:
        """The image tokenizer's raw output for codes (B, N): pixels around [-1, 1], not clamped."""
        return self.magvit.decode(tokens.to(self.device).clamp(0, self.vocab.codebook_size - 1))

    def image_logits(self, prompts, tokens, unconditional=None, keys=None):
        """HermesFlow's Monte-Carlo estimate: the image with the positions of `dpo_image_mask(key)` replaced by the
        mask token, scored where masked (logits at each image position predict that position's id)."""
        drop = unconditional.tolist() if unconditional is not None else [False] * len(prompts)
        n = tokens.shape[1]
        masked = torch.stack([dpo_image_mask(k, n) for k in (keys or prompts)]).to(self.device)
        targets = tokens.to(self.device).long() + self.vocab.image_offset
        ids = self._t2i(["" if d else p for p, d in zip(prompts, drop, strict=True)],
                        torch.where(masked, self.vocab.mask, targets))
        logits = self.logits(ids, t2i_attention_mask(ids, self.vocab))
        return logits[:, -(n + 1):-1], targets, masked.long()

    # weights

    def save(self, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """A bundle (see find_parts): the Show-o and MAGVIT-v2 checkpoints in their official layout, the tokenizer."""
        for part, weights, config in (("showo", state_dict or self.network.state_dict(), self.config),
                                      ("magvitv2", self.magvit.state_dict(),
                                       read_config(self.parts.magvit, "MAGVIT-v2 checkpoint"))):
            (folder / part).mkdir(parents=True, exist_ok=True)
            (folder / part / "config.json").write_text(json.dumps(config, indent=2))
            state = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
            save_file(state, folder / part / WEIGHT_NAMES[0], metadata={"format": "pt"})
        self.tokenizer.save_pretrained(folder / "tokenizer")
        self.llm_config.save_pretrained(folder / "tokenizer")

    def weights_sha256(self) -> str | None:
        if self._weights_sha256 is None:
            found = (_weight_file(part) for part in (self.parts.showo, self.parts.magvit))
            self._weights_sha256 = files_sha256(p for p in found if p is not None)
        return self._weights_sha256
