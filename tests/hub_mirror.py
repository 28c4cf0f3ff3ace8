"""Small local mirrors of the real benchmark datasets, in the hub's own layout and schemas (same configs,
splits, field names and types, datasets.Image columns), so tests load them through the real loading code."""

from __future__ import annotations

import random
from pathlib import Path

import datasets
import yaml

from hermes_bench.scoring.mmmu import DISCIPLINES
from hermes_bench.world.language import caption
from hermes_bench.world.scene import render, sample_scene

STRING = datasets.Value("string")


def _images(n: int, seed: int):
    rng = random.Random(seed)
    return [render(sample_scene(rng)) for _ in range(n)]


def write_repo(root: Path, hub_id: str, splits: dict[tuple[str, str], list[dict]], features: datasets.Features) -> Path:
    """Parquet shards per (config, split) plus the README `configs:` block the hub uses to find them."""
    repo = root / hub_id
    configs: dict[str, list[dict]] = {}
    for (config, split), rows in splits.items():
        (repo / config).mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list(rows, features=features).to_parquet(
            str(repo / config / f"{split}-00000-of-00001.parquet"))
        configs.setdefault(config, []).append({"split": split, "path": f"{config}/{split}-*"})
    card = {"configs": [{"config_name": c, "data_files": files} for c, files in configs.items()]}
    (repo / "README.md").write_text("---\n" + yaml.safe_dump(card, sort_keys=False) + "---\n")
    return repo


POPE_FEATURES = datasets.Features({"id": STRING, "question_id": STRING, "question": STRING, "answer": STRING,
                                   "image_source": STRING, "image": datasets.Image(), "category": STRING})


def pope_rows(split: str, n: int) -> list[dict]:
    images = _images(n, seed=len(split))
    return [{"id": str(i), "question_id": str(i), "question": f"Is there a circle in the image? {split}",
             "answer": "yes" if i % 2 == 0 else "no", "image_source": f"COCO_{i}", "image": images[i],
             "category": split} for i in range(n)]


def build_pope(root: Path, n: int = 4) -> Path:
    splits = {("Full", s): pope_rows(s, n) for s in ("adversarial", "popular", "random")}
    splits["default", "test"] = [r for s in ("adversarial", "popular", "random") for r in pope_rows(s, n)]
    return write_repo(root, "lmms-lab/POPE", splits, POPE_FEATURES)


MME_FEATURES = datasets.Features({"question_id": STRING, "image": datasets.Image(), "question": STRING,
                                  "answer": STRING, "category": STRING})


def build_mme(root: Path, categories: tuple[str, ...] = ("existence", "OCR", "code_reasoning")) -> Path:
    images = _images(len(categories), seed=7)
    rows = []
    for category, image in zip(categories, images, strict=True):
        for answer in ("Yes", "No"):
            rows.append({"question_id": f"{category}/0001.png", "image": image, "answer": answer,
                         "question": f"Is this a {category} question? Please answer yes or no.",
                         "category": category})
    return write_repo(root, "lmms-lab/MME", {("default", "test"): rows}, MME_FEATURES)


MMMU_FEATURES = datasets.Features({
    "id": STRING, "question": STRING, "options": STRING, "explanation": STRING,
    **{f"image_{k}": datasets.Image() for k in range(1, 8)},
    "img_type": STRING, "answer": STRING, "topic_difficulty": STRING, "question_type": STRING, "subfield": STRING})


def mmmu_rows(subject: str, n: int) -> list[dict]:
    images = _images(2, seed=len(subject))
    rows = []
    for i in range(n):
        blank = {f"image_{k}": None for k in range(1, 8)}
        if i % 2 == 0:
            row = {**blank, "question": "Which shape is in <image 2> and <image 1>?",
                   "options": "['a circle', 'a square', \"a 'triangle'\"]", "answer": "B",
                   "question_type": "multiple-choice", "image_1": images[0], "image_2": images[1]}
        else:
            row = {**blank, "question": "<image 1> How many shapes are there?", "options": "[]",
                   "answer": "['2', 'two']", "question_type": "open", "image_1": images[0]}
        rows.append({**row, "id": f"validation_{subject}_{i + 1}", "explanation": "", "img_type": "['Diagrams']",
                     "topic_difficulty": "Easy", "subfield": subject})
    return rows


def build_mmmu(root: Path, n: int = 2) -> Path:
    subjects = [s for group in DISCIPLINES.values() for s in group]
    return write_repo(root, "MMMU/MMMU", {(s, "validation"): mmmu_rows(s, n) for s in subjects}, MMMU_FEATURES)


def geneval_records() -> list[dict]:
    """553 records with GenEval's tag counts and schema, tags interleaved so a --limit sees several."""
    from hermes_bench.runners.geneval import TAG_COUNTS

    per_tag = {
        "single_object": {"include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"},
        "two_object": {"include": [{"class": "cat", "count": 1}, {"class": "bench", "count": 1}],
                       "prompt": "a photo of a cat and a bench"},
        "counting": {"include": [{"class": "cup", "count": 2}], "exclude": [{"class": "cup", "count": 3}],
                     "prompt": "a photo of two cups"},
        "colors": {"include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"},
        "position": {"include": [{"class": "bench", "count": 1},
                                 {"class": "train", "count": 1, "position": ["right of", 0]}],
                     "prompt": "a photo of a train right of a bench"},
        "color_attr": {"include": [{"class": "tv", "count": 1, "color": "blue"},
                                   {"class": "computer keyboard", "count": 1, "color": "white"}],
                       "prompt": "a photo of a blue tv and a white computer keyboard"},
    }
    queues = {tag: [{"tag": tag, **record} for _ in range(n)] for (tag, n), record in
              zip(TAG_COUNTS.items(), per_tag.values(), strict=True)}
    records = []
    while any(queues.values()):
        records += [q.pop() for q in queues.values() if q]
    return records


def build_geneval(root: Path) -> Path:
    import json

    path = root / "djghosh13/geneval/prompts/evaluation_metadata.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in geneval_records()))
    return path


DPG_PROMPTS = {"partiprompts1": ("a black cat on a red sofa", [
    ("1", "0", "entity - whole (cat)", "Is there a cat?"),
    ("2", "1", "attribute - color (cat, black)", "Is the cat black?"),
    ("3", "0", "entity - whole (sofa)", "Is there a sofa?"),
    ("4", "1,3", "relation - spatial (cat, sofa, on)", "Is the cat on the sofa?")]),
    "coco2": ("two blue squares", [("1", "0", "entity - whole (square)", "Are there squares?"),
                                   ("2", "1", "other - count (square, ==2)", "Are there two squares?")])}


def build_dpg(root: Path, prompts: dict = DPG_PROMPTS) -> Path:
    folder = root / "TencentQQGYLab/ELLA/dpg_bench"
    (folder / "prompts").mkdir(parents=True, exist_ok=True)
    lines = ["item_id,text,keywords,proposition_id,dependency,category_broad,category_detailed,tuple,"
             "question_natural_language"]
    for item_id, (text, questions) in prompts.items():
        (folder / "prompts" / f"{item_id}.txt").write_text(text + "\n")
        for pid, dep, tup, question in questions:
            broad, detailed = (part.strip() for part in tup.split("(")[0].split("-"))
            lines.append(f'{item_id},{text},kw,{pid},"{dep}",{broad},{detailed},{tup.replace(",", ";")},{question}')
    (folder / "dpg_bench.csv").write_text("\n".join(lines) + "\n")
    return folder


COCO_FEATURES = datasets.Features({"image": datasets.Image(), "caption": STRING})


def build_coco(root: Path, n: int = 8, seed: int = 11) -> Path:
    """sayakpaul/coco-30-val-2014's layout: data/train-*.parquet of (image, caption), and its dataset card."""
    rng = random.Random(seed)
    scenes = [sample_scene(rng) for _ in range(n)]
    repo = root / "sayakpaul" / "coco-30-val-2014"
    (repo / "data").mkdir(parents=True, exist_ok=True)
    rows = [{"image": render(s), "caption": caption(s)} for s in scenes]
    shard = repo / "data" / "train-00000-of-00001.parquet"
    datasets.Dataset.from_list(rows, features=COCO_FEATURES).to_parquet(str(shard))
    card = {"dataset_info": {"features": [{"name": "image", "dtype": "image"}, {"name": "caption", "dtype": "string"}]}}
    (repo / "README.md").write_text("---\n" + yaml.safe_dump(card, sort_keys=False) + "---\n")
    return repo
