"""Words of the shapes world: captions from a scene graph, questions, and GenEval-style prompt metadata."""

from __future__ import annotations

import random
from collections import Counter

from hermes_bench.world.scene import COLORS, MAX_OBJECTS, SHAPES, Scene

NUMBERS = ("zero", "one", "two", "three", "four")
RELATIONS = ("left of", "right of", "above", "below")
YES_NO_SUFFIX = " Please answer yes or no."
CAPTION_PROMPT = "Describe the image in one sentence."


def plural(noun: str) -> str:
    return noun + "s"


def counted(n: int, noun: str) -> str:
    return f"a {noun}" if n == 1 else f"{NUMBERS[n]} {plural(noun)}"


def caption(scene: Scene, colors: bool = True) -> str:
    """'two red circles and a blue square' (or 'two circles and a square' without colours), objects grouped
    by name in order of appearance."""
    counts = Counter(o.name if colors else o.shape for o in scene.objects)
    parts = [counted(n, name) for name, n in counts.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def relation_caption(a: str, relation: str, b: str) -> str:
    """GenEval's position phrasing: 'a red circle left of a blue square'."""
    return f"a {a} {relation} a {b}"


def existence_question(name: str) -> str:
    return f"Is there a {name} in the image?"


def count_question(name: str, n: int) -> str:
    return f"Is the number of {plural(name)} in the image {NUMBERS[n]}?"


def position_question(a: str, relation: str, b: str) -> str:
    phrase = {"left of": "to the left of", "right of": "to the right of"}.get(relation, relation)
    return f"Is the {a} {phrase} the {b}?"


def where_question(name: str) -> str:
    return f"Where is the {name}?"


def where_answer(row: int, col: int) -> str:
    """'row two, column four' for the cell at (1, 3)."""
    return f"row {NUMBERS[row + 1]}, column {NUMBERS[col + 1]}"


def relation_question(a: str, b: str) -> str:
    return f"Where is the {a} relative to the {b}?"


def how_many_question(name: str) -> str:
    return f"How many {plural(name)} are there?"


def color_question(shape: str, color: str) -> str:
    return f"Is the {shape} {color}?"


def shape_question(color: str, shape: str) -> str:
    return f"Is the {color} object a {shape}?"


def geneval_prompt(rng: random.Random, tag: str) -> dict:
    """One prompt in GenEval's evaluation_metadata.jsonl schema, with shapes for classes."""
    colors, shapes = list(COLORS), list(SHAPES)
    if tag == "single_object":
        s = rng.choice(shapes)
        return {"tag": tag, "include": [{"class": s, "count": 1}], "prompt": f"a {s}"}
    if tag == "two_object":
        a, b = rng.sample(shapes, 2)
        return {"tag": tag, "include": [{"class": a, "count": 1}, {"class": b, "count": 1}],
                "prompt": f"a {a} and a {b}"}
    if tag == "counting":
        s, n = rng.choice(shapes), rng.randint(2, MAX_OBJECTS)
        return {"tag": tag, "include": [{"class": s, "count": n}], "exclude": [{"class": s, "count": n + 1}],
                "prompt": counted(n, s)}
    if tag == "colors":
        s, c = rng.choice(shapes), rng.choice(colors)
        return {"tag": tag, "include": [{"class": s, "count": 1, "color": c}], "prompt": f"a {c} {s}"}
    if tag == "position":
        a, b = rng.sample(shapes, 2)
        rel = rng.choice(RELATIONS)
        return {"tag": tag, "include": [{"class": b, "count": 1}, {"class": a, "count": 1, "position": [rel, 0]}],
                "prompt": relation_caption(a, rel, b)}
    if tag == "color_attr":
        a, b = rng.sample(shapes, 2)
        ca, cb = rng.sample(colors, 2)
        return {"tag": tag, "include": [{"class": a, "count": 1, "color": ca}, {"class": b, "count": 1, "color": cb}],
                "prompt": f"a {ca} {a} and a {cb} {b}"}
    raise ValueError(f"unknown GenEval tag {tag!r}")


def parse_caption(text: str) -> tuple[Counter, tuple[str, str, str] | None] | None:
    """The inverse of `caption` and `relation_caption`: (object names counted, the claimed relation (a, relation,
    b) or None); None when the text is not in the world's grammar."""
    text = text.strip().rstrip(".")
    for relation in RELATIONS:
        if f" {relation} " in text:
            a, b = text.split(f" {relation} ", 1)
            if not (a.startswith("a ") and b.startswith("a ")):
                return None
            return Counter([a[2:], b[2:]]), (a[2:], relation, b[2:])
    counts: Counter = Counter()
    for part in text.replace(" and ", ", ").split(", "):
        number, _, noun = part.partition(" ")
        if number == "a" and noun:
            counts[noun] += 1
        elif number in NUMBERS[2:] and noun.endswith("s"):
            counts[noun[:-1]] += NUMBERS.index(number)
        else:
            return None
    return counts, None
