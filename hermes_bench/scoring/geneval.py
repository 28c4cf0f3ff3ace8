"""GenEval's rule engine, detector-agnostic (djghosh13/geneval, evaluate_images.py).

A detector turns an image into `Detection`s; this module decides whether the image satisfies the prompt's
metadata. The real benchmark plugs in Mask2Former + CLIP, the shapes world its exact detector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

THRESHOLD = 0.3
COUNTING_THRESHOLD = 0.9
MAX_OBJECTS = 16
POSITION_MARGIN = 0.1
TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    color: str | None = None  # known by an exact detector; None means "ask the colour classifier"
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)  # HxW bool, for colour crops


ColorClassifier = Callable[[Sequence[Detection]], list[str]]


def known_colors(detections: Sequence[Detection]) -> list[str]:
    return [d.color or "" for d in detections]


def select(detections: Sequence[Detection], tag: str, threshold: float = THRESHOLD,
           counting_threshold: float = COUNTING_THRESHOLD, max_objects: int = MAX_OBJECTS
           ) -> dict[str, list[Detection]]:
    """Per class, as the reference: scores above the tag's threshold (strictly, compared in float32 as its
    float32 score array is), best first in the order numpy's argsort of those float32 scores gives, reversed
    (which decides between equal scores), at most max_objects."""
    cut = np.float32(counting_threshold if tag == "counting" else threshold)
    by_class: dict[str, list[Detection]] = {}
    for det in detections:
        by_class.setdefault(det.label, []).append(det)
    selected = {}
    for label, found in by_class.items():
        scores = np.array([d.score for d in found], dtype=np.float32)
        order = np.argsort(scores)[::-1]
        order = order[scores[order] > cut][:max_objects]
        if len(order):
            selected[label] = [found[i] for i in order]
    return selected


def relative_position(a: Detection, b: Detection, margin: float = POSITION_MARGIN) -> set[str]:
    """Relations of a to b; y grows downward."""
    boxes = np.array([a.box, b.box], dtype=float).reshape(2, 2, 2)
    center_a, center_b = boxes.mean(axis=-2)
    dim_a, dim_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = center_a - center_b
    revised = np.maximum(np.abs(offset) - margin * (dim_a + dim_b), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def grade(objects: dict[str, list[Detection]], metadata: dict,
          classify_colors: ColorClassifier = known_colors) -> tuple[bool, str]:
    """Whether the selected objects satisfy every include clause and no exclude clause, with the reasons."""
    correct = True
    reasons: list[str] = []
    matched_groups: list[list[Detection] | None] = []
    for req in metadata.get("include", []):
        cls, count = req["class"], req["count"]
        found = objects.get(cls, [])[:count]
        matched = len(found) >= count
        if not matched:
            reasons.append(f"expected {cls}>={count}, found {len(found)}")
        else:
            if "color" in req:
                colors = classify_colors(found)
                if colors.count(req["color"]) < count:
                    matched = False
                    reasons.append(f"expected {req['color']} {cls}>={count}, found {colors.count(req['color'])}")
            if "position" in req and matched:
                relation, target = req["position"]
                targets = matched_groups[target]
                if targets is None:
                    matched = False
                    reasons.append(f"no target for {cls} to be {relation}")
                elif any(relation not in relative_position(o, t) for o in found for t in targets):
                    matched = False
                    reasons.append(f"expected {cls} {relation} target")
        correct = correct and matched
        matched_groups.append(found if matched else None)
    for req in metadata.get("exclude", []):
        n = len(objects.get(req["class"], []))
        if n >= req["count"]:
            correct = False
            reasons.append(f"expected {req['class']}<{req['count']}, found {n}")
    return correct, "; ".join(reasons)


def tag_scores(tags: Sequence[str], correct: Sequence[bool]) -> dict[str, float]:
    """Mean correctness per tag present, plus 'overall' = unweighted mean of the tag scores (tags in order of
    first appearance and np.mean, as the reference's groupby(sort=False))."""
    counts: dict[str, list[int]] = {}  # tag -> [right, seen]
    for tag, ok in zip(tags, correct, strict=True):
        c = counts.setdefault(tag, [0, 0])
        c[0] += bool(ok)
        c[1] += 1
    scores = {tag: right / seen for tag, (right, seen) in counts.items()}
    overall = float(np.mean(list(scores.values()))) if scores else float("nan")
    return {**dict(sorted(scores.items())), "overall": overall}


def summary(prompts: Sequence[str], correct: Sequence[bool]) -> dict[str, float]:
    """The reference summary's two percentages: correct images, and correct prompts (a prompt, identified by
    its metadata, is correct when any of its images is)."""
    by_prompt: dict[str, bool] = {}
    for prompt, ok in zip(prompts, correct, strict=True):
        by_prompt[prompt] = by_prompt.get(prompt, False) or bool(ok)
    if not by_prompt:
        return {"correct_images": float("nan"), "correct_prompts": float("nan")}
    return {"correct_images": 100 * sum(map(bool, correct)) / len(correct),
            "correct_prompts": 100 * sum(by_prompt.values()) / len(by_prompt)}
