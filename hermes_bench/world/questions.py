"""Yes/no questions about a scene, one true and one HARD false per question type.

The false question differs from the true one in a single fact (same colour other shape, same shape other
colour, a count off by one, the opposite relation), so a model that reads only colour, or only shape, cannot
answer them. The answer is computed from the scene graph; `answer(scene, question)` re-derives it for any
scene, which is how the exact judge scores a generated image.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from itertools import combinations

from hermes_bench.scoring.geneval import Detection, relative_position
from hermes_bench.world import language
from hermes_bench.world.scene import COLORS, SHAPES, Scene, SceneObject

QUESTION_TYPES = ("existence", "color", "shape", "count", "position")
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


@dataclass(frozen=True)
class Question:
    """A structured question: `kind` plus the facts it asks about; `text` renders it."""

    kind: str
    color: str | None = None
    shape: str | None = None
    number: int | None = None
    relation: str | None = None
    other: str | None = None  # the second object's name, for position

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.color, self.shape) if p)

    @property
    def text(self) -> str:
        if self.kind == "existence":
            return language.existence_question(self.name)
        if self.kind == "color":
            return language.color_question(self.shape, self.color)
        if self.kind == "shape":
            return language.shape_question(self.color, self.shape)
        if self.kind == "count":
            return language.count_question(self.name, self.number)
        return language.position_question(self.name, self.relation, self.other)


def relations(a: SceneObject, b: SceneObject) -> set[str]:
    """GenEval's relations of a to b, on the objects' pixel boxes."""
    return relative_position(Detection("", 1.0, a.box), Detection("", 1.0, b.box))


def answer(scene: Scene, q: Question) -> bool | None:
    """The truth of q in scene; None when q presupposes something the scene lacks (a unique object)."""
    def matches(o: SceneObject, name: str) -> bool:
        return o.name == name or o.shape == name

    if q.kind == "existence":
        return any(o.name == q.name for o in scene.objects)
    if q.kind == "count":
        return sum(matches(o, q.name) for o in scene.objects) == q.number
    if q.kind == "color":
        found = [o for o in scene.objects if o.shape == q.shape]
        return found[0].color == q.color if len(found) == 1 else None
    if q.kind == "shape":
        found = [o for o in scene.objects if o.color == q.color]
        return found[0].shape == q.shape if len(found) == 1 else None
    a = [o for o in scene.objects if o.name == q.name]
    b = [o for o in scene.objects if o.name == q.other]
    if len(a) != 1 or len(b) != 1:
        return None
    return q.relation in relations(a[0], b[0])


def unique(scene: Scene, key) -> list[SceneObject]:
    """The objects whose key (name, shape, colour) no other object of the scene shares."""
    counts = Counter(key(o) for o in scene.objects)
    return [o for o in scene.objects if counts[key(o)] == 1]


def clear_pairs(scene: Scene) -> list[tuple[SceneObject, SceneObject, str]]:
    """(a, b, relation of a to b) for uniquely named objects in exactly one relation, in scene order."""
    return [(a, b, next(iter(rel))) for a, b in combinations(unique(scene, lambda o: o.name), 2)
            for rel in [relations(a, b)] if len(rel) == 1]


def _pair(kind: str, scene: Scene, rng: random.Random) -> tuple[Question, Question] | None:
    """(true question, hard false question) of one type, or None when the scene cannot ask it."""
    names = sorted(scene.names())
    if kind == "existence":
        obj = rng.choice(scene.objects)
        near = [f"{c} {obj.shape}" for c in COLORS] + [f"{obj.color} {s}" for s in SHAPES]
        absent = sorted({n for n in near if n not in names})
        color, shape = rng.choice(absent).split()
        return Question(kind, obj.color, obj.shape), Question(kind, color, shape)
    if kind == "count":
        obj = rng.choice(scene.objects)
        by_shape = rng.random() < 0.5
        noun_color = None if by_shape else obj.color
        n = scene.count(obj.shape, noun_color)
        wrong = rng.choice([k for k in (n - 1, n + 1) if 1 <= k < len(language.NUMBERS)])
        return Question(kind, noun_color, obj.shape, number=n), Question(kind, noun_color, obj.shape, number=wrong)
    if kind == "color":
        candidates = unique(scene, lambda o: o.shape)
        if not candidates:
            return None
        obj = rng.choice(candidates)
        others = [c for c in COLORS if c != obj.color]
        seen = [o.color for o in scene.objects if o.color != obj.color]
        wrong = rng.choice(seen) if seen and rng.random() < 0.5 else rng.choice(others)
        return Question(kind, obj.color, obj.shape), Question(kind, wrong, obj.shape)
    if kind == "shape":
        candidates = unique(scene, lambda o: o.color)
        if not candidates:
            return None
        obj = rng.choice(candidates)
        wrong = rng.choice([s for s in SHAPES if s != obj.shape])
        return Question(kind, obj.color, obj.shape), Question(kind, obj.color, wrong)
    if kind == "position":
        pairs = clear_pairs(scene)
        if not pairs:
            return None
        a, b, rel = rng.choice(pairs)
        if rng.random() < 0.5:
            a, b, rel = b, a, OPPOSITE[rel]
        true = Question(kind, a.color, a.shape, relation=rel, other=b.name)
        return true, Question(kind, a.color, a.shape, relation=OPPOSITE[rel], other=b.name)
    raise ValueError(f"question type must be one of {QUESTION_TYPES}, not {kind!r}")


def question_pairs(scene: Scene, rng: random.Random,
                   kinds: tuple[str, ...] = QUESTION_TYPES) -> list[tuple[Question, Question]]:
    """One (true, false) pair for each type in kinds that this scene can ask."""
    return [p for kind in kinds if (p := _pair(kind, scene, rng)) is not None]
