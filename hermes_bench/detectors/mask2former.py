"""GenEval's detector through transformers: Mask2Former (COCO instance segmentation) for objects, CLIP
zero-shot for colours, as the reference evaluate_images.py does with mmdet and open_clip.

Colour: the object's mask pasted on a #999999 background, cropped to its box, classified over the ten colours
with the three templates; each colour's text embedding is the normalised mean of its three normalised prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel, AutoModelForUniversalSegmentation, AutoProcessor

from hermes_bench.detectors.base import Detector
from hermes_bench.errors import HermesBenchError, refuse_remote_code
from hermes_bench.scoring.geneval import Detection

DETECTOR_ID = "facebook/mask2former-swin-small-coco-instance"
CLIP_ID = "openai/clip-vit-large-patch14"
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
TEMPLATES = ("a photo of a {c} {cls}", "a photo of a {c}-colored {cls}", "a photo of a {c} object")
BACKGROUND = "#999999"
# GenEval's object_names.txt: the 80 COCO classes in COCO order, named as GenEval's prompts name them.
GENEVAL_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "computer mouse", "tv remote", "computer keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush")


def _features(output: torch.Tensor | object) -> torch.Tensor:
    """transformers 5 returns output objects from get_*_features; older versions return tensors."""
    return getattr(output, "pooler_output", output)


class Mask2FormerClip(Detector):
    def __init__(self, detector_id: str = DETECTOR_ID, clip_id: str = CLIP_ID, device: str = "cpu",
                 batch_size: int = 8) -> None:
        refuse_remote_code(detector_id, "GenEval detector")
        refuse_remote_code(clip_id, "GenEval CLIP model")
        try:
            self.seg_processor = AutoImageProcessor.from_pretrained(detector_id, trust_remote_code=False)
            self.segmenter = AutoModelForUniversalSegmentation.from_pretrained(
                detector_id, trust_remote_code=False).to(device).eval()
            self.clip_processor = AutoProcessor.from_pretrained(clip_id, trust_remote_code=False)
            self.clip = AutoModel.from_pretrained(clip_id, trust_remote_code=False).to(device).eval()
        except OSError as err:
            raise HermesBenchError(f"cannot load the GenEval detector ({detector_id}, {clip_id}): "
                                   f"{str(err).split('. ')[0]}; pass local folders with --detector-model and "
                                   "--clip-model") from None
        self.device = device
        self.batch_size = batch_size
        labels = self.segmenter.config.id2label
        # a COCO instance model's ids follow COCO order: use GenEval's names for them, as its script does
        self.labels = dict(enumerate(GENEVAL_CLASSES)) if len(labels) == len(GENEVAL_CLASSES) else labels
        self._classifiers: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def detect(self, images: Sequence[Image.Image]) -> list[list[Detection]]:
        found = []
        for start in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[start:start + self.batch_size]]
            inputs = self.seg_processor(images=batch, return_tensors="pt").to(self.device)
            outputs = self.segmenter(**inputs)
            results = self.seg_processor.post_process_instance_segmentation(
                outputs, threshold=0.0, target_sizes=[im.size[::-1] for im in batch], return_binary_maps=True)
            found += [self._detections(r) for r in results]
        return found

    def _detections(self, result: dict) -> list[Detection]:
        masks = result["segmentation"]
        detections = []
        for index, info in enumerate(result["segments_info"]):
            mask = masks[index].bool().cpu().numpy()
            ys, xs = np.nonzero(mask)
            if not len(xs):
                continue
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            detections.append(Detection(self.labels[info["label_id"]], float(info["score"]), box, mask=mask))
        return detections

    def _classifier(self, classname: str) -> torch.Tensor:
        if classname not in self._classifiers:
            weights = []
            for color in COLORS:
                texts = [t.format(c=color, cls=classname) for t in TEMPLATES]
                tokens = self.clip_processor(text=texts, return_tensors="pt", padding=True).to(self.device)
                emb = torch.nn.functional.normalize(_features(self.clip.get_text_features(**tokens)), dim=-1)
                mean = emb.mean(dim=0)
                weights.append(mean / mean.norm())
            self._classifiers[classname] = torch.stack(weights, dim=1)
        return self._classifiers[classname]

    @torch.inference_mode()
    def colors(self, image: Image.Image, detections: Sequence[Detection], classname: str) -> list[str]:
        image = image.convert("RGB")
        blank = Image.new("RGB", image.size, BACKGROUND)
        crops = []
        for d in detections:
            pasted = image if d.mask is None else Image.composite(image, blank, Image.fromarray(d.mask))
            crops.append(pasted.crop(d.box))
        pixels = self.clip_processor(images=crops, return_tensors="pt").pixel_values.to(self.device)
        feats = torch.nn.functional.normalize(_features(self.clip.get_image_features(pixel_values=pixels)), dim=-1)
        logits = 100.0 * feats @ self._classifier(classname)
        return [COLORS[i] for i in logits.argmax(dim=1).tolist()]
