"""Our FID Inception port against torch-fidelity's, on the same weights: features and the resize to 299.

torch-fidelity needs torchvision, which breaks transformers here, so its package is not installed: this script
loads the two files that matter (the network and TensorFlow-1 resize) from an unpacked wheel, beside stubs of
nothing. Run:
    pip download torch-fidelity==0.4.0 --no-deps -d /tmp/tf && cd /tmp/tf && unzip -q torch_fidelity-*.whl
    python results/image_quality/parity_torch_fidelity.py /tmp/tf [WEIGHTS.pth]
Without WEIGHTS (no network here) it makes random weights in the file's layout, scaled so features vary.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import types
from pathlib import Path

import torch

from hermes_bench.detectors.tiny import build_random_fid_inception
from hermes_bench.scoring.fid_inception import load_fid_inception, resize_like_tf1

SIZES = ((64, 64), (256, 256), (384, 384), (300, 200), (299, 299), (512, 512))


def _torch_fidelity(unpacked: Path):
    """torch-fidelity's Inception and resize modules, without its package __init__ (which imports torchvision)."""
    package = types.ModuleType("torch_fidelity")
    package.__path__ = [str(unpacked / "torch_fidelity")]
    sys.modules["torch_fidelity"] = package
    for name in ("defaults", "deprecations", "helpers", "feature_extractor_base", "interpolate_compat_tensorflow",
                 "feature_extractor_inceptionv3"):
        path = unpacked / "torch_fidelity" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"torch_fidelity.{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["torch_fidelity.feature_extractor_inceptionv3"], sys.modules[
        "torch_fidelity.interpolate_compat_tensorflow"]


def main(unpacked: Path, weights: Path | None) -> None:
    inception, resize = _torch_fidelity(unpacked)
    weights = weights or build_random_fid_inception(Path(tempfile.mkdtemp()) / "random_inception.pth", seed=1)
    reference = inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                      feature_extractor_weights_path=str(weights))
    ours, _ = load_fid_inception(weights)
    print(f"weights: {weights}; same state-dict keys: {set(reference.state_dict()) == set(ours.state_dict())}")
    print("| input | resize bitwise equal | largest feature difference | feature spread over images |")
    print("| --- | --- | ---: | ---: |")
    for height, width in SIZES:
        images = torch.randint(0, 256, (3, 3, height, width), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(height * width))
        theirs_resized = resize.interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299),
                                                                          align_corners=False)
        with torch.no_grad():
            theirs, mine = reference(images)[0], ours(images)
        print(f"| {height}x{width} | {torch.equal(theirs_resized, resize_like_tf1(images.float(), 299))} "
              f"| {(theirs - mine).abs().max().item():.3g} | {theirs.std(0).mean().item():.3g} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
