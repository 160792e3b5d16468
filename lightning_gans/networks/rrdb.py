"""RRDBNet: the generator of ESRGAN (Wang et al. 2018, "ESRGAN: Enhanced Super-Resolution Generative Adversarial
Networks", arXiv:1809.00219, Figures 3-4), checked against BasicSR's ``RRDBNet`` (XPixelGroup/BasicSR,
``basicsr/archs/rrdbnet_arch.py``).

No batch norm anywhere. A residual dense block (RDB) has five 3x3 convolutions, each seeing the block input and every
earlier output concatenated (dense connections, ``growth`` = 32 new channels per convolution), LeakyReLU(0.2) after
the first four; its output is scaled by 0.2 (residual scaling) and added to its input. An RRDB is three RDBs, again
scaled by 0.2 and added to the RRDB's input. The network: conv 3x3 -> 23 RRDBs -> conv 3x3, added to the first
features (the long skip); then per x2 nearest-neighbour upsampling -> conv 3x3 -> LeakyReLU(0.2); then conv 3x3 ->
LeakyReLU -> conv 3x3 to the image. The RDB convolutions are Kaiming-normal scaled by 0.1 ("smaller
initialisation", ESRGAN section 3.3; BasicSR's ``default_init_weights(..., 0.1)``); the other convolutions keep
PyTorch's default initialisation, as in BasicSR.

Deviation: BasicSR runs x2 and x1 models through its x4 trunk by pixel-unshuffling the input; here the upsampling
stages follow the scale instead (x2: one nearest x2 stage, x3: one nearest x3 stage, x4: two x2 stages), so the
trunk always works at the LR size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gans.networks.srresnet import check_scale, scaled_kaiming_, upsample_stages


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convolutions; output ``x + res_scale * conv5(...)``.

    Args:
        channels: channels of the block's input and output (64).
        growth: channels each of the first four convolutions adds (32).
        res_scale: residual scaling (0.2).
        init_scale: Kaiming-normal weights scaled by this (0.1).
    """

    def __init__(self, channels: int = 64, growth: int = 32, res_scale: float = 0.2, init_scale: float = 0.1) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * growth, growth if i < 4 else channels, 3, 1, 1) for i in range(5)
        )
        self.act = nn.LeakyReLU(0.2)
        scaled_kaiming_(self.convs, init_scale)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for conv in self.convs[:4]:
            features.append(self.act(conv(torch.cat(features, 1))))
        return x + self.res_scale * self.convs[4](torch.cat(features, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs, output ``x + res_scale * rdb3(rdb2(rdb1(x)))``."""

    def __init__(self, channels: int = 64, growth: int = 32, res_scale: float = 0.2, init_scale: float = 0.1) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.blocks = nn.Sequential(*(ResidualDenseBlock(channels, growth, res_scale, init_scale) for _ in range(3)))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.blocks(x)


class RRDBNet(nn.Module):
    """ESRGAN's generator: LR image [N, C, h, w] -> SR image [N, C, scale*h, scale*w], fully convolutional.

    Args:
        scale: upscaling factor, 2, 3 or 4.
        in_channels: channels of the LR image.
        out_channels: channels of the SR image.
        channels: feature channels (64).
        num_blocks: RRDBs in the trunk (23).
        growth: growth channels of the dense blocks (32).
        res_scale: residual scaling of the RDBs and RRDBs (0.2).
        init_scale: the dense blocks' Kaiming-normal weights are scaled by this (0.1).
    """

    def __init__(
        self,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 64,
        num_blocks: int = 23,
        growth: int = 32,
        res_scale: float = 0.2,
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, "RRDBNet")
        if num_blocks < 1 or channels < 1 or growth < 1:
            raise ValueError(f"num_blocks, channels, growth must be positive, got {num_blocks}, {channels}, {growth}")
        self.stages = upsample_stages(self.scale)
        self.head = nn.Conv2d(in_channels, channels, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(channels, growth, res_scale, init_scale) for _ in range(num_blocks)))
        self.body_tail = nn.Conv2d(channels, channels, 3, 1, 1)
        self.upconvs = nn.ModuleList(nn.Conv2d(channels, channels, 3, 1, 1) for _ in self.stages)
        self.hr_conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.tail = nn.Conv2d(channels, out_channels, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        features = self.head(x)
        features = features + self.body_tail(self.body(features))
        for factor, conv in zip(self.stages, self.upconvs):
            features = self.act(conv(F.interpolate(features, scale_factor=factor, mode="nearest")))
        return self.tail(self.act(self.hr_conv(features)))
