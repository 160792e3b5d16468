"""SRResNet: the generator of SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", arXiv:1609.04802, Figure 4), with options towards BasicSR's ``MSRResNet``.

The paper's network: a 9x9 convolution with 64 filters and PReLU; B = 16 residual blocks, each conv 3x3 -> BN ->
PReLU -> conv 3x3 -> BN plus the block's input; a 3x3 convolution and BN whose output is added to the first
features (the long skip); log2(scale) sub-pixel stages (conv 3x3 to 256 channels -> PixelShuffle(2) -> PReLU); a
final 9x9 convolution to the image channels. No output activation: the network predicts pixel values directly.

BasicSR's ``MSRResNet`` (XPixelGroup/BasicSR, ``basicsr/archs/srresnet_arch.py``) is the "modified" version the
SR literature trains as its PSNR baseline: no batch norm, 3x3 head and tail, and the bilinearly upsampled input added
to the output, so that the network learns only the residual over interpolation. ``batch_norm=False``,
``kernel_size=3`` and ``skip="bilinear"`` take those three changes; the network keeps the paper's PReLU activations
and long skip (MSRResNet has LeakyReLU/ReLU, no long skip and one more 3x3 convolution before its last), so it is
close to MSRResNet, not the same. The residual blocks' weights are Kaiming-normal scaled by 0.1 (BasicSR's
``default_init_weights``; ``init_scale``), which keeps every residual branch small at the start; the paper does not
give an initialisation.

Scale 3 uses one x3 sub-pixel stage (conv to 9 x 64 channels, PixelShuffle(3)), as MSRResNet does.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

SCALES: tuple[int, ...] = (2, 3, 4)
SKIPS: tuple[str, ...] = ("none", "bilinear", "bicubic")


def check_scale(scale: int, owner: str = "the network") -> int:
    """``scale`` if it is 2, 3 or 4, else a ValueError naming the valid scales."""
    if scale not in SCALES:
        raise ValueError(f"{owner} upscales by 2, 3 or 4 (scale), got {scale}")
    return int(scale)


def upsample_stages(scale: int) -> list[int]:
    """The factors of the upsampling stages: [2, 2] for x4, [3] for x3, [2] for x2."""
    return [3] if check_scale(scale) == 3 else [2] * int(math.log2(scale))


def interpolate(x: Tensor, scale: int, mode: str) -> Tensor:
    """``x`` enlarged ``scale`` times: ``"bicubic"`` is Keys' cubic with a = -0.5 (MATLAB's ``imresize`` and PIL's
    kernel; torch's antialiased kernel, exact for upscaling), ``"bilinear"`` and ``"nearest"`` torch's own."""
    if mode == "nearest":
        return F.interpolate(x, scale_factor=scale, mode="nearest")
    if mode == "bilinear":
        return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    if mode == "bicubic":
        return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False, antialias=True)
    raise ValueError(f"unknown interpolation {mode!r}; valid: nearest, bilinear, bicubic")


def scaled_kaiming_(module: nn.Module, scale: float) -> None:
    """BasicSR's ``default_init_weights``: Kaiming-normal (fan-in) weights of every convolution and linear layer,
    multiplied by ``scale``; zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            m.weight.data.mul_(scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SRResidualBlock(nn.Module):
    """conv 3x3 -> BN -> PReLU -> conv 3x3 -> BN, plus the input (SRGAN); without BN when ``batch_norm`` is off.

    Args:
        channels: feature channels.
        batch_norm: batch norm after each convolution (the paper's; off in MSRResNet/EDSR).
        init_scale: Kaiming-normal weights scaled by this (BasicSR's 0.1); 1 keeps them unscaled.
    """

    def __init__(self, channels: int, batch_norm: bool = True, init_scale: float = 0.1) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(channels)) if batch_norm else nn.Identity
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=not batch_norm),
            norm(),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=not batch_norm),
            norm(),
        )
        scaled_kaiming_(self.body, init_scale)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNetGenerator(nn.Module):
    """SRResNet (SRGAN's generator): LR image [N, C, h, w] -> SR image [N, C, scale*h, scale*w], fully convolutional.

    Args:
        scale: upscaling factor, 2, 3 or 4.
        in_channels: channels of the LR image.
        out_channels: channels of the SR image.
        channels: feature channels (64).
        num_blocks: residual blocks (16).
        batch_norm: batch norm in the residual blocks and after the trunk (the paper's; MSRResNet has none).
        kernel_size: of the first and last convolutions (9 in the paper, 3 in MSRResNet).
        skip: "none" (the paper) or "bilinear" (MSRResNet) / "bicubic": add the interpolated input to the output.
        init_scale: the residual blocks' Kaiming-normal weights are scaled by this (BasicSR's 0.1).
    """

    def __init__(
        self,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 64,
        num_blocks: int = 16,
        batch_norm: bool = True,
        kernel_size: int = 9,
        skip: str = "none",
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, "SRResNetGenerator")
        if skip not in SKIPS:
            raise ValueError(f"unknown skip {skip!r}; valid: {', '.join(SKIPS)}")
        if num_blocks < 1 or channels < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"num_blocks and channels must be positive and kernel_size odd, got {num_blocks}, {channels}, "
                f"{kernel_size}"
            )
        self.skip = skip
        pad = kernel_size // 2
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, kernel_size, 1, pad), nn.PReLU(channels))
        self.body = nn.Sequential(*(SRResidualBlock(channels, batch_norm, init_scale) for _ in range(num_blocks)))
        self.body_tail = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=not batch_norm),
            nn.BatchNorm2d(channels) if batch_norm else nn.Identity(),
        )
        stages: list[nn.Module] = []
        for factor in upsample_stages(self.scale):
            stages += [nn.Conv2d(channels, channels * factor**2, 3, 1, 1), nn.PixelShuffle(factor), nn.PReLU(channels)]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(channels, out_channels, kernel_size, 1, pad)

    def forward(self, x: Tensor) -> Tensor:
        features = self.head(x)
        out = self.tail(self.upsample(self.body_tail(self.body(features)) + features))
        if self.skip != "none":
            out = out + interpolate(x, self.scale, self.skip)
        return out
