"""MMMU scoring as the official eval_utils.py (MMMU-Benchmark/MMMU): answer parsers and accuracy.

The one departure: the official script falls back to `random.choice` on a global generator seeded once
(random.seed(42)), so a guess depends on how many guesses came before it. Here each guess draws from a
generator seeded with 42 and the question id: the same answer whatever the order or sharding of the run.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Sequence

SEED = 42
DISCIPLINES: dict[str, tuple[str, ...]] = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": ("Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine",
                            "Pharmacy", "Public_Health"),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": ("Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics",
                             "Energy_and_Power", "Materials", "Mechanical_Engineering"),
}
_INDICATORS = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]


def parse_options(options: str | list) -> list[str]:
    """The dataset stores options as the text of a Python list: parse it as a literal, never eval it."""
    return list(options) if isinstance(options, list) else list(ast.literal_eval(options))


def choices(options: list[str]) -> dict[str, str]:
    return {chr(ord("A") + i): option for i, option in enumerate(options)}


def parse_multi_choice_response(response: str, index2ans: dict[str, str], guess_key: str = "") -> str:
    """The letter a free-form response picks: '(X)', then ' X ', then (if over 5 words) an option's text;
    among several, the one mentioned last; with none, a seeded guess."""
    all_choices = list(index2ans)
    for char in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(char)
    response = " " + response + " "
    index_ans, ans_with_brack = True, False
    candidates = [c for c in all_choices if f"({c})" in response]
    if candidates:
        ans_with_brack = True
    else:
        candidates = [c for c in all_choices if f" {c} " in response]
    if not candidates and len(response.split()) > 5:
        candidates = [c for c, ans in index2ans.items() if ans.lower() in response.lower()]
        index_ans = False
    if not candidates:
        return random.Random(f"{SEED}-{guess_key}").choice(all_choices)
    if len(candidates) == 1:
        return candidates[0]
    if index_ans:
        starts = [response.rfind(f"({c})" if ans_with_brack else f" {c} ") for c in candidates]
    else:
        starts = [response.lower().rfind(index2ans[c].lower()) for c in candidates]
    return candidates[starts.index(max(starts))]


def check_is_number(string: str) -> bool:
    try:
        float(string.replace(",", ""))
        return True
    except ValueError:
        return False


def normalize_str(string: str) -> list[str | float]:
    """Numbers as floats rounded to 2 places; strings lowercased (one letter padded, to avoid trivial hits)."""
    string = string.strip()
    if check_is_number(string):
        return [round(float(string.replace(",", "")), 2)]
    string = string.lower()
    return [" " + string, string + " "] if len(string) == 1 else [string]


def extract_numbers(string: str) -> list[str]:
    with_commas = re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", string)
    scientific = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", string)
    simple = re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", string)
    return with_commas + scientific + simple


def _key_subresponses(response: str) -> list[str]:
    response = response.strip().strip(".").lower()
    sub_responses = re.split(r"\.\s(?=[A-Z])|\n", response)
    key_responses = []
    for index, resp in enumerate(sub_responses):
        indicators = [*_INDICATORS, "="] if index == len(sub_responses) - 1 else _INDICATORS
        shortest = None
        for indicator in indicators:
            if indicator in resp:
                tail = resp.split(indicator)[-1].strip()
                if not shortest or len(tail) < len(shortest):  # as the official code: '' is replaced too
                    shortest = tail
        if shortest and shortest.strip() not in [":", ",", ".", "!", "?", ";", ":", "'"]:
            key_responses.append(shortest)
    return key_responses or [response]


def parse_open_response(response: str) -> list[str | float]:
    keys = _key_subresponses(response)
    predictions = keys + [n for k in keys for n in extract_numbers(k)]
    return list({norm for p in predictions for norm in normalize_str(p)})


def gold_answers(answer: str | list) -> list[str]:
    """A question's gold: one string, or several stored as a list or as the text of one."""
    if isinstance(answer, list):
        return [str(a) for a in answer]
    if answer.strip().startswith("["):
        try:
            parsed = ast.literal_eval(answer)
        except (ValueError, SyntaxError):
            return [answer]
        if isinstance(parsed, list):
            return [str(a) for a in parsed]
    return [answer]


def eval_open(gold: Sequence[str], predictions: list[str | float]) -> bool:
    norm_answers = [n for g in gold for n in normalize_str(g)]
    for pred in predictions:
        if isinstance(pred, str):
            if any(isinstance(n, str) and n in pred for n in norm_answers):
                return True
        elif pred in norm_answers:
            return True
    return False


def item(response: str, doc: dict) -> dict:
    if doc["question_type"] == "multiple-choice":
        parsed = parse_multi_choice_response(response, choices(parse_options(doc["options"])), doc["id"])
        correct = parsed in gold_answers(doc["answer"])  # a gold list: any of its letters, as eval_multi_choice
    else:
        parsed = parse_open_response(response)
        correct = eval_open(gold_answers(doc["answer"]), parsed)
    return {"id": doc["id"], "parsed": parsed, "correct": bool(correct)}


def accuracy(items: Sequence[dict]) -> float:
    return sum(i["correct"] for i in items) / len(items) if items else 0.0
