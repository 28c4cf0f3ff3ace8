"""lm-eval hooks for POPE (real and shapes-world): lmms-eval's prompt, the official parser and metrics."""

from hermes_bench.hub import decode_image
from hermes_bench.scoring import pope


def doc_to_text(doc):
    return f"<image>{doc['question'].strip()}\nAnswer the question using a single word or phrase."


def process_docs(dataset):
    """The dataset as it is, once every answer is known to be yes or no (checked before any model work)."""
    for answer in dataset["answer"]:
        pope.gold(answer)
    return dataset


def doc_to_image(doc):
    return [decode_image(doc["image"], f"POPE row question_id={doc['question_id']} field image")]


def process_results(doc, results):
    item = pope.item(results[0], doc["answer"])
    return dict.fromkeys(("accuracy", "precision", "recall", "f1", "yes_ratio"), item)
