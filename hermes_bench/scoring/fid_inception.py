"""The FID Inception network: the TensorFlow Inception graph of 2015-12-05 that FID is defined on (TTUR), as
pytorch-fid, torch-fidelity, clean-fid's legacy mode and torchmetrics run it.

Its weights are pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (torch-fidelity ships the same file as
`weights-inception-2015-12-05-6726825d.pth`), a plain state dict in torchvision's Inception-v3 names. This is
our own port of that network, because torch-fidelity (which torchmetrics' default FID uses) needs torchvision.
It differs from torchvision's Inception-v3 where TensorFlow's graph does: average pools leave padding out of
the mean, the last block max-pools its pool branch, batch norm's epsilon is 1e-3 and there are 1008 classes.

Input: uint8 images (N, 3, H, W) of any size. They are resized to 299 x 299, by default as TensorFlow 1 resizes
(bilinear without the half-pixel offset, torch-fidelity's exact emulation), then scaled by (x - 128) / 128.
Output: the 2048 pool features, float32.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hermes_bench.errors import HermesBenchError

WEIGHT_FILES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHT_FILES[0]
INPUT_SIZE = 299
# tf1: TensorFlow 1's resize, as the official FID and torch-fidelity; antialias: torchmetrics' default
RESIZES = ("tf1", "antialias")


def resize_like_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize as TensorFlow 1's resize_bilinear(align_corners=False): source = target * in / out, with
    no half-pixel offset, edges clamped. The arithmetic follows torch-fidelity's "slow" path, which is bit-exact
    with TensorFlow on CPU."""
    def taps(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        position = torch.arange(size, dtype=x.dtype, device=x.device) * torch.tensor(n_in / size, dtype=torch.float32)
        low = position.long()
        return low, (low + 1).clamp_max(n_in - 1), position - low.float()

    y_low, y_high, dy = taps(x.shape[2])
    x_low, x_high, dx = taps(x.shape[3])
    top, bottom = x[:, :, y_low, :], x[:, :, y_high, :]
    top = top[:, :, :, x_low] + (top[:, :, :, x_high] - top[:, :, :, x_low]) * dx.view(1, 1, 1, size)
    bottom = bottom[:, :, :, x_low] + (bottom[:, :, :, x_high] - bottom[:, :, :, x_low]) * dx.view(1, 1, 1, size)
    return top + (bottom - top) * dy.view(1, 1, size, 1)


class _Conv(nn.Module):
    """Convolution without bias, batch norm (TensorFlow's epsilon), ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)  # TensorFlow: padding not averaged


class _BlockA(nn.Module):  # Mixed_5b-d
    def __init__(self, cin: int, pool: int) -> None:
        super().__init__()
        self.branch1x1 = _Conv(cin, 64, 1)
        self.branch5x5_1, self.branch5x5_2 = _Conv(cin, 48, 1), _Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2, self.branch3x3dbl_3 = _Conv(64, 96, 3, padding=1), _Conv(96, 96, 3, padding=1)
        self.branch_pool = _Conv(cin, pool, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg_pool(x))], 1)


class _BlockB(nn.Module):  # Mixed_6a: grid reduction
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _Conv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2, self.branch3x3dbl_3 = _Conv(64, 96, 3, padding=1), _Conv(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class _BlockC(nn.Module):  # Mixed_6b-e: factorised 7x7
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        row, col = {"kernel": (1, 7), "padding": (0, 3)}, {"kernel": (7, 1), "padding": (3, 0)}
        self.branch1x1 = _Conv(cin, 192, 1)
        self.branch7x7_1, self.branch7x7_2 = _Conv(cin, c7, 1), _Conv(c7, c7, **row)
        self.branch7x7_3 = _Conv(c7, 192, **col)
        self.branch7x7dbl_1, self.branch7x7dbl_2 = _Conv(cin, c7, 1), _Conv(c7, c7, **col)
        self.branch7x7dbl_3, self.branch7x7dbl_4 = _Conv(c7, c7, **row), _Conv(c7, c7, **col)
        self.branch7x7dbl_5 = _Conv(c7, 192, **row)
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                     self.branch7x7dbl_5):
            double = conv(double)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(_avg_pool(x))], 1)


class _BlockD(nn.Module):  # Mixed_7a: grid reduction
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = _Conv(cin, 192, 1), _Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _Conv(cin, 192, 1)
        self.branch7x7x3_2 = _Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven, F.max_pool2d(x, 3, stride=2)], 1)


class _BlockE(nn.Module):  # Mixed_7b-c: expanded filter banks
    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool  # TensorFlow's graph max-pools in the last block (Mixed_7c)
        self.branch1x1 = _Conv(cin, 320, 1)
        self.branch3x3_1 = _Conv(cin, 384, 1)
        self.branch3x3_2a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1, self.branch3x3dbl_2 = _Conv(cin, 448, 1), _Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(single), self.branch3x3_2b(single),
                          self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double), self.branch_pool(pooled)], 1)


class FIDInception(nn.Module):
    """uint8 images (N, 3, H, W) -> their 2048 FID features. Always in eval mode: batch norm uses its statistics."""

    num_features = 2048  # torchmetrics reads it instead of running a dummy image

    def __init__(self, resize: str = "tf1") -> None:
        super().__init__()
        if resize not in RESIZES:
            raise HermesBenchError(f"unknown FID resize {resize!r}: use one of {', '.join(RESIZES)}")
        self.resize = resize
        self.Conv2d_1a_3x3 = _Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = _BlockA(192, 32), _BlockA(256, 64), _BlockA(288, 64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b, self.Mixed_6c = _BlockC(768, 128), _BlockC(768, 160)
        self.Mixed_6d, self.Mixed_6e = _BlockC(768, 160), _BlockC(768, 192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b, self.Mixed_7c = _BlockE(1280, max_pool=False), _BlockE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)  # unused for features; kept so the weights file loads strictly
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FIDInception:
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(torch.float32)
        if self.resize == "tf1":
            x = resize_like_tf1(x, INPUT_SIZE)
        else:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
        x = (x - 128) / 128
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def default_weights() -> Path | None:
    """The weights file where pytorch-fid or torch-fidelity would have downloaded it (torch hub's checkpoints)."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)


def load_fid_inception(weights: Path | None, resize: str = "tf1") -> tuple[FIDInception, str]:
    """The network with its weights (read weights-only: no code in the file runs), and a fingerprint of both."""
    path = weights or default_weights()
    if path is None or not Path(path).is_file():
        where = path or Path(torch.hub.get_dir()) / "checkpoints" / WEIGHT_FILES[0]
        raise HermesBenchError(f"FID needs the Inception weights {WEIGHT_FILES[0]}, not found at {where}: download "
                               f"{WEIGHTS_URL} there, or pass --fid-features FILE")
    network = FIDInception(resize)
    try:
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise HermesBenchError(f"{path} is not the FID Inception's weights ({str(err).splitlines()[0][:120]}): "
                               f"download {WEIGHTS_URL}") from None
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return network, f"fid-inception-2015-12-05/{resize}/{digest[:16]}"
