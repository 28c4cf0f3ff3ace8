"""Judges answer yes/no questions about images: the exact oracle of the shapes world, or a model (the evaluated
model itself for self-VQA, or any unified model as a VLM judge). An answer is True (yes), False (no) or None
(the question does not apply to the image, e.g. 'Is the circle red?' with two circles: never right)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image
from transformers import PretrainedConfig

from hermes_bench.configs import EXACT, JUDGE_HELP, SELF
from hermes_bench.detectors.shapes import detect
from hermes_bench.errors import HermesBenchError, loading
from hermes_bench.models import check_source, load_model
from hermes_bench.models.api import PREFIX, APIModel
from hermes_bench.models.base import IMAGE_PLACEHOLDER, Answerer
from hermes_bench.scoring.pope import parse_answer
from hermes_bench.storage import SampleCache, digest
from hermes_bench.world import language
from hermes_bench.world.questions import Question, answer
from hermes_bench.world.scene import CELL, GRID, Scene, SceneObject


class Judge(ABC):
    name: str

    @abstractmethod
    def answer(self, images: list[Image.Image], questions: list[list[Question]]) -> list[list[bool | None]]:
        """For each image, an answer to each of its questions."""


def read_scene(image: Image.Image) -> Scene:
    """The scene graph the exact detector sees: each detection in the grid cell of its box centre."""
    objects = []
    for d in detect(image):
        x0, y0, x1, y1 = d.box
        row, col = min(int((y0 + y1) / 2 // CELL), GRID - 1), min(int((x0 + x1) / 2 // CELL), GRID - 1)
        objects.append(SceneObject(d.color, d.label, row, col))
    return Scene(tuple(sorted(objects, key=lambda o: (o.row, o.col))))


class ExactJudge(Judge):
    """The oracle: detect the scene, then read each answer off its graph."""

    name = "exact"

    def answer(self, images, questions):
        return [[answer(read_scene(im), q) for q in qs] for im, qs in zip(images, questions, strict=True)]


YES_NO = ("yes", "no")


@dataclass(frozen=True)
class MCQuestion:
    """A multiple-choice question about a caption with the right choice; `fact` is the shapes world's structured
    question, which the exact oracle answers."""

    text: str
    choices: tuple[str, ...]
    answer: str
    fact: Question | None = None

    def prompt(self) -> str:
        """What a model is asked: yes/no questions as the MME prompt, others with their choices listed."""
        if self.choices == YES_NO:
            return self.text + language.YES_NO_SUFFIX
        return f"{self.text} Choose one: {', '.join(self.choices)}."

    def stored(self) -> dict:
        """The stored form that `parse_questions` reads back."""
        return {"question": self.text, "choices": list(self.choices), "answer": self.answer}


def parse_questions(raw: object, where: str) -> list[MCQuestion]:
    """Stored questions ([{question, choices, answer}], the answer among the choices) as MCQuestions; `where`
    names the file or row in the one-line error."""
    if not isinstance(raw, list):
        raise HermesBenchError(f"{where}: questions must be a list of {{question, choices, answer}}")
    out = []
    for q in raw:
        if not (isinstance(q, dict) and {"question", "choices", "answer"} <= q.keys() and isinstance(q["question"], str)
                and isinstance(q["choices"], list) and len(q["choices"]) >= 2
                and all(isinstance(c, str) for c in q["choices"]) and q["answer"] in q["choices"]):
            raise HermesBenchError(f"{where}: each question needs a 'question', a list of two or more 'choices' "
                                   "(strings) and an 'answer' among them")
        out.append(MCQuestion(q["question"], tuple(q["choices"]), q["answer"]))
    return out


class ChoiceMatcher(ABC):
    @abstractmethod
    def match(self, answer: str, choices: tuple[str, ...]) -> str | None:
        """The choice a free-form answer means, or None."""


class ExactChoice(ChoiceMatcher):
    """Yes/no by POPE's parser; otherwise the one choice the answer names (None if it names none or several)."""

    def match(self, answer, choices):
        if choices == YES_NO:
            return parse_answer(answer)
        named = [c for c in choices if c.lower() in answer.lower()]
        return named[0] if len(named) == 1 else None


def ask(model: Answerer, images: list[Image.Image], questions: list[list[MCQuestion]], matcher: ChoiceMatcher,
        batch_size: int = 32, max_new_tokens: int = 8, cache: SampleCache | None = None) -> list[list[str | None]]:
    """For each image, the choice the model's greedy answer to each of its questions means; with a cache, kept per
    image as batches finish and read back on a rerun (an external judge is not asked twice)."""
    if cache is not None:
        keys = [digest(model.fingerprint, type(matcher).__name__, max_new_tokens, image, [q.prompt() for q in qs])
                for image, qs in zip(images, questions, strict=True)]
        todo = [i for i, key in enumerate(keys) if key not in cache]
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            said = ask(model, [images[i] for i in chunk], [questions[i] for i in chunk], matcher, batch_size,
                       max_new_tokens)
            cache.put_many({keys[i]: row for i, row in zip(chunk, said, strict=True)})
        return [cache.get(key) for key in keys]
    flat = [(im, q) for im, qs in zip(images, questions, strict=True) for q in qs]
    chosen: list[str | None] = []
    for start in range(0, len(flat), batch_size):
        chunk = flat[start:start + batch_size]
        said = model.answer([IMAGE_PLACEHOLDER + q.prompt() for _, q in chunk], [[im] for im, _ in chunk],
                            max_new_tokens=max_new_tokens)
        chosen += [matcher.match(text, q.choices) for (_, q), text in zip(chunk, said, strict=True)]
    out, k = [], 0
    for qs in questions:
        out.append(chosen[k:k + len(qs)])
        k += len(qs)
    return out


class ModelJudge(Judge):
    """A unified model answering greedily with the MME prompt, its answer parsed as POPE does."""

    def __init__(self, model: Answerer, name: str, batch_size: int = 32, cache: SampleCache | None = None) -> None:
        self.model, self.name, self.batch_size, self.cache = model, name, batch_size, cache

    def answer(self, images, questions):
        asked = [[MCQuestion(q.text, YES_NO, "yes", q) for q in qs] for qs in questions]  # "yes": unused here
        return [[c == "yes" for c in row]
                for row in ask(self.model, images, asked, ExactChoice(), self.batch_size, 4, self.cache)]


# Every command names a judge the same way (configs.JUDGE_HELP): who answers questions about generated images.
# Judges reached through a prefix (`openai:MODEL`): the prefix, and what makes an Answerer of the full name.
JUDGE_PREFIXES: dict[str, Callable[[str], Answerer]] = {PREFIX: APIModel}


def _prefixed(name: str) -> Callable[[str], Answerer] | None:
    return next((make for prefix, make in JUDGE_PREFIXES.items() if name.startswith(prefix)), None)


def check_judge(name: str, needs: str | None = None) -> None:
    """A judge name checked without loading anything (a folder must exist and hold a config.json). `needs` names
    questions the shapes oracle cannot answer: then `exact` is refused."""
    if not name:
        raise HermesBenchError(f"an empty judge name: {JUDGE_HELP}")
    if name == EXACT and needs:
        raise HermesBenchError(f"--judge exact answers shapes-world questions only; {needs} need a model judge: "
                               "self, openai:MODEL, or a model folder or hub id")
    if name not in (SELF, EXACT) and _prefixed(name) is None and check_source(name, "judge folder") is None:
        with loading(f"judge {name}", "pass a model folder, or a hub id in the hub cache"):
            PretrainedConfig.get_config_dict(name)  # a hub id: its config must be reachable before any work


def load_answerer(name: str, model: Answerer | None, device: str, needs: str) -> Answerer:
    """The model behind a judge name: the evaluated `model` (self), an API model, or a model loaded by path or hub
    id (`exact` has none: see check_judge)."""
    check_judge(name, needs)
    if name == SELF:
        if model is None:
            raise HermesBenchError("--judge self: there is no model of its own here; pass --judge openai:MODEL or "
                                   "a model folder or hub id")
        return model
    make = _prefixed(name)
    return make(name) if make is not None else load_model(name, device)
