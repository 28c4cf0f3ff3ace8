"""lm-eval hooks for MMMU: the official prompt (MMMU's LLaVA config), images in tag order, official parsers."""

import re

from hermes_bench.hub import decode_image
from hermes_bench.scoring import mmmu

IMAGE_TAG = re.compile(r"<image (\d+)>")
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OPEN_INSTRUCTION = "Answer the question using a single word or phrase."


def _prompt(doc):
    if doc["question_type"] == "multiple-choice":
        options = "".join(f"({k}) {v}\n" for k, v in mmmu.choices(mmmu.parse_options(doc["options"])).items())
        return f"{doc['question']}\n\n{options}\n\n{MC_INSTRUCTION}"
    return f"{doc['question']}\n\n{OPEN_INSTRUCTION}"


def _tags_in_order(text):
    seen = []
    for match in IMAGE_TAG.finditer(text):
        if int(match.group(1)) not in seen:
            seen.append(int(match.group(1)))
    return seen


def doc_to_text(doc):
    """The prompt with each image's first tag replaced by the image placeholder."""
    text = _prompt(doc)
    for k in _tags_in_order(text):
        text = text.replace(f"<image {k}>", "<image>", 1)
    return text


def doc_to_image(doc):
    return [decode_image(doc[f"image_{k}"], f"MMMU row id={doc['id']} field image_{k}")
            for k in _tags_in_order(_prompt(doc)) if doc.get(f"image_{k}") is not None]


def process_results(doc, results):
    return {"acc": mmmu.item(results[0], doc)}
