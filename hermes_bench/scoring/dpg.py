"""DPG-Bench scoring (ELLA's compute_dpg_bench.py), without its two quirks unless asked for.

Each prompt's four images arrive as one 2x2 grid, read tile by tile in the order (0,0), (r,0), (0,r), (r,r).
A question scores 1 iff the VQA judge answers exactly "yes". In each tile the questions are zeroed in place, in
question order, as the reference does: a question any of whose parents now scores 0 is zeroed, so a "no" runs
down a chain (q3 -> q2 -> q1). A tile's score is the mean over its questions, an image's the mean over tiles,
and the DPG score the mean image score x 100. Categories: L2 = the tuple's text before "(", L1 = its part
before "-".

A question that depends on a proposition id its prompt does not have makes the reference crash on that image
and drop it (when its zeroing reaches that id). We drop the same images, so the scores match, but never
silently: each such record says why, and `images_dropped` counts them.

compat=True reproduces the reference's categories (un-zeroed scores of the last tile only); the reference also
skips the CSV's first row, which `read_csv` here never does.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hermes_bench.errors import HermesBenchError

CSV_FIELDS = ("item_id", "text", "keywords", "proposition_id", "dependency", "category_broad",
              "category_detailed", "tuple", "question_natural_language")


@dataclass(frozen=True)
class Question:
    proposition_id: int
    parents: tuple[int, ...]
    category: str  # L2, e.g. "entity - whole"
    text: str

    @property
    def l1(self) -> str:
        return self.category.split("-")[0].strip()


def read_csv(path: Path) -> dict[str, list[Question]]:
    """Questions per item_id, from the benchmark's CSV. A proposition id given twice for one item keeps its
    first place and the later row's content, as the reference's dict does."""
    if not path.is_file():
        raise HermesBenchError(f"DPG-Bench CSV {path} does not exist: pass the benchmark's dpg_bench.csv")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [f for f in CSV_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise HermesBenchError(f"DPG-Bench CSV {path}: column {', '.join(missing)} is missing")
        questions: dict[str, dict[int, Question]] = {}
        previous = None
        for line, row in enumerate(reader, start=2):
            item_id = row["item_id"]
            if item_id != previous and item_id in questions:
                raise HermesBenchError(f"DPG-Bench CSV {path} line {line}: the rows of item {item_id} are not "
                                       "together; keep each item's rows in one block, as the benchmark's CSV does")
            previous = item_id
            try:
                parents = tuple(int(p) for p in str(row["dependency"]).split(",") if p.strip())
                question = Question(int(row["proposition_id"]), parents, row["tuple"].split("(")[0].strip(),
                                    row["question_natural_language"])
            except ValueError:
                raise HermesBenchError(f"DPG-Bench CSV {path} line {line}: proposition_id and dependency "
                                       "must be integers") from None
            questions.setdefault(item_id, {})[question.proposition_id] = question
    return {item_id: list(by_id.values()) for item_id, by_id in questions.items()}


class MissingParent(Exception):
    """A question depends on a proposition id that its prompt does not have (the reference crashes there)."""


def tiles(grid: Image.Image, where: str) -> list[Image.Image]:
    width, height = grid.size
    if width != height or width % 2:
        raise HermesBenchError(f"{where} is {width}x{height}: DPG-Bench wants a square 2x2 grid of equal tiles")
    r = width // 2
    return [grid.crop((x, y, x + r, y + r)) for x, y in ((0, 0), (r, 0), (0, r), (r, r))]


def tile_scores(questions: Sequence[Question], answers: Sequence[str]) -> tuple[dict[int, float], dict[int, float]]:
    """(raw, zeroed) score per proposition for one tile; zeroing runs in place, in question order."""
    raw = {q.proposition_id: float(a == "yes") for q, a in zip(questions, answers, strict=True)}
    zeroed = dict(raw)
    for q in questions:
        for parent in q.parents:
            if parent == 0:
                continue
            if parent not in zeroed:
                raise MissingParent(f"question {q.proposition_id} depends on question {parent}, which this "
                                    "prompt does not have")
            if zeroed[parent] == 0:
                zeroed[q.proposition_id] = 0.0
                break
    return raw, zeroed


def image_record(item_id: str, questions: Sequence[Question], answers_per_tile: Sequence[Sequence[str]]) -> dict:
    """The image's score and every question's scores per tile; a record with `dropped` (and no score) where the
    reference would crash on the image."""
    record: dict = {"item_id": item_id, "answers": [list(a) for a in answers_per_tile]}
    try:
        per_tile = [tile_scores(questions, answers) for answers in answers_per_tile]
    except MissingParent as err:
        return {**record, "score": None, "dropped": str(err)}
    tile_means = [sum(z.values()) / len(z) for _, z in per_tile]
    return {**record, "score": sum(tile_means) / len(tile_means), "tile_scores": tile_means,
            "questions": [{"id": q.proposition_id, "category": q.category, "l1": q.l1,
                           "zeroed": [z[q.proposition_id] for _, z in per_tile],
                           "raw": [r[q.proposition_id] for r, _ in per_tile]} for q in questions]}


def scored(records: Sequence[dict]) -> list[dict]:
    """The records the reference keeps: all but the dropped ones."""
    return [r for r in records if "dropped" not in r]


def dpg_score(records: Sequence[dict]) -> float:
    """Mean image score x 100 (np.mean, as the reference); NaN when no image is scored."""
    scores = [r["score"] for r in scored(records)]
    return float(np.mean(scores)) * 100 if scores else float("nan")


def category_scores(records: Sequence[dict], compat: bool = False) -> dict[str, float]:
    """L1 and L2 category scores (x 100): zeroed scores over every tile, or the reference's quirk."""
    values: dict[str, list[float]] = defaultdict(list)
    for record in scored(records):
        for q in record["questions"]:
            scores = q["raw"][-1:] if compat else q["zeroed"]
            values[f"L1/{q['l1']}"] += scores
            values[f"L2/{q['category']}"] += scores
    return {k: float(np.mean(v)) * 100 for k, v in sorted(values.items())}
