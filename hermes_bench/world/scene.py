"""The shapes world: seeded scenes of coloured shapes on a grid, rendered to small RGB images.

A scene is a handful of objects, each a (colour, shape) placed in one cell of a GRID x GRID board. Every object
is drawn from a fixed pixel template, so the exact detector can recover the scene from a render.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image

IMAGE_SIZE = 32
GRID = 4
CELL = IMAGE_SIZE // GRID
BACKGROUND = (255, 255, 255)
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "orange": (255, 140, 0),
    "yellow": (240, 220, 0),
    "green": (20, 160, 40),
    "blue": (30, 60, 230),
    "purple": (140, 30, 180),
}
_TEMPLATE_ROWS = {
    "square": ["######", "######", "######", "######", "######", "######"],
    "circle": ["..##..", ".####.", "######", "######", ".####.", "..##.."],
    "triangle": ["..##..", "..##..", ".####.", ".####.", "######", "######"],
}
SHAPES: tuple[str, ...] = tuple(_TEMPLATE_ROWS)
TEMPLATES: dict[str, np.ndarray] = {
    name: np.array([[c == "#" for c in row] for row in rows]) for name, rows in _TEMPLATE_ROWS.items()
}
OBJECT_SIZE = 6
MAX_OBJECTS = 4


@dataclass(frozen=True, order=True)
class SceneObject:
    color: str
    shape: str
    row: int
    col: int

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Pixel box (x0, y0, x1, y1), x1/y1 exclusive."""
        x0, y0 = self.col * CELL + 1, self.row * CELL + 1
        return (x0, y0, x0 + OBJECT_SIZE, y0 + OBJECT_SIZE)


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]

    def names(self) -> set[str]:
        return {o.name for o in self.objects}

    def count(self, shape: str, color: str | None = None) -> int:
        return sum(o.shape == shape and (color is None or o.color == color) for o in self.objects)


def object_weights() -> dict[str, float]:
    """Fixed popularity of each colour and shape (Zipf-like), so POPE's 'popular' negatives mean something."""
    return {name: 1.0 / (rank + 1) for rank, name in enumerate(list(COLORS) + list(SHAPES))}


def sample_scene(rng: random.Random, n_objects: int | None = None) -> Scene:
    """A scene whose objects tend to share a colour, so co-occurrence (POPE 'adversarial') has structure."""
    weights = object_weights()
    n = n_objects if n_objects is not None else rng.randint(1, MAX_OBJECTS)
    cells = rng.sample([(r, c) for r in range(GRID) for c in range(GRID)], n)
    theme = rng.choices(list(COLORS), [weights[c] for c in COLORS])[0]
    objects = []
    for row, col in cells:
        color = theme if rng.random() < 0.5 else rng.choices(list(COLORS), [weights[c] for c in COLORS])[0]
        shape = rng.choices(list(SHAPES), [weights[s] for s in SHAPES])[0]
        objects.append(SceneObject(color, shape, row, col))
    return Scene(tuple(sorted(objects, key=lambda o: (o.row, o.col))))


def render(scene: Scene) -> Image.Image:
    pixels = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    pixels[:] = BACKGROUND
    for obj in scene.objects:
        x0, y0, x1, y1 = obj.box
        pixels[y0:y1, x0:x1][TEMPLATES[obj.shape]] = COLORS[obj.color]
    return Image.fromarray(pixels)
