"""The VGG-style discriminator of SRGAN and ESRGAN, for any HR size from 16 up (64 and more in practice).

SRGAN (Ledig et al. 2017, Figure 4): eight 3x3 convolutions with 64, 64, 128, 128, 256, 256, 512, 512 filters,
stride 2 whenever the width stays the same (every second one), LeakyReLU(0.2), batch norm after all but the first;
then a dense layer of 1024 units, LeakyReLU(0.2), a dense layer to one output (and a sigmoid, which lives in the loss
here). At the paper's 96x96 crops the last feature map is 6x6.

BasicSR's ``VGGStyleDiscriminator`` (XPixelGroup/BasicSR, ``basicsr/archs/discriminator_arch.py``), which SRGAN and
ESRGAN are trained with there: the same pairs of (3x3 stride 1, 4x4 stride 2) convolutions, one pair per halving,
five pairs for 128x128 inputs (six for 256; channels 64, 128, 256, 512, 512, 512), batch norm after all but the
first convolution, a dense layer of 100 units; it accepts only 128 or 256 inputs.

Here the number of pairs follows the image size: ``floor(log2(min(H, W))) - 2`` halvings (4 at 64x64, 5 at 128, 6 at
256: BasicSR's networks at its two sizes), channels doubling from ``base_channels`` up to 8 times it, and an adaptive
average pooling to 4x4 before the dense layers, which is the identity at power-of-two sizes (96x96 inputs give 6x6
maps, pooled to 4x4). ``down_kernel`` 3 with ``dense_features`` 1024 is SRGAN's layout, 4 with 100 BasicSR's.
``forward(x, return_features=True)`` also returns the output of every pair (for discriminator feature matching).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn


class VGGStyleDiscriminator(nn.Module):
    """VGG-style real/fake classifier of HR images; returns one logit per image, [N, 1].

    Args:
        in_channels: channels of the images.
        image_size: (H, W) or the side of the (square) HR images it is built for; sets the number of halvings.
        base_channels: filters of the first pair (64).
        down_kernel: kernel of the stride-2 convolutions: 3 (SRGAN) or 4 (BasicSR).
        dense_features: units of the hidden dense layer: 1024 (SRGAN) or 100 (BasicSR).
        batch_norm: batch norm after every convolution but the first (both references).
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int | Sequence[int] = 128,
        base_channels: int = 64,
        down_kernel: int = 4,
        dense_features: int = 100,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        sides = (image_size, image_size) if isinstance(image_size, int) else tuple(int(s) for s in image_size)
        if min(sides) < 16:
            raise ValueError(f"VGGStyleDiscriminator needs images of at least 16x16, got {sides[0]}x{sides[1]}")
        if down_kernel not in (3, 4):
            raise ValueError(f"down_kernel must be 3 (SRGAN) or 4 (BasicSR), got {down_kernel}")
        self.num_halvings = math.floor(math.log2(min(sides))) - 2
        stages: list[nn.Module] = []
        in_ch = in_channels
        for i in range(self.num_halvings):
            out_ch = base_channels * 2 ** min(i, 3)
            first = i == 0
            layers = [nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=first or not batch_norm)]
            if batch_norm and not first:
                layers.append(nn.BatchNorm2d(out_ch))
            layers += [nn.LeakyReLU(0.2), nn.Conv2d(out_ch, out_ch, down_kernel, 2, 1, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2))
            stages.append(nn.Sequential(*layers))
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(in_ch * 16, dense_features), nn.LeakyReLU(0.2), nn.Linear(dense_features, 1)
        )

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        logits = self.classifier(self.pool(x))
        return (logits, features) if return_features else logits
