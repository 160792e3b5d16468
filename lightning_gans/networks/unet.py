"""U-Net generator of pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks").

Matches `UnetGenerator` / `UnetSkipConnectionBlock` of the official implementation
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py), layer for layer and parameter for parameter:
`UNetGenerator(num_downs=8)` is the official "unet_256" (54,414,016 parameters with batch norm and 64 filters),
`num_downs=7` is "unet_128".

Encoder level k (k = 0 outermost ... num_downs-1 innermost) is LeakyReLU(0.2) -> Conv 4x4 stride 2 -> norm, with
width min(base * 2^k, base * 8); the outermost level has neither activation nor norm, the innermost no norm (its
output is 1x1 for a 2^num_downs input). Decoder level k is ReLU -> ConvTranspose 4x4 stride 2 -> norm on the
concatenation of the level's skip (the encoder output one level up) and the level below, with Dropout(0.5) at the
levels 4 .. num_downs-2 (the three innermost non-bottleneck decoder blocks of unet_256, the paper's "dropout in
the first three decoder layers"); the outermost decoder ends in tanh.

Written as an explicit encoder list and decoder list instead of the official recursive block, which is easier to
read and gives the same computation (the official in-place LeakyReLU also rewrites the skip tensor, but the ReLU that
opens every decoder block makes that invisible). Deviation: with norm="none" the convolutions keep their bias (the
official code drops it, leaving those layers without an offset).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_gans.networks.init import InitType, NormName, conv_bias, init_weights, norm_layer

# The first level at which pix2pix puts dropout (levels 0..3 widen the features; 4.. stay at 8 * base).
_FIRST_DROPOUT_LEVEL = 4


class UNetGenerator(nn.Module):
    """pix2pix U-Net: a conv encoder to a 1x1 bottleneck and a mirrored decoder with skip connections, tanh output.

    Args:
        in_channels: channels of the input image (the condition).
        out_channels: channels of the generated image.
        num_downs: number of stride-2 downsamplings; inputs must have height and width divisible by 2**num_downs
            (8 for 256x256, the official unet_256; 7 for 128x128, unet_128).
        base_channels: filters of the outermost layer (the official ngf); inner layers have up to 8 times as many.
        norm: "batch" (official pix2pix), "instance" or "none".
        dropout: Dropout(0.5) in the inner decoder blocks, as in pix2pix (its only source of noise: it stays on at
            test time in the paper, which is the caller's choice of train/eval mode here).
        init_type: weight initialisation (see `lightning_gans.networks.init.init_weights`); official: "normal".
        init_gain: its gain; official: 0.02.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        base_channels: int = 64,
        norm: NormName = "batch",
        dropout: bool = True,
        init_type: InitType = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be at least 2, got {num_downs}")
        self.num_downs = num_downs
        make_norm = norm_layer(norm)
        bias = conv_bias(norm)
        widths = [min(base_channels * 2**k, base_channels * 8) for k in range(num_downs)]
        innermost = num_downs - 1

        self.down = nn.ModuleList()
        for k in range(num_downs):
            fan_in = in_channels if k == 0 else widths[k - 1]
            layers: list[nn.Module] = []
            if k > 0:
                layers.append(nn.LeakyReLU(0.2))
            layers.append(nn.Conv2d(fan_in, widths[k], kernel_size=4, stride=2, padding=1, bias=bias))
            if 0 < k < innermost:
                layers.append(make_norm(widths[k]))
            self.down.append(nn.Sequential(*layers))

        # self.up[k] mirrors self.down[k]; forward runs them from the innermost level outwards.
        self.up = nn.ModuleList()
        for k in range(num_downs):
            fan_in = widths[k] if k == innermost else 2 * widths[k]
            if k == 0:
                layers = [
                    nn.ReLU(),
                    nn.ConvTranspose2d(fan_in, out_channels, kernel_size=4, stride=2, padding=1),
                    nn.Tanh(),
                ]
            else:
                layers = [
                    nn.ReLU(),
                    nn.ConvTranspose2d(fan_in, widths[k - 1], kernel_size=4, stride=2, padding=1, bias=bias),
                    make_norm(widths[k - 1]),
                ]
                if dropout and _FIRST_DROPOUT_LEVEL <= k < innermost:
                    layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))

        init_weights(self, init_type, init_gain)

    @property
    def size_multiple(self) -> int:
        """Height and width of the input must be multiples of this (2**num_downs)."""
        return 2**self.num_downs

    def check_input_size(self, height: int, width: int) -> None:
        """Raise a ValueError that names the size and the fix when the U-Net cannot map (height, width) to itself."""
        multiple = self.size_multiple
        if height % multiple or width % multiple:
            raise ValueError(
                f"UNetGenerator(num_downs={self.num_downs}) needs height and width divisible by "
                f"2**{self.num_downs} = {multiple}, got {height}x{width}: resize or crop the images to a multiple of "
                f"{multiple} (e.g. {multiple}x{multiple}), or lower num_downs (num_downs=k accepts multiples of 2**k)."
            )

    def forward(self, x: Tensor) -> Tensor:
        """Map a batch (N, in_channels, H, W) to (N, out_channels, H, W) in [-1, 1]."""
        self.check_input_size(x.shape[-2], x.shape[-1])
        skips: list[Tensor] = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        h = self.up[-1](skips.pop())
        for up in reversed(self.up[:-1]):
            h = up(torch.cat([skips.pop(), h], dim=1))
        return h
