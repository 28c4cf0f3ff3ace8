"""lm-eval hooks for MME (real and shapes-world): the official prompt, parser and acc + acc_plus scores."""

from hermes_bench.hub import decode_image
from hermes_bench.scoring import mme

OFFICIAL_SUFFIX = " Please answer yes or no."
LMMS_EVAL_SUFFIX = "\nAnswer the question using a single word or phrase."


def doc_to_text(doc):
    """The official prompt: the question unchanged (it already ends with the yes/no instruction)."""
    return f"<image>{doc['question']}"


def doc_to_text_lmms_eval(doc):
    """lmms-eval's variant: the yes/no instruction swapped for the short-answer one."""
    return f"<image>{doc['question'].replace(OFFICIAL_SUFFIX, '').strip()}{LMMS_EVAL_SUFFIX}"


def process_docs(dataset):
    """The dataset as it is, once every image is known to have exactly two questions."""
    mme.check_pairs(dataset["question_id"])
    return dataset


def doc_to_image(doc):
    return [decode_image(doc["image"], f"MME row question_id={doc['question_id']} field image")]


def process_results(doc, results):
    item = mme.item(results[0], doc["answer"], doc["question_id"], doc["category"])
    return dict.fromkeys(("mme_perception_score", "mme_cognition_score", *mme.PERCEPTION, *mme.COGNITION), item)


def _subtask(category):
    def score(items):
        return mme.subtask_scores(items).get(category, float("nan"))

    score.__name__ = category
    return score


existence, count, position, color, posters, celebrity, scene, landmark, artwork, OCR = map(_subtask, mme.PERCEPTION)
commonsense_reasoning, numerical_calculation, text_translation, code_reasoning = map(_subtask, mme.COGNITION)
