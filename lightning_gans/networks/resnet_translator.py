"""ResnetTranslator: the ResNet image-to-image generator of CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks"), after Johnson et al. 2016's image-transformation network.
(Named apart from :class:`~lightning_gans.networks.resnet_gan.ResNetGenerator`, SNGAN's noise-to-image generator.)

Matches `ResnetGenerator` / `ResnetBlock` of the official implementation
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py), parameter for parameter: in the paper's notation
c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3 and tanh, where c7s1-k is a reflection-padded 7x7
convolution -> norm -> ReLU, dk a 3x3 stride-2 convolution -> norm -> ReLU, Rk a residual block of two reflection-
padded 3x3 convolutions (norm, ReLU between, norm after, optional Dropout(0.5) between), uk a 3x3 stride-1/2
transposed convolution -> norm -> ReLU. The paper uses 9 blocks for 256x256 images ("resnet_9blocks",
11,378,179 parameters with instance norm and 64 filters) and 6 for 128x128 ("resnet_6blocks", 7,837,699).

Deviation: with norm="none" the convolutions keep their bias (the official code drops it, leaving those layers
without an offset).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import Tensor, nn

from lightning_gans.networks.init import InitType, NormName, conv_bias, init_weights, norm_layer

PaddingName = Literal["reflect", "replicate", "zero"]

_DOWNSAMPLINGS = 2


def _padded_conv(fan_in: int, fan_out: int, kernel_size: int, padding: str, bias: bool) -> list[nn.Module]:
    """A stride-1 'same' convolution whose border is padded by reflection, replication or zeros."""
    amount = kernel_size // 2
    if padding == "reflect":
        return [nn.ReflectionPad2d(amount), nn.Conv2d(fan_in, fan_out, kernel_size, bias=bias)]
    if padding == "replicate":
        return [nn.ReplicationPad2d(amount), nn.Conv2d(fan_in, fan_out, kernel_size, bias=bias)]
    if padding == "zero":
        return [nn.Conv2d(fan_in, fan_out, kernel_size, padding=amount, bias=bias)]
    raise ValueError(f"unknown padding {padding!r}: choose reflect, replicate or zero")


class ResnetBlock(nn.Module):
    """x + (pad, conv3x3, norm, ReLU, [dropout], pad, conv3x3, norm)(x), at constant width.

    Args:
        channels: width of the block.
        make_norm: factory of the normalisation layers (see `lightning_gans.networks.init.norm_layer`).
        bias: whether the convolutions have a bias.
        dropout: Dropout(0.5) between the two convolutions.
        padding: "reflect", "replicate" or "zero".
    """

    def __init__(
        self,
        channels: int,
        make_norm: Callable[[int], nn.Module],
        bias: bool,
        dropout: bool = False,
        padding: PaddingName = "reflect",
    ) -> None:
        super().__init__()
        layers = [*_padded_conv(channels, channels, 3, padding, bias), make_norm(channels), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [*_padded_conv(channels, channels, 3, padding, bias), make_norm(channels)]
        self.residual = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.residual(x)


class ResnetTranslator(nn.Module):
    """CycleGAN generator: two stride-2 downsamplings, n_blocks residual blocks, two upsamplings, tanh output.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the generated image.
        base_channels: filters of the first layer (the official ngf); the residual blocks have 4 times as many.
        n_blocks: residual blocks (9 for 256x256, 6 for 128x128 in the paper).
        norm: "instance" (official CycleGAN), "batch" or "none".
        dropout: Dropout(0.5) inside the residual blocks (official default: off).
        padding: border handling of the residual blocks' convolutions: "reflect" (official), "replicate" or "zero".
            The 7x7 convolutions at both ends are always reflection-padded, as in the official code.
        init_type: weight initialisation (see `lightning_gans.networks.init.init_weights`); official: "normal".
        init_gain: its gain; official: 0.02.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        n_blocks: int = 9,
        norm: NormName = "instance",
        dropout: bool = False,
        padding: PaddingName = "reflect",
        init_type: InitType = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be non-negative, got {n_blocks}")
        _padded_conv(1, 1, 3, padding, False)  # validates `padding` before anything is built
        make_norm = norm_layer(norm)
        bias = conv_bias(norm)

        layers: list[nn.Module] = [
            *_padded_conv(in_channels, base_channels, 7, "reflect", bias),
            make_norm(base_channels),
            nn.ReLU(),
        ]
        width = base_channels
        for _ in range(_DOWNSAMPLINGS):
            layers += [
                nn.Conv2d(width, 2 * width, kernel_size=3, stride=2, padding=1, bias=bias),
                make_norm(2 * width),
                nn.ReLU(),
            ]
            width *= 2
        layers += [ResnetBlock(width, make_norm, bias, dropout, padding) for _ in range(n_blocks)]
        for _ in range(_DOWNSAMPLINGS):
            layers += [
                nn.ConvTranspose2d(width, width // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(width // 2),
                nn.ReLU(),
            ]
            width //= 2
        layers += [*_padded_conv(width, out_channels, 7, "reflect", bias=True), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self, init_type, init_gain)

    size_multiple = 2**_DOWNSAMPLINGS
    """Height and width of the input must be multiples of this for the output to have the input's size."""

    def check_input_size(self, height: int, width: int) -> None:
        """Raise a ValueError naming the size and the fix when the output would not have the input's size."""
        multiple = self.size_multiple
        if height % multiple or width % multiple:
            raise ValueError(
                f"ResnetTranslator needs height and width divisible by {multiple} (it downsamples twice), got "
                f"{height}x{width}: resize or crop the images to a multiple of {multiple}, e.g. 256x256 or 128x128."
            )

    def forward(self, x: Tensor) -> Tensor:
        """Map (N, in_channels, H, W) to (N, out_channels, H, W) in [-1, 1]."""
        self.check_input_size(x.shape[-2], x.shape[-1])
        return self.model(x)
