"""POPE scoring as the official script (LLaVA eval_pope.py): answer parsing and the per-split metrics.

Aggregations take the items that `item` makes, one per question, so lm-eval and our bootstrap share them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def parse_answer(text: str) -> str:
    """'no' if the first sentence has the word 'No', 'not' or 'no'; otherwise 'yes'."""
    first = text.split(".")[0].replace(",", "")
    words = first.split(" ")
    return "no" if {"No", "not", "no"} & set(words) else "yes"


def item(response: str, answer: str) -> dict:
    return {"pred": parse_answer(response), "answer": answer.strip().lower()}


def _counts(items: Sequence[dict]) -> tuple[int, int, int, int]:
    """(true positives, false positives, true negatives, false negatives); 'yes' is the positive class."""
    c = Counter((i["pred"], i["answer"]) for i in items)
    return c["yes", "yes"], c["yes", "no"], c["no", "no"], c["no", "yes"]


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def accuracy(items: Sequence[dict]) -> float:
    tp, _, tn, _ = _counts(items)
    return _ratio(tp + tn, len(items))


def precision(items: Sequence[dict]) -> float:
    tp, fp, _, _ = _counts(items)
    return _ratio(tp, tp + fp)


def recall(items: Sequence[dict]) -> float:
    tp, _, _, fn = _counts(items)
    return _ratio(tp, tp + fn)


def f1(items: Sequence[dict]) -> float:
    tp, fp, _, fn = _counts(items)
    p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return _ratio(2 * p * r, p + r)


def yes_ratio(items: Sequence[dict]) -> float:
    """Share of PREDICTED yes (lmms-eval counts the ground truth instead: a bug we do not copy)."""
    return _ratio(sum(i["pred"] == "yes" for i in items), len(items))
