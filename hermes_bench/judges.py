"""Judges answer yes/no questions about images: the exact oracle of the shapes world, or a model (the evaluated
model itself for self-VQA, or any unified model as a VLM judge). An answer is True (yes), False (no) or None
(the question does not apply to the image, e.g. 'Is the circle red?' with two circles: never right)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from PIL import Image

from hermes_bench.detectors.shapes import detect
from hermes_bench.models.base import IMAGE_PLACEHOLDER, UnifiedModel
from hermes_bench.scoring.pope import parse_answer
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


class ModelJudge(Judge):
    """A unified model answering greedily with the MME prompt, its answer parsed as POPE does."""

    def __init__(self, model: UnifiedModel, name: str, batch_size: int = 32) -> None:
        self.model, self.name, self.batch_size = model, name, batch_size

    def answer(self, images, questions):
        flat = [(im, q) for im, qs in zip(images, questions, strict=True) for q in qs]
        said: list[bool] = []
        for start in range(0, len(flat), self.batch_size):
            chunk = flat[start:start + self.batch_size]
            texts = self.model.answer([f"{IMAGE_PLACEHOLDER}{q.text}{language.YES_NO_SUFFIX}" for _, q in chunk],
                                      [[im] for im, _ in chunk], max_new_tokens=4)
            said += [parse_answer(t) == "yes" for t in texts]
        out, k = [], 0
        for qs in questions:
            out.append(said[k:k + len(qs)])
            k += len(qs)
        return out
