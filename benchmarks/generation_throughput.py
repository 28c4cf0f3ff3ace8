"""Images per second: generation at batch 1 versus the default batch on the tiny Janus, and detector scoring
(the shapes world's exact detector; a tiny random Mask2Former for the cost of the GenEval detection path).

Usage: python benchmarks/generation_throughput.py [--images 64] [--batch-size 32]
Target: the default batch at least 4x batch 1.
"""

import argparse
import tempfile
import time
from pathlib import Path

from hermes_bench.cli import _quiet_libraries
from hermes_bench.detectors.mask2former import Mask2FormerClip
from hermes_bench.detectors.shapes import ShapesDetector
from hermes_bench.detectors.tiny import build_tiny_clip, build_tiny_mask2former
from hermes_bench.embedded.tiny import build_tiny_janus
from hermes_bench.models import load_model
from hermes_bench.world.datasets import geneval_metadata

N_PER_PROMPT = 4


def images_per_second(model, prompts: list[str], prompts_per_batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(prompts), prompts_per_batch):
        model.generate_images(prompts[i:i + prompts_per_batch], N_PER_PROMPT, 2.0, seed=i)
    return len(prompts) * N_PER_PROMPT / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    _quiet_libraries()
    prompts = [m["prompt"] for m in geneval_metadata(20, seed=0)][:args.images // N_PER_PROMPT]
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(str(build_tiny_janus(Path(tmp) / "janus")), device="cpu", dtype="float32")
        model.generate_images(prompts[:2], N_PER_PROMPT, 2.0, seed=0)  # warm-up
        per_prompt = images_per_second(model, prompts, 1)  # 1 prompt x 4 images per call
        unbatched = len(prompts) * N_PER_PROMPT / sum(
            _time(lambda p=p, k=k: model.generate_images([p], 1, 2.0, seed=k)) for p in prompts
            for k in range(N_PER_PROMPT))
        batched = images_per_second(model, prompts, max(1, args.batch_size // N_PER_PROMPT))
        images = [im for ims in model.generate_images(prompts, N_PER_PROMPT, 2.0, seed=1) for im in ims]
        shapes = _rate(ShapesDetector(), images)
        geneval = _rate(Mask2FormerClip(str(build_tiny_mask2former(Path(tmp) / "m2f")),
                                        str(build_tiny_clip(Path(tmp) / "clip"))), images)
    print(f"tiny Janus on CPU, {len(prompts) * N_PER_PROMPT} images of 32x32")
    print(f"generation, batch 1 (one image per call):   {unbatched:7.1f} images/s")
    print(f"generation, 1 prompt x 4 images per call:   {per_prompt:7.1f} images/s")
    print(f"generation, batch {args.batch_size} (default):           {batched:7.1f} images/s")
    print(f"speed-up, default batch vs batch 1: {batched / unbatched:.1f}x (target >= 4x)")
    print(f"scoring, shapes exact detector:              {shapes:7.1f} images/s")
    print(f"scoring, tiny Mask2Former detection (random): {geneval:6.1f} images/s")


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _rate(detector, images) -> float:
    return len(images) / _time(lambda: detector.detect(images))


if __name__ == "__main__":
    main()
