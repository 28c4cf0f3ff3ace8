"""MAGVIT-v2, Show-o's image tokenizer (no package ships it): a VQGAN-style encoder and decoder around a lookup-free
quantizer, with the official module names so that `showlab/magvitv2`'s weights load unchanged.

Official facts kept here: GroupNorm(32) and swish everywhere; downsampling pads right and bottom by one before a
stride-2 conv; `quant_conv` is the encoder's last layer and `post_quant_conv` the decoder's first; the quantizer
maps each latent channel to +1 where it is > 0 and to -1 otherwise (an exact 0 gives -1), and a code's bits are
read most-significant first. The quantizer's `embedding` and `power_vals` buffers are part of the state dict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from hermes_bench.errors import HermesBenchError


@dataclass(frozen=True)
class CoderSizes:
    """One side's sizes, named as the official VQGANEncoder / VQGANDecoder arguments (their defaults there)."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4)
    num_res_blocks: tuple[int, ...] = (4, 3, 4, 3, 4)
    attn_resolutions: tuple[int, ...] = (5,)
    in_ch: int = 3
    out_ch: int = 3
    resolution: int = 256
    z_channels: int = 13
    double_z: bool = False  # the encoder's last conv gives 2 * z_channels (the official default: no)
    dropout: float = 0.0  # ResnetBlock dropout: no weights, and off at inference


@dataclass(frozen=True)
class MagvitSizes:
    """The whole tokenizer. The official config.json carries no sizes, so these defaults are the released model's;
    a config.json may give `encoder` and `decoder` (CoderSizes fields) to describe another one."""

    encoder: CoderSizes = field(default_factory=CoderSizes)
    decoder: CoderSizes = field(default_factory=lambda: CoderSizes(ch_mult=(1, 1, 2, 2, 4),
                                                                    num_res_blocks=(4, 4, 3, 4, 3)))

    @classmethod
    def from_config(cls, config: dict) -> MagvitSizes:
        sides = {}
        for side in ("encoder", "decoder"):
            given = {k: tuple(v) if isinstance(v, list) else v for k, v in config.get(side, {}).items()}
            unknown = sorted(set(given) - set(vars(CoderSizes())))
            if unknown:
                raise HermesBenchError(f"MAGVIT-v2 config.json: {side} has unknown sizes {', '.join(unknown)}; it "
                                       f"takes the official VQGAN arguments: {', '.join(vars(CoderSizes()))}")
            sides[side] = CoderSizes(**{**vars(getattr(cls(), side)), **given})
        return cls(**sides)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.encoder.ch_mult) - 1)


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(swish(self.norm2(self.conv1(swish(self.norm1(x))))))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, height, width = q.shape
        weights = torch.bmm(q.reshape(b, c, -1).permute(0, 2, 1), k.reshape(b, c, -1)) * (int(c) ** -0.5)
        weights = weights.softmax(dim=2)
        out = torch.bmm(v.reshape(b, c, -1), weights.permute(0, 2, 1)).reshape(b, c, height, width)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _level(blocks: list[nn.Module], attns: list[nn.Module]) -> nn.Module:
    level = nn.Module()
    level.block, level.attn = nn.ModuleList(blocks), nn.ModuleList(attns)
    return level


def _middle(channels: int) -> nn.Module:
    mid = nn.Module()
    mid.block_1, mid.attn_1, mid.block_2 = ResnetBlock(channels, channels), AttnBlock(channels), ResnetBlock(
        channels, channels)
    return mid


def _run_level(level: nn.Module, h: torch.Tensor) -> torch.Tensor:
    for i, block in enumerate(level.block):
        h = block(h)
        if len(level.attn) > 0:  # the official code pairs the i-th attention with the i-th block
            h = level.attn[i](h)
    return h


class Encoder(nn.Module):
    def __init__(self, s: CoderSizes) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(s.in_ch, s.ch, 3, padding=1)
        in_mult, res, self.down = (1, *s.ch_mult), s.resolution, nn.ModuleList()
        for i, mult in enumerate(s.ch_mult):
            block_in, blocks, attns = s.ch * in_mult[i], [], []
            for _ in range(s.num_res_blocks[i]):
                blocks.append(ResnetBlock(block_in, s.ch * mult))
                block_in = s.ch * mult
                if res in s.attn_resolutions:
                    attns.append(AttnBlock(block_in))
            level = _level(blocks, attns)
            if i != len(s.ch_mult) - 1:
                level.downsample = Downsample(block_in)
                res //= 2
            self.down.append(level)
        self.mid = _middle(block_in)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, 2 * s.z_channels if s.double_z else s.z_channels, 3, padding=1)
        self.quant_conv = nn.Conv2d(s.z_channels, s.z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            h = _run_level(level, h)
            if i != len(self.down) - 1:
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.quant_conv(self.conv_out(swish(self.norm_out(h))))


class Decoder(nn.Module):
    def __init__(self, s: CoderSizes) -> None:
        super().__init__()
        block_in = s.ch * s.ch_mult[-1]
        res = s.resolution // 2 ** (len(s.ch_mult) - 1)
        self.post_quant_conv = nn.Conv2d(s.z_channels, s.z_channels, 1)
        self.conv_in = nn.Conv2d(s.z_channels, block_in, 3, padding=1)
        self.mid = _middle(block_in)
        levels = []
        for i in reversed(range(len(s.ch_mult))):
            blocks, attns = [], []
            for _ in range(s.num_res_blocks[i]):
                blocks.append(ResnetBlock(block_in, s.ch * s.ch_mult[i]))
                block_in = s.ch * s.ch_mult[i]
                if res in s.attn_resolutions:
                    attns.append(AttnBlock(block_in))
            level = _level(blocks, attns)
            if i != 0:
                level.upsample = Upsample(block_in)
                res *= 2
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, s.out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(self.post_quant_conv(z))
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for i in reversed(range(len(self.up))):
            h = _run_level(self.up[i], h)
            if i != 0:
                h = self.up[i].upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class LookupFreeQuantizer(nn.Module):
    """Codes are the latent's sign bits, most significant first; `embedding` holds each code's +-1 vector."""

    def __init__(self, codebook_dim: int) -> None:
        super().__init__()
        bits = torch.arange(codebook_dim - 1, -1, -1, dtype=torch.long)
        self.register_buffer("embedding", ((torch.arange(2 ** codebook_dim)[:, None] >> bits) & 1).float() * 2 - 1)
        self.register_buffer("power_vals", 2 ** bits)

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) latents -> (B, H*W) codes."""
        return (self.power_vals.reshape(1, -1, 1, 1) * (z > 0).float()).sum(1).long().flatten(1)

    def vectors(self, codes: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.embedding[codes.reshape(-1)].view(codes.shape[0], height, width, -1).permute(0, 3, 1, 2)


class MagvitV2(nn.Module):
    """`encode(pixels in [-1, 1]) -> codes` and `decode(codes) -> raw pixels` (not clamped)."""

    def __init__(self, sizes: MagvitSizes | None = None) -> None:
        super().__init__()
        self.sizes = sizes or MagvitSizes()
        self.encoder = Encoder(self.sizes.encoder)
        self.decoder = Decoder(self.sizes.decoder)
        self.quantize = LookupFreeQuantizer(self.sizes.encoder.z_channels)

    @property
    def codebook_size(self) -> int:
        return 2 ** self.sizes.encoder.z_channels

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.quantize.codes(self.encoder(pixels))

    def decode(self, codes: torch.Tensor, shape: tuple[int, int] | None = None) -> torch.Tensor:
        side = int(math.sqrt(codes.shape[-1]))
        height, width = shape or (side, side)
        return self.decoder(self.quantize.vectors(codes, height, width).to(self.decoder.conv_in.weight.dtype))
