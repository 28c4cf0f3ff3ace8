"""The shapes world's benchmark data, built deterministically from a seed in the real benchmarks' schemas.

POPE rows follow lmms-lab/POPE (id, question_id, question, answer, image_source, image, category), MME rows
lmms-lab/MME (question_id, image, question, answer, category), GenEval prompts evaluation_metadata.jsonl.
"""

from __future__ import annotations

import io
import random
from collections import Counter
from dataclasses import dataclass
from itertools import combinations

import datasets

from hermes_bench.scoring.geneval import TAGS
from hermes_bench.world import language
from hermes_bench.world.questions import OPPOSITE, Question, clear_pairs, question_pairs, relations, unique
from hermes_bench.world.scene import COLORS, SHAPES, Scene, render, sample_scene

POPE_SPLITS = ("random", "popular", "adversarial")
MME_SUBTASKS = ("existence", "count", "position", "color")
ALL_NAMES = [f"{c} {s}" for c in COLORS for s in SHAPES]


def _png(scene: Scene) -> dict:
    """An image cell as datasets stores it, encoded once per scene however many questions share it."""
    buffer = io.BytesIO()
    render(scene).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _image_dataset(rows: list[dict]) -> datasets.DatasetDict:
    """A test split with an Image column left encoded: lm-eval iterates docs several times, and the task's
    doc_to_image decodes only when it needs the pixels."""
    features = datasets.Features({k: datasets.Image(decode=False) if k == "image" else datasets.Value("string")
                                  for k in rows[0]})
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows, features=features)})


def _negatives(scene: Scene, split: str, k: int, rng: random.Random, popularity: Counter,
               cooccurrence: Counter) -> list[str]:
    absent = [n for n in ALL_NAMES if n not in scene.names()]
    if split == "random":
        return rng.sample(absent, k)
    if split == "popular":
        rank = {n: popularity[n] for n in absent}
    else:  # adversarial: objects that most often appear beside this image's objects
        rank = {n: sum(cooccurrence[frozenset((n, p))] for p in scene.names()) for n in absent}
    return sorted(absent, key=lambda n: (-rank[n], n))[:k]


def pope(split: str, n_images: int, seed: int, probes: int = 2) -> datasets.DatasetDict:
    """Yes/no existence probes: up to `probes` present objects and as many absent ones per image."""
    if split not in POPE_SPLITS:
        raise ValueError(f"POPE split must be one of {POPE_SPLITS}, not {split!r}")
    rng = random.Random(seed)
    scenes = [sample_scene(rng) for _ in range(n_images)]
    popularity = Counter(n for s in scenes for n in s.names())
    cooccurrence = Counter(frozenset(p) for s in scenes for p in combinations(sorted(s.names()), 2))
    rows = []
    split_rng = random.Random(f"{seed}-{split}")
    for i, scene in enumerate(scenes):
        present = split_rng.sample(sorted(scene.names()), min(probes, len(scene.names())))
        negative = _negatives(scene, split, len(present), split_rng, popularity, cooccurrence)
        image = _png(scene)
        for name, answer in [(n, "yes") for n in present] + [(n, "no") for n in negative]:
            rows.append({"id": str(len(rows)), "question_id": str(len(rows)), "answer": answer,
                         "question": language.existence_question(name), "image_source": f"shapes_{seed}_{i}",
                         "image": image, "category": split})
    return _image_dataset(rows)


def _mme_pair(subtask: str, scene: Scene, rng: random.Random) -> tuple[str, str] | None:
    """(true question, false question) about the scene, or None if this scene cannot ask it."""
    names = scene.names()
    if subtask == "existence":
        absent = [n for n in ALL_NAMES if n not in names]
        return (language.existence_question(rng.choice(sorted(names))),
                language.existence_question(rng.choice(absent)))
    if subtask == "count":
        name = rng.choice(sorted(names))
        n = sum(o.name == name for o in scene.objects)
        wrong = rng.choice([k for k in range(1, len(language.NUMBERS)) if k != n])
        return language.count_question(name, n), language.count_question(name, wrong)
    if subtask == "position":
        pairs = clear_pairs(scene)
        if not pairs:
            return None
        a, b, rel = rng.choice(pairs)
        return (language.position_question(a.name, rel, b.name),
                language.position_question(a.name, OPPOSITE[rel], b.name))
    if subtask == "color":
        candidates = unique(scene, lambda o: o.shape)
        if not candidates:
            return None
        obj = rng.choice(candidates)
        wrong = rng.choice([c for c in COLORS if c != obj.color])
        return language.color_question(obj.shape, obj.color), language.color_question(obj.shape, wrong)
    raise ValueError(f"MME subtask must be one of {MME_SUBTASKS}, not {subtask!r}")


def mme(n_images: int, seed: int) -> datasets.DatasetDict:
    """Per subtask, n_images images, each with one true and one false yes/no question."""
    rng = random.Random(seed)
    rows = []
    for subtask in MME_SUBTASKS:
        made = 0
        while made < n_images:
            scene = sample_scene(rng, rng.randint(2, 4) if subtask == "position" else None)
            pair = _mme_pair(subtask, scene, rng)
            if pair is None:
                continue
            image = _png(scene)
            for question, answer in zip(pair, ("Yes", "No"), strict=True):
                rows.append({"question_id": f"{subtask}/{made:04d}.png", "image": image,
                             "question": question + language.YES_NO_SUFFIX, "answer": answer,
                             "category": subtask})
            made += 1
    return _image_dataset(rows)


def geneval_metadata(n_per_tag: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [language.geneval_prompt(rng, tag) for tag in TAGS for _ in range(n_per_tag)]


@dataclass(frozen=True)
class HomologousItem:
    """A scene, its caption and yes/no questions whose answers the caption alone determines (so they can be
    asked of the real image and of any image generated from the caption)."""

    scene: Scene
    caption: str
    questions: tuple[Question, ...]
    truths: tuple[bool, ...]


def homologous(n_scenes: int, seed: int) -> list[HomologousItem]:
    """A third of the scenes are two objects in one clear relation, captioned GenEval's way ('a red circle
    left of a blue square') and asked about position too; the rest get the full caption."""
    rng = random.Random(seed)
    items = []
    for i in range(n_scenes):
        kinds = ("existence", "color", "shape", "count")
        if i % 3 == 2:
            scene, rel = sample_scene(rng, 2), set()
            while len(rel) != 1:
                scene = sample_scene(rng, 2)
                rel = relations(*scene.objects)
            a, b = scene.objects
            caption, kinds = language.relation_caption(a.name, rel.pop(), b.name), (*kinds, "position")
        else:
            scene = sample_scene(rng)
            caption = language.caption(scene)
        pairs = question_pairs(scene, rng, kinds)
        items.append(HomologousItem(scene, caption, tuple(q for p in pairs for q in p),
                                    tuple(t for _ in pairs for t in (True, False))))
    return items
