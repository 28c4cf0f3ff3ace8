"""Homologous records: one image and its caption, which is also the generation prompt, with optional
multiple-choice questions about the caption. Loaders: a JSON / JSONL file in the shape of HermesFlow's
initial_data.json, any `datasets` dataset with image and caption columns, and the shapes world."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from hermes_bench.errors import HermesBenchError, contained
from hermes_bench.hub import decode_image, load_split
from hermes_bench.judges import YES_NO, MCQuestion, parse_questions
from hermes_bench.world.datasets import homologous
from hermes_bench.world.scene import Scene, render


@dataclass
class Record:
    id: str
    image: Image.Image
    caption: str
    questions: list[MCQuestion] = field(default_factory=list)
    scene: Scene | None = None  # shapes world only: the ground truth the exact scorers read


def shapes_records(n: int, seed: int) -> list[Record]:
    """Shapes-world records: the scene's render, its caption, and the caption's yes/no questions."""
    return [Record(f"shapes-{seed}-{i:05d}", render(it.scene), it.caption,
                   [MCQuestion(q.text, YES_NO, "yes" if truth else "no", q)
                    for q, truth in zip(it.questions, it.truths, strict=True)], it.scene)
            for i, it in enumerate(homologous(n, seed))]


def json_records(path: Path, n: int | None = None) -> list[Record]:
    """The first n records (all by default) of a JSON list or JSONL of {id?, image (path, relative to the file),
    caption (or prompt), questions?}."""
    if not path.is_file():
        raise HermesBenchError(f"--data {path} does not exist: pass a JSON/JSONL file, a dataset id or folder, "
                               "or nothing for the shapes world")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise HermesBenchError(f"--data {path} is not UTF-8 text: save it as UTF-8 JSON") from None
    try:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl" \
            else json.loads(text)
    except json.JSONDecodeError as err:
        raise HermesBenchError(f"--data {path} is not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(rows, list):
        raise HermesBenchError(f"--data {path} must hold a list of records")
    records = []
    for i, row in enumerate(rows[:n]):
        where = f"--data {path}, record {i}"
        caption = row.get("caption", row.get("prompt")) if isinstance(row, dict) else None
        if not isinstance(caption, str) or not isinstance(row.get("image"), str):
            raise HermesBenchError(f"{where}: needs an 'image' path and a 'caption' (or 'prompt')")
        image_path = contained(path.parent, row["image"], where)
        try:
            with Image.open(image_path) as im:
                image = im.convert("RGB")
        except (FileNotFoundError, UnidentifiedImageError, OSError):
            raise HermesBenchError(f"{where}: image {image_path} is missing or not an image") from None
        records.append(Record(str(row.get("id", i)), image, caption, parse_questions(row.get("questions", []), where)))
    return records


def dataset_records(name: str, n: int | None = None, split: str = "train", image_column: str = "image",
                    caption_column: str = "caption") -> list[Record]:
    """The first n rows (all by default) of any `datasets` dataset (hub id or local folder) with an image and a
    caption column; only those images are decoded."""
    data = load_split(name, split, [image_column, caption_column], image_fields=[image_column])[split]
    if n is not None:
        data = data.select(range(min(n, len(data))))
    return [Record(str(row.get("id", i)), decode_image(row[image_column], f"dataset {name} row {i} {image_column}"),
                   row[caption_column]) for i, row in enumerate(data)]


def load_questions(records: list[Record], path: Path) -> None:
    """Attach questions from a JSONL file of {id, questions: [{question, choices, answer}]} to the records."""
    if not path.is_file():
        raise HermesBenchError(f"--questions {path} does not exist: pass a JSONL of {{id, questions}}")
    by_id = {r.id: r for r in records}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise HermesBenchError(f"--questions {path}, line {n}: not valid JSON") from None
        if not isinstance(row, dict) or str(row.get("id")) not in by_id:
            raise HermesBenchError(f"--questions {path}, line {n}: needs the 'id' of a record in --data")
        by_id[str(row["id"])].questions = parse_questions(row.get("questions"), f"--questions {path}, line {n}")


def load_records(data: str | None, n: int, seed: int, split: str = "train", image_column: str = "image",
                 caption_column: str = "caption") -> list[Record]:
    """--data: nothing (the shapes world, n records from seed), a .json/.jsonl file, or a dataset."""
    if data is None:
        records = shapes_records(n, seed)
    elif data.endswith((".json", ".jsonl")):
        records = json_records(Path(data), n)
    else:
        records = dataset_records(data, n, split, image_column, caption_column)
    if not records:
        raise HermesBenchError(f"--data {data or 'shapes world'} gives no records: add records, or raise --records")
    return records
