"""lm-eval hooks for the shapes-world understanding tasks: data from the world generator, scoring from
hermes_bench.scoring (the same functions our bootstrap uses)."""

import io

from PIL import Image

from hermes_bench.scoring import mme, pope
from hermes_bench.world import benchmarks


def pope_dataset(split: str, n_images: int, seed: int, **_):
    return benchmarks.pope(split, n_images, seed)


def mme_dataset(n_images: int, seed: int, **_):
    return benchmarks.mme(n_images, seed)


def doc_to_image(doc):
    image = doc["image"]
    if isinstance(image, dict):  # the column is stored undecoded
        image = Image.open(io.BytesIO(image["bytes"]))
    return [image.convert("RGB")]


def pope_doc_to_text(doc):
    return f"<image>{doc['question'].strip()}\nAnswer the question using a single word or phrase."


def mme_doc_to_text(doc):
    return f"<image>{doc['question']}"


def pope_process_results(doc, results):
    item = pope.item(results[0], doc["answer"])
    return dict.fromkeys(("accuracy", "precision", "recall", "f1", "yes_ratio"), item)


def mme_process_results(doc, results):
    item = mme.item(results[0], doc["answer"], doc["question_id"], doc["category"])
    return dict.fromkeys(("mme_score", "existence", "count", "position", "color"), item)


def existence(items):
    return mme.subtask_scores(items).get("existence", 0.0)


def count(items):
    return mme.subtask_scores(items).get("count", 0.0)


def position(items):
    return mme.subtask_scores(items).get("position", 0.0)


def color(items):
    return mme.subtask_scores(items).get("color", 0.0)
