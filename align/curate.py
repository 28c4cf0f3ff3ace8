"""Curation: the model's own samples on homologous records, scored, and turned into preference pairs.

Understanding: n captions per image (one greedy, the rest sampled over a grid of top-k x temperature), scored
against the record's caption. Generation: m images per caption, scored by the record's questions about each
image. A record's pair is (best, worst) in the first round, and HermesFlow's self-play update after it
(`pairing="hermesflow"`), or (best, worst) of the round's own samples in every round (`pairing="on-policy"`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from hermes_bench.align.data import Record
from hermes_bench.align.sample_scores import CaptionScorer, ImageScorer
from hermes_bench.configs import CurationConfig
from hermes_bench.models.base import IMAGE_PLACEHOLDER, UnifiedModel
from hermes_bench.processes import merged, my_batches
from hermes_bench.progress import bar
from hermes_bench.storage import SampleCache, digest

PAIRINGS = ("hermesflow", "on-policy")
CAPTION_PROMPT = IMAGE_PLACEHOLDER + "Describe the image in one sentence."  # the same prompt in curation and training


@dataclass
class Pair:
    """A preference pair: sample contents (a caption, or an image's tokens) and their scores."""

    win: str | list[int]
    lose: str | list[int]
    win_score: float
    lose_score: float


@dataclass
class Samples:
    contents: list[str | list[int]]
    scores: list[float]



def _batch_key(model: UnifiedModel, kind: str, chunk: list[Record], config: CurationConfig, *extra) -> str:
    """A curation batch's cache key: everything its samples depend on."""
    return digest(model.fingerprint, kind, [r.id for r in chunk], asdict(config), *extra)


def caption_samples(model: UnifiedModel, records: list[Record], scorer: CaptionScorer,
                    config: CurationConfig, cache: SampleCache | None = None) -> list[Samples]:
    """One greedy and len(top_k) * len(temperatures) sampled captions per image, each scored. With a cache, each
    batch's captions are kept as it finishes, so a killed curation resumes losing at most one batch."""
    settings = [None] + [(k, t) for k in config.top_k for t in config.temperatures]
    captions: dict[int, list[str]] = {}
    starts = my_batches(len(records), config.batch_size)
    steps = bar(desc="curation: captions", total=len(settings) * len(starts))
    for s, setting in enumerate(settings):
        for start in starts:
            chunk = records[start:start + config.batch_size]
            key = _batch_key(model, "captions", chunk, config, s)
            if cache is not None and key in cache:
                said = cache.get(key)
            else:
                torch.manual_seed(config.seed * 1_000_003 + s * 10_007 + start)
                sampling = {} if setting is None else {"do_sample": True, "top_k": setting[0],
                                                       "temperature": setting[1]}
                said = [t.strip() for t in model.answer([CAPTION_PROMPT] * len(chunk), [[r.image] for r in chunk],
                                                        max_new_tokens=config.caption_tokens, **sampling)]
                if cache is not None:
                    cache.put_many({key: said})
            for i, text in enumerate(said):
                captions.setdefault(start + i, []).append(text)
            steps.update()
    steps.close()
    return merged({i: Samples(c, scorer.score(records[i], c)) for i, c in captions.items()}, range(len(records)))


def image_samples(model: UnifiedModel, records: list[Record], scorer: ImageScorer,
                  config: CurationConfig, cache: SampleCache | None = None) -> list[Samples]:
    """m images per caption (seeded per batch), kept as the codes the model sampled, each scored on its decoded
    image. With a cache, each batch's codes and scores are kept as it finishes (a kill loses at most one batch)."""
    guidance = config.guidance_scale if config.guidance_scale is not None else model.default_guidance_scale
    m, mine = config.images, {}
    for start in bar(my_batches(len(records), config.batch_size), "curation: images"):
        chunk = records[start:start + config.batch_size]
        key = _batch_key(model, "images", chunk, config, type(scorer).__name__)
        if cache is not None and key in cache:
            batch = cache.get(key)
        else:
            tokens = model.generate_image_tokens([r.caption for r in chunk], m, guidance,
                                                 config.seed * 1_000_003 + start)
            flat = model.decode_images(tokens)
            scores = scorer.score(chunk, [flat[i * m:(i + 1) * m] for i in range(len(chunk))])
            batch = [[tokens[i * m:(i + 1) * m].tolist(), sc] for i, sc in enumerate(scores)]
            if cache is not None:
                cache.put_many({key: batch})
        mine.update({start + i: Samples(codes, sc) for i, (codes, sc) in enumerate(batch)})
    return merged(mine, range(len(records)))


def select(samples: Samples, previous: Pair | None, min_best: float | None = None) -> Pair | None:
    """HermesFlow's pair rule. With no previous pair: (best, worst), none on a tie. With one: the new best
    against the previous winner if it beats it, else against the previous loser. A pair whose winner does not
    score above its loser, or (generation) whose winner scores min_best or less, is not kept."""
    best = max(range(len(samples.scores)), key=samples.scores.__getitem__)
    top = samples.scores[best]
    if previous is None:
        worst = min(range(len(samples.scores)), key=samples.scores.__getitem__)
        pair = Pair(samples.contents[best], samples.contents[worst], top, samples.scores[worst])
    elif top > previous.win_score:
        pair = Pair(samples.contents[best], previous.win, top, previous.win_score)
    else:
        pair = Pair(samples.contents[best], previous.lose, top, previous.lose_score)
    if pair.win_score <= pair.lose_score or (min_best is not None and pair.win_score <= min_best):
        return None
    return pair


def pairs_table(records: list[Record], understanding: list[Samples] | None, generation: list[Samples] | None,
                previous: dict[str, dict], config: CurationConfig) -> dict[str, dict]:
    """Pairs by record id: {"understanding": Pair | None, "generation": Pair | None} as plain dicts, joined on id.
    On-policy pairing ignores the previous round's pairs: their losers came from an earlier model."""
    table = {}
    for i, r in enumerate(records):
        before = previous.get(r.id, {}) if config.pairing == "hermesflow" else {}
        entry = {}
        for side, samples, min_best in (("understanding", understanding, None),
                                        ("generation", generation, config.min_best_score)):
            if samples is None:
                continue
            prior = Pair(**before[side]) if before.get(side) else None
            pair = select(samples[i], prior, min_best) or prior  # no valid update: the previous pair stands
            entry[side] = asdict(pair) if pair else None
        table[r.id] = entry
    return table
