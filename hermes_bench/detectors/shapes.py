"""The exact detector of the shapes world: colour segmentation, then shape classification by template match.

Each pixel takes the nearest palette colour (or background); each connected blob of one colour is an object
whose shape is the template with the best IoU on its box. The IoU is the detection's score, so a clean
render scores 1.0 and a smudge from a generator scores lower.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from hermes_bench.detectors.base import Detector
from hermes_bench.scoring.geneval import Detection
from hermes_bench.world.scene import BACKGROUND, COLORS, OBJECT_SIZE, TEMPLATES

_PALETTE = np.array([BACKGROUND, *COLORS.values()], dtype=float)
_COLOR_NAMES = list(COLORS)
MAX_COLOR_DISTANCE = 90.0
MIN_AREA = 8


def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    rows = (np.arange(size) * mask.shape[0] // size)[:, None]
    cols = (np.arange(size) * mask.shape[1] // size)[None, :]
    return mask[rows, cols]


def _classify_shape(mask: np.ndarray) -> tuple[str, float]:
    crop = _resize_mask(mask, OBJECT_SIZE)
    ious = {name: float((crop & tpl).sum() / (crop | tpl).sum()) for name, tpl in TEMPLATES.items()}
    best = max(ious, key=ious.get)
    return best, ious[best]


def detect(image: Image.Image) -> list[Detection]:
    pixels = np.asarray(image.convert("RGB"), dtype=float)
    distances = np.linalg.norm(pixels[:, :, None, :] - _PALETTE[None, None], axis=-1)
    nearest = distances.argmin(-1)
    nearest[distances.min(-1) > MAX_COLOR_DISTANCE] = 0  # unrecognisable colours count as background
    detections = []
    for index in np.unique(nearest[nearest > 0]):
        color = _COLOR_NAMES[index - 1]
        labels, _ = ndimage.label(nearest == index)
        for blob, sl in enumerate(ndimage.find_objects(labels), start=1):
            mask = labels[sl] == blob
            if mask.sum() < MIN_AREA:
                continue
            shape, score = _classify_shape(mask)
            box = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
            detections.append(Detection(shape, score, box, color))
    return detections


class ShapesDetector(Detector):
    """Exact on clean renders; colours are read off the palette, so no classifier is needed."""

    def detect(self, images):
        return [detect(image) for image in images]
