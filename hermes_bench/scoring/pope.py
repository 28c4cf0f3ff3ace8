"""POPE scoring as the official script (LLaVA eval_pope.py): answer parsing and the per-split metrics.

Aggregations take the items that `item` makes, one per question, so lm-eval and our bootstrap share them.
A metric the official script would divide by zero for (precision with no "yes" predicted, recall with no "yes"
in the gold answers, F1 with either, or with no true positive) is undefined: NaN here, null in results.json and
"n/a" in leaderboards, never 0.0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from hermes_bench.errors import HermesBenchError

UNDEFINED = float("nan")


def parse_answer(text: str) -> str:
    """'no' if the first sentence has the word 'No', 'not' or 'no'; otherwise 'yes'."""
    first = text.split(".")[0].replace(",", "")
    words = first.split(" ")
    return "no" if {"No", "not", "no"} & set(words) else "yes"


def gold(answer: object) -> str:
    """A POPE answer as "yes" or "no"; anything else is a data error."""
    found = answer.strip().lower() if isinstance(answer, str) else None
    if found not in ("yes", "no"):
        raise HermesBenchError(f"POPE answer {answer!r} is neither yes nor no: fix the dataset's answer column")
    return found


def item(response: str, answer: str) -> dict:
    return {"pred": parse_answer(response), "answer": gold(answer)}


def _counts(items: Sequence[dict]) -> tuple[int, int, int, int]:
    """(true positives, false positives, true negatives, false negatives); 'yes' is the positive class."""
    c = Counter((i["pred"], i["answer"]) for i in items)
    return c["yes", "yes"], c["yes", "no"], c["no", "no"], c["no", "yes"]


def _ratio(num: float, den: float) -> float:
    return num / den if den else UNDEFINED


def accuracy(items: Sequence[dict]) -> float:
    tp, fp, tn, fn = _counts(items)
    return _ratio(tp + tn, tp + tn + fp + fn)


def precision(items: Sequence[dict]) -> float:
    tp, fp, _, _ = _counts(items)
    return _ratio(tp, tp + fp)


def recall(items: Sequence[dict]) -> float:
    tp, _, _, fn = _counts(items)
    return _ratio(tp, tp + fn)


def f1(items: Sequence[dict]) -> float:
    """2PR / (P + R) as the official script computes it; NaN where it would divide by zero."""
    tp, fp, _, fn = _counts(items)
    if not tp:  # P or R undefined, or both 0
        return UNDEFINED
    p, r = tp / (tp + fp), tp / (tp + fn)
    return 2 * p * r / (p + r)


def yes_ratio(items: Sequence[dict]) -> float:
    """Share of PREDICTED yes (lmms-eval counts the ground truth instead: a bug we do not copy)."""
    return _ratio(sum(i["pred"] == "yes" for i in items), len(items))
