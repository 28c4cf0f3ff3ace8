"""MME scoring as the official calculation.py: answer parsing, acc + acc_plus per subtask, summed totals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from hermes_bench.errors import HermesBenchError

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
              "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def parse_answer(text: str) -> str:
    """The official parser: lower-cased, NOT stripped, so leading whitespace takes up the first four characters."""
    s = text.lower()
    if s in ("yes", "no"):
        return s
    if "yes" in s[:4]:
        return "yes"
    if "no" in s[:4]:
        return "no"
    return "other"


def item(response: str, answer: str, question_id: str, category: str) -> dict:
    gold = str(answer).lower()
    if gold not in ("yes", "no"):
        raise HermesBenchError(f"MME question of image {question_id} ({category}) has answer {answer!r}: "
                               "MME's answers must be Yes or No; fix the dataset")
    return {"question_id": question_id, "category": category, "pred": parse_answer(response), "answer": gold}


def subtask_scores(items: Sequence[dict]) -> dict[str, float]:
    """Per category: 100 * accuracy over questions + 100 * share of images with both questions right.

    An image's questions are taken two at a time, as calculation.py reads them: a question_id seen 2k times
    (a bootstrap resample that drew the image k times) counts as k images; an odd count is a data error."""
    by_category: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for i in items:
        by_category[i["category"]][i["question_id"]].append(i["pred"] == i["answer"])
    scores = {}
    for category, images in by_category.items():
        pairs = []
        for image, oks in images.items():
            if len(oks) % 2:
                raise HermesBenchError(f"MME image {image} ({category}) has {len(oks)} question(s), not 2: "
                                       "MME scores every image on exactly two; fix the dataset")
            pairs += [oks[k:k + 2] for k in range(0, len(oks), 2)]
        acc = sum(ok for pair in pairs for ok in pair) / (2 * len(pairs))
        acc_plus = sum(all(pair) for pair in pairs) / len(pairs)
        scores[category] = acc * 100 + acc_plus * 100
    return scores


def check_pairs(question_ids: Sequence[str]) -> None:
    """Every image of an MME dataset has exactly two questions (the official tool asserts it)."""
    counts: dict[str, int] = {}
    for question_id in question_ids:
        counts[question_id] = counts.get(question_id, 0) + 1
    odd = next(((q, n) for q, n in counts.items() if n != 2), None)
    if odd:
        raise HermesBenchError(f"MME image {odd[0]} has {odd[1]} question(s), not 2: MME scores every image on "
                               "exactly two; fix the dataset")


def _total(items: Sequence[dict], categories: tuple[str, ...]) -> float:
    """Summed in the official order, as calculation.py adds them."""
    scores = subtask_scores(items)
    total = 0.0
    for category in categories:
        total += scores.get(category, 0.0)
    return total


def perception_score(items: Sequence[dict]) -> float:
    return _total(items, PERCEPTION)


def cognition_score(items: Sequence[dict]) -> float:
    return _total(items, COGNITION)
