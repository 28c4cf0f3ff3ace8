"""DPG-Bench scoring (ELLA's compute_dpg_bench.py), without its two quirks unless asked for.

Each prompt's four images arrive as one 2x2 grid, read tile by tile in the order (0,0), (r,0), (0,r), (r,r).
A question scores 1 iff the VQA judge answers exactly "yes"; in each tile a question whose parent scored 0 is
zeroed; a tile's score is the mean over its questions, an image's the mean over tiles, and the DPG score the
mean image score x 100. Categories: L2 = the tuple's text before "(", L1 = its part before "-".

compat=True reproduces the reference's categories (un-zeroed scores of the last tile only); the reference also
skips the CSV's first row, which `read_csv` here never does.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
    """Questions per item_id, from the benchmark's CSV."""
    if not path.is_file():
        raise HermesBenchError(f"DPG-Bench CSV {path} does not exist: pass the benchmark's dpg_bench.csv")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [f for f in CSV_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise HermesBenchError(f"DPG-Bench CSV {path}: column {', '.join(missing)} is missing")
        questions: dict[str, list[Question]] = defaultdict(list)
        for line, row in enumerate(reader, start=2):
            try:
                parents = tuple(int(p) for p in str(row["dependency"]).split(",") if p.strip())
                questions[row["item_id"]].append(Question(int(row["proposition_id"]), parents,
                                                          row["tuple"].split("(")[0].strip(),
                                                          row["question_natural_language"]))
            except ValueError:
                raise HermesBenchError(f"DPG-Bench CSV {path} line {line}: proposition_id and dependency "
                                       "must be integers") from None
    return dict(questions)


def tiles(grid: Image.Image, where: str) -> list[Image.Image]:
    width, height = grid.size
    if width != height or width % 2:
        raise HermesBenchError(f"{where} is {width}x{height}: DPG-Bench wants a square 2x2 grid of equal tiles")
    r = width // 2
    return [grid.crop((x, y, x + r, y + r)) for x, y in ((0, 0), (r, 0), (0, r), (r, r))]


def tile_scores(questions: Sequence[Question], answers: Sequence[str]) -> tuple[dict[int, float], dict[int, float]]:
    """(raw, zeroed) score per proposition for one tile."""
    raw = {q.proposition_id: float(a == "yes") for q, a in zip(questions, answers, strict=True)}
    zeroed = dict(raw)
    for q in questions:
        if any(raw.get(p, 1.0) == 0 for p in q.parents if p != 0):
            zeroed[q.proposition_id] = 0.0
    return raw, zeroed


def image_record(item_id: str, questions: Sequence[Question], answers_per_tile: Sequence[Sequence[str]]) -> dict:
    per_tile = [tile_scores(questions, answers) for answers in answers_per_tile]
    tile_means = [sum(z.values()) / len(z) for _, z in per_tile]
    return {"item_id": item_id, "score": sum(tile_means) / len(tile_means), "tile_scores": tile_means,
            "answers": [list(a) for a in answers_per_tile],
            "questions": [{"id": q.proposition_id, "category": q.category, "l1": q.l1,
                           "zeroed": [z[q.proposition_id] for _, z in per_tile],
                           "raw": [r[q.proposition_id] for r, _ in per_tile]} for q in questions]}


def dpg_score(records: Sequence[dict]) -> float:
    return 100.0 * sum(r["score"] for r in records) / len(records) if records else 0.0


def category_scores(records: Sequence[dict], compat: bool = False) -> dict[str, float]:
    """L1 and L2 category scores (x 100): zeroed scores over every tile, or the reference's quirk."""
    values: dict[str, list[float]] = defaultdict(list)
    for record in records:
        for q in record["questions"]:
            scores = q["raw"][-1:] if compat else q["zeroed"]
            values[f"L1/{q['l1']}"] += scores
            values[f"L2/{q['category']}"] += scores
    return {k: 100.0 * sum(v) / len(v) for k, v in sorted(values.items())}
