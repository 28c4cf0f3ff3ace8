"""What the GenEval rule engine needs from a detector: objects per image, and their colours on demand."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from PIL import Image

from hermes_bench.scoring.geneval import Detection, known_colors


class Detector(ABC):
    @abstractmethod
    def detect(self, images: Sequence[Image.Image]) -> list[list[Detection]]:
        """Every candidate object per image, any score; the rule engine applies GenEval's thresholds."""

    def colors(self, image: Image.Image, detections: Sequence[Detection], classname: str) -> list[str]:
        """The colour of each detection; by default the one the detector already knows."""
        return known_colors(detections)
