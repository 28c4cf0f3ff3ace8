"""MME scoring as the official calculation.py: answer parsing, acc + acc_plus per subtask, summed totals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
              "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def parse_answer(text: str) -> str:
    s = text.lower().strip()
    if s in ("yes", "no"):
        return s
    if "yes" in s[:4]:
        return "yes"
    if "no" in s[:4]:
        return "no"
    return "other"


def item(response: str, answer: str, question_id: str, category: str) -> dict:
    return {"question_id": question_id, "category": category, "pred": parse_answer(response),
            "answer": answer.strip().lower()}


def subtask_scores(items: Sequence[dict]) -> dict[str, float]:
    """Per category: 100 * accuracy over questions + 100 * share of images with every question right."""
    by_category: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for i in items:
        by_category[i["category"]][i["question_id"]].append(i["pred"] == i["answer"])
    scores = {}
    for category, images in by_category.items():
        answers = [ok for oks in images.values() for ok in oks]
        acc = sum(answers) / len(answers)
        acc_plus = sum(all(oks) for oks in images.values()) / len(images)
        scores[category] = 100 * acc + 100 * acc_plus
    return scores


def perception_score(items: Sequence[dict]) -> float:
    return sum(v for k, v in subtask_scores(items).items() if k in PERCEPTION)


def cognition_score(items: Sequence[dict]) -> float:
    return sum(v for k, v in subtask_scores(items).items() if k in COGNITION)
