"""Show-o's sequences, attention masks and samplers, as its official code builds them (showlab/Show-o at 45a5a2d:
`training/prompting_utils.py`, `models/modeling_showo.py`, `models/sampling.py`; HermesFlow at d6cf91a for the
Pair-DPO mask). Masks here are boolean, True = may attend.

- t2i: `[PAD]* <|t2i|> <bos> text <eos>` left-padded to the text budget, then `<|soi|> image <|eoi|>`; text rows are
  causal (rows after the padding never see it), image rows see every non-pad position.
- mmu: `<|mmu|> <|soi|> image <|eoi|> <bos> USER: \\n{question} ASSISTANT:`, causal, with everything up to
  `<|eoi|>` visible to every row. A batch is left-padded here (the official script runs one prompt at a time):
  padding is hidden and positions skip it, so each row scores as it would alone.
- MaskGIT: the cosine schedule, a temperature that compounds (T <- T * (1 - r) each step), at least one token
  re-masked per step, CFG as (1 + g) * cond - g * uncond, sampling over image codes only (the mask token excluded).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from hermes_bench.errors import HermesBenchError
from hermes_bench.storage import digest

TASK_TOKENS = ("<|soi|>", "<|eoi|>", "<|sov|>", "<|eov|>", "<|t2i|>", "<|mmu|>", "<|t2v|>", "<|v2v|>", "<|lvg|>")
NEW_TOKENS = 1 + len(TASK_TOKENS)  # [PAD] and the task tokens, added after the language model's vocabulary
MAX_TEXT_LEN = 128  # the configs' dataset.preprocessing.max_seq_length


@dataclass(frozen=True)
class ShowoVocab:
    """Where things live in Show-o's one vocabulary: text, [PAD] and task tokens, image codes, the mask token."""

    pad: int
    soi: int
    eoi: int
    t2i: int
    mmu: int
    bos: int
    eos: int
    image_offset: int  # image id = code + image_offset
    codebook_size: int
    mask: int

    @classmethod
    def attach(cls, tokenizer, llm_vocab_size: int, vocab_size: int) -> ShowoVocab:
        """Add [PAD] and the task tokens to `tokenizer` as the official UniversalPrompting does, and check that
        they land where the checkpoint expects them."""
        tokenizer.add_special_tokens({"pad_token": "[PAD]"})
        tokenizer.add_tokens(list(TASK_TOKENS))
        ids = dict(zip(("[PAD]", *TASK_TOKENS), tokenizer.convert_tokens_to_ids(["[PAD]", *TASK_TOKENS]), strict=True))
        expected = {token: llm_vocab_size + i for i, token in enumerate(("[PAD]", *TASK_TOKENS))}
        if ids != expected:
            raise HermesBenchError(f"the tokenizer does not match the checkpoint: [PAD] and the task tokens got ids "
                                   f"{min(ids.values())}..{max(ids.values())}, the checkpoint expects "
                                   f"{llm_vocab_size}..{llm_vocab_size + NEW_TOKENS - 1} (llm_vocab_size "
                                   f"{llm_vocab_size}): use the language model's own tokenizer")
        offset = llm_vocab_size + NEW_TOKENS
        return cls(pad=ids["[PAD]"], soi=ids["<|soi|>"], eoi=ids["<|eoi|>"], t2i=ids["<|t2i|>"], mmu=ids["<|mmu|>"],
                   bos=tokenizer.bos_token_id, eos=tokenizer.eos_token_id, image_offset=offset,
                   codebook_size=vocab_size - 1 - offset, mask=vocab_size - 1)


def t2i_text(text_ids: list[int], vocab: ShowoVocab, max_text_len: int = MAX_TEXT_LEN) -> list[int]:
    """`<|t2i|> <bos> text <eos>`, left-padded (or cut, keeping the closing <eos>) to max_text_len + 1 tokens."""
    if not text_ids or text_ids[0] != vocab.bos:
        text_ids = [vocab.bos, *text_ids]
    ids = [vocab.t2i, *text_ids, vocab.eos]
    budget = max_text_len + 1
    if len(ids) <= budget:
        return [vocab.pad] * (budget - len(ids)) + ids
    return [*ids[:budget - 1], vocab.eos]


def t2i_ids(text_ids: list[list[int]], image_ids: torch.Tensor, vocab: ShowoVocab,
            max_text_len: int = MAX_TEXT_LEN) -> torch.Tensor:
    """The t2i sequences: text as in t2i_text, then <|soi|> image ids <|eoi|>."""
    text = torch.tensor([t2i_text(t, vocab, max_text_len) for t in text_ids], device=image_ids.device)
    column = torch.ones(len(text_ids), 1, dtype=torch.long, device=image_ids.device)
    return torch.cat([text, column * vocab.soi, image_ids, column * vocab.eoi], 1)


def t2i_attention_mask(ids: torch.Tensor, vocab: ShowoVocab) -> torch.Tensor:
    """The official `create_attention_mask_predict_next(..., rm_pad_in_image=True)`, as a boolean [B, 1, L, L]."""
    _, length = ids.shape
    is_soi, is_eoi, is_pad = ids == vocab.soi, ids == vocab.eoi, ids == vocab.pad
    in_image = (is_soi.cumsum(1) > is_eoi.cumsum(1)) | is_soi | is_eoi
    position = torch.arange(length, device=ids.device)
    last_pad = torch.where(is_pad, position, -1).max(1).values[:, None, None]
    row, column = position[:, None], position[None, :]
    text = (column <= row) & ~((row > last_pad) & (column <= last_pad))
    image = ~is_pad[:, None, :].expand(-1, length, -1)
    return torch.where(in_image[:, :, None], image, text)[:, None]


def mmu_prefix(image_ids: list[torch.Tensor], vocab: ShowoVocab) -> list[int]:
    """`<|mmu|>`, each image as `<|soi|> ids <|eoi|>`, then <bos> (the official `<|sot|>`)."""
    ids = [vocab.mmu]
    for image in image_ids:
        ids += [vocab.soi, *image.tolist(), vocab.eoi]
    return [*ids, vocab.bos]


def mmu_question(question: str) -> str:
    """The understanding prompt of the official inference scripts (after the image)."""
    return "USER: \n" + question + " ASSISTANT:"


def left_pad(rows: list[list[int]], pad: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Rows left-padded to one length, and the mask of real tokens."""
    width = max(map(len, rows))
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
    real = torch.arange(width, device=device) >= torch.tensor([width - len(r) for r in rows], device=device)[:, None]
    return ids, real


def mmu_attention_mask(ids: torch.Tensor, real: torch.Tensor, vocab: ShowoVocab) -> torch.Tensor:
    """The official `create_attention_mask_for_mmu` for each row (causal, and everything up to the last <|eoi|>
    visible to all), with padding hidden; a padding row sees only itself. Boolean [B, 1, L, L]."""
    _, length = ids.shape
    position = torch.arange(length, device=ids.device)
    prefix_end = torch.where(ids == vocab.eoi, position, -1).max(1).values[:, None, None]
    row, column = position[:, None], position[None, :]
    allowed = ((column <= row) | (column <= prefix_end)) & real[:, None, :] & real[:, :, None]
    return (allowed | (row == column))[:, None]


def cosine_schedule(t: torch.Tensor) -> torch.Tensor:
    """The share of image tokens still masked at time t in [0, 1]."""
    return torch.cos(t * math.pi * 0.5)


def _log(t: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    return torch.log(t.clamp(min=eps))


def _gumbel(t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return -_log(-_log(torch.zeros_like(t).uniform_(0, 1, generator=generator)))


def mask_by_random_topk(mask_len: torch.Tensor, probs: torch.Tensor, temperature: float,
                        generator: torch.Generator | None) -> torch.Tensor:
    """True for the mask_len least confident tokens of each row, confidence = log p + temperature * Gumbel."""
    confidence = _log(probs) + temperature * _gumbel(probs, generator)
    cut_off = torch.gather(torch.sort(confidence, dim=-1).values, 1, mask_len.long())
    return confidence < cut_off


def maskgit_generate(logits_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ids: torch.Tensor,
                     uncond_ids: torch.Tensor | None, attention_mask: torch.Tensor, vocab: ShowoVocab,
                     guidance_scale: float, steps: int, temperature: float = 1.0,
                     generator: torch.Generator | None = None, max_text_len: int = MAX_TEXT_LEN) -> torch.Tensor:
    """The official `Showo.t2i_generate`: the image codes (B, N) of t2i sequences `ids` whose image is all mask
    tokens. With CFG (`uncond_ids` and guidance_scale > 0) one forward takes [cond; uncond] under `attention_mask`
    (built over both); random draws come from `generator` in the official order."""
    ids = ids.clone()
    n = ids.shape[1] - (max_text_len + 3)  # text budget, <|soi|>, <|eoi|>
    image = slice(-(n + 1), -1)
    current = ids[:, image].clone()
    current = torch.where(current == vocab.mask, vocab.mask, current - vocab.image_offset)
    uncond_prefix = uncond_ids[:, :max_text_len + 1] if uncond_ids is not None else None
    sampled = current
    for step in range(steps):
        if uncond_prefix is not None and guidance_scale > 0:
            uncond = torch.cat([uncond_prefix, ids[:, max_text_len + 1:]], dim=1)
            cond_logits, uncond_logits = logits_fn(torch.cat([ids, uncond]), attention_mask).chunk(2)
            logits = (1 + guidance_scale) * cond_logits - guidance_scale * uncond_logits
        else:
            logits = logits_fn(ids, attention_mask)
        logits = logits[:, image, vocab.image_offset:-1]
        probs = logits.softmax(dim=-1)
        sampled = torch.multinomial(probs.reshape(-1, logits.size(-1)), 1, generator=generator)[:, 0]
        sampled = sampled.view(*logits.shape[:-1])
        unknown = current == vocab.mask
        sampled = torch.where(unknown, sampled, current)
        ratio = 1.0 * (step + 1) / steps
        mask_ratio = cosine_schedule(torch.tensor(ratio))
        selected = torch.gather(probs, -1, sampled.long()[..., None]).squeeze(-1)
        selected = torch.where(unknown, selected, torch.finfo(selected.dtype).max)  # kept tokens stay kept
        mask_len = (n * mask_ratio).floor().unsqueeze(0).to(logits.device)
        mask_len = torch.max(torch.tensor([1], device=logits.device),
                             torch.min(unknown.sum(dim=-1, keepdim=True) - 1, mask_len))
        temperature = temperature * (1.0 - ratio)  # compounds, as in the official loop
        masking = mask_by_random_topk(mask_len, selected, temperature, generator)
        ids[:, image] = torch.where(masking, vocab.mask, sampled + vocab.image_offset)
        current = torch.where(masking, vocab.mask, sampled)
    return sampled.clamp(0, vocab.codebook_size - 1)


def dpo_image_mask(key: str, n: int) -> torch.Tensor:
    """HermesFlow's one-sample Monte-Carlo mask for an image of n tokens: t ~ U(0, 1), ratio cos(pi t / 2),
    round(n * ratio) (at least 1) positions chosen at random. Drawn from a generator seeded by `key` (record, round,
    seed), so a win and its lose, and the policy and its precomputed reference, all see the same mask."""
    generator = torch.Generator().manual_seed(int(digest("dpo-mask", key)[:15], 16))
    ratio = cosine_schedule(torch.rand(1, generator=generator))
    count = (n * ratio).round().clamp(min=1)
    return torch.rand(1, n, generator=generator).argsort(dim=-1)[0] < count
