"""The pluggable judges of curation: how good a caption is (against the record's caption), which choice a
free-form answer means, and how right a generated image is (the model's own answers, or the shapes oracle)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter

import torch
from PIL import Image
from transformers import AutoModel, AutoTokenizer

from hermes_bench.align.data import Record
from hermes_bench.errors import loading, refuse_remote_code
from hermes_bench.judges import ChoiceMatcher, ExactJudge, ask
from hermes_bench.models.base import Answerer
from hermes_bench.world.language import parse_caption
from hermes_bench.world.questions import relations


class TextEncoder:
    """Unit-norm sentence vectors from a transformers encoder: the [CLS] token's last hidden state (HermesFlow's
    caption similarity with bert-large-uncased) or the mean over tokens (sentence-transformers models)."""

    def __init__(self, model_id: str, pooling: str = "cls", device: str = "cpu") -> None:
        with loading(f"the text encoder {model_id}",
                     "pass a local folder or a hub id to --caption-scorer / --choice-matcher"):
            refuse_remote_code(model_id, "the text encoder")
            self.tokenizer = AutoTokenizer.from_pretrained(model_id, trust_remote_code=False)
            self.model = AutoModel.from_pretrained(model_id, trust_remote_code=False).to(device).eval()
        self.pooling, self.device = pooling, device

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        hidden = self.model(**batch).last_hidden_state.float()
        if self.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            mask = batch.attention_mask[..., None].float()
            vectors = (hidden * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(vectors, dim=-1)


class CaptionScorer(ABC):
    @abstractmethod
    def score(self, record: Record, captions: list[str]) -> list[float]:
        """How well each caption describes the record's image."""


class SimilarityCaptionScorer(CaptionScorer):
    """Cosine similarity to the record's caption (default encoder: bert-large-uncased [CLS], as the official code)."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder

    def score(self, record, captions):
        vectors = self.encoder.encode([record.caption, *captions])
        return (vectors[1:] @ vectors[0]).tolist()


class SceneCaptionScorer(CaptionScorer):
    """Shapes world: F1 between the objects a caption names and the scene's, halved when a relation it claims is
    false; 0 for text outside the world's grammar."""

    def score(self, record, captions):
        truth = Counter(o.name for o in record.scene.objects)
        found = []
        for text in captions:
            parsed = parse_caption(text)
            if parsed is None:
                found.append(0.0)
                continue
            named, claim = parsed
            hits = sum((named & truth).values())
            f1 = 2 * hits / (sum(named.values()) + sum(truth.values()))
            if claim is not None and not _holds(record, *claim):
                f1 /= 2
            found.append(f1)
        return found


def _holds(record: Record, a: str, relation: str, b: str) -> bool:
    objects = {o.name: o for o in record.scene.objects}
    return a in objects and b in objects and relation in relations(objects[a], objects[b])


class EmbeddingChoice(ChoiceMatcher):
    """The nearest choice by sentence-embedding cosine (the official code: all-mpnet-base-v2, mean pooling)."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder

    def match(self, answer, choices):
        vectors = self.encoder.encode([answer, *choices])
        return choices[int((vectors[1:] @ vectors[0]).argmax())]


class ImageScorer(ABC):
    @abstractmethod
    def score(self, records: list[Record], images: list[list[Image.Image]]) -> list[list[float]]:
        """For each record, the share of its questions answered right about each of its generated images."""


class ModelVQA(ImageScorer):
    """A model answers the record's questions about each image: the model itself (the paper's self-VQA) or
    another judge."""

    def __init__(self, model: Answerer, matcher: ChoiceMatcher, batch_size: int = 32) -> None:
        self.model, self.matcher, self.batch_size = model, matcher, batch_size

    def score(self, records, images):
        out = []
        for r, ims in zip(records, images, strict=True):
            said = ask(self.model, ims, [r.questions] * len(ims), self.matcher, self.batch_size)
            out.append([sum(c == q.answer for c, q in zip(row, r.questions, strict=True)) / len(r.questions)
                        if r.questions else 0.0 for row in said])
        return out


class OracleVQA(ImageScorer):
    """Shapes world: the exact detector answers (the upper bound of any judge)."""

    def score(self, records, images):
        judge = ExactJudge()
        out = []
        for r, ims in zip(records, images, strict=True):
            truths = [q.answer == "yes" for q in r.questions]
            said = judge.answer(ims, [[q.fact for q in r.questions]] * len(ims))
            out.append([sum(s == t for s, t in zip(row, truths, strict=True)) / len(truths) if truths else 0.0
                        for row in said])
        return out
