"""PatchGAN discriminators: pix2pix's 70x70 PatchGAN and the multi-scale discriminator of pix2pixHD / GauGAN.

`PatchDiscriminator` matches `NLayerDiscriminator` of the official pix2pix/CycleGAN implementation
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py; Isola et al. 2017): Conv 4x4 stride 2 -> LeakyReLU(0.2),
then n_layers-1 blocks of Conv 4x4 stride 2 -> norm -> LeakyReLU(0.2) doubling the width up to 8 * base, one such
block with stride 1, and a stride-1 Conv 4x4 to one channel. With n_layers=3 each output logit sees a 70x70 patch
of the input, and a 256x256 input gives a 30x30 map of logits. Same parameter counts as the official code: 2,764,737
for the CycleGAN discriminator (3 input channels, instance norm), 2,768,705 for pix2pix's (6 input channels: input
and output images concatenated, batch norm).

`MultiScaleDiscriminator` matches `MultiscaleDiscriminator` / `NLayerDiscriminator` of the official GauGAN code
(NVlabs/SPADE, models/networks/discriminator.py; Park et al. 2019, after pix2pixHD, Wang et al. 2018): num_D copies
of the PatchGAN above with padding 2, each applied to the input average-pooled (3x3, stride 2, padding excluded)
once more than the previous one, every copy returning its intermediate feature maps for the feature-matching loss.
SPADE's `n_layers_D=4` (its default) is the same stack as `n_layers=3` here: the official SPADE code counts the
stride-1 block among its layers. Its defaults follow SPADE ("spectralinstance": spectral norm on the normalised
convolutions, instance norm). pix2pixHD's is `spectral_norm=False`.

Deviations: the official discriminators end in a sigmoid when asked; these always return logits (use a loss on
logits, which is also what mixed precision needs). The normalised convolutions keep the official pix2pix bias rule
(no bias before batch norm) in both classes; SPADE also drops it before instance norm, a redundant bias, so the
multi-scale discriminator has 128 + 256 + 512 = 896 more parameters per scale than the official GauGAN one. With
norm="none" the convolutions keep their bias (the official code drops it).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from lightning_gans.networks.init import InitType, NormName, conv_bias, init_weights, norm_layer


class PatchDiscriminator(nn.Module):
    """pix2pix PatchGAN: a fully convolutional classifier that returns a map of real/fake logits, one per patch.

    For pix2pix, condition it on the input image by concatenating input and output along the channels
    (in_channels = input channels + output channels); for CycleGAN, give it the image alone.

    Args:
        in_channels: channels of the image (or of the concatenated pair) it judges.
        base_channels: filters of the first layer (the official ndf); later layers have up to 8 times as many.
        n_layers: number of stride-2 convolutions; 3 gives the 70x70 PatchGAN, 1 a 16x16 one, 5 a 286x286 one.
        norm: "batch" (official pix2pix), "instance" (official CycleGAN) or "none".
        padding: zero padding of every 4x4 convolution; 1 in pix2pix (30x30 logits for 256x256), 2 in pix2pixHD and
            SPADE (35x35 logits). It does not change the receptive field.
        spectral_norm: spectral normalisation of the normalised (middle) convolutions, as SPADE's
            "spectral<norm>" option does; the first and last convolutions stay plain, as there.
        init_type: weight initialisation (see `lightning_gans.networks.init.init_weights`); official: "normal".
        init_gain: its gain; official: 0.02.
    """

    def __init__(
        self,
        in_channels: int = 6,
        base_channels: int = 64,
        n_layers: int = 3,
        norm: NormName = "batch",
        padding: int = 1,
        spectral_norm: bool = False,
        init_type: InitType = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        make_norm = norm_layer(norm)
        bias = conv_bias(norm)

        def normalised_block(fan_in: int, fan_out: int, stride: int) -> nn.Sequential:
            conv = nn.Conv2d(fan_in, fan_out, kernel_size=4, stride=stride, padding=padding, bias=bias)
            if spectral_norm:
                conv = apply_spectral_norm(conv)
            return nn.Sequential(conv, make_norm(fan_out), nn.LeakyReLU(0.2))

        widths = [base_channels * min(2**k, 8) for k in range(n_layers + 1)]
        first = nn.Conv2d(in_channels, widths[0], kernel_size=4, stride=2, padding=padding)
        blocks: list[nn.Module] = [nn.Sequential(first, nn.LeakyReLU(0.2))]
        blocks += [normalised_block(widths[k - 1], widths[k], stride=2) for k in range(1, n_layers)]
        blocks.append(normalised_block(widths[n_layers - 1], widths[n_layers], stride=1))
        blocks.append(nn.Sequential(nn.Conv2d(widths[n_layers], 1, kernel_size=4, stride=1, padding=padding)))
        # One Sequential per feature map that the feature-matching loss compares.
        self.blocks = nn.ModuleList(blocks)
        init_weights(self, init_type, init_gain)

    def features(self, x: Tensor) -> list[Tensor]:
        """The output of every block, the last one being the (N, 1, H', W') logits."""
        outputs: list[Tensor] = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> (N, 1, H', W') real/fake logits (30x30 for 256x256 with the defaults)."""
        for block in self.blocks:
            x = block(x)
        return x


def receptive_field(module: nn.Module) -> int:
    """Side of the input patch that one output unit of a plain stack of convolutions sees.

    Walks the Conv2d layers of `module` in registration order (which is their order of application in the
    discriminators here) and composes their kernel sizes and strides; square kernels and strides assumed.
    """
    field, jump = 1, 1
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            field += (layer.kernel_size[0] - 1) * jump
            jump *= layer.stride[0]
    return field


class MultiScaleDiscriminator(nn.Module):
    """num_D PatchGANs on successively halved copies of the input (pix2pixHD, GauGAN).

    `forward` returns one list per scale (finest first); each list holds the intermediate feature maps of that
    scale's discriminator followed by its logits (the last element), which is what the GauGAN/pix2pixHD
    discriminator feature-matching loss consumes: `[features[-1] for features in D(x)]` are the logits.

    Args:
        in_channels: channels of what it judges (GauGAN: label channels + image channels, plus one for an
            instance-edge map when used).
        base_channels: filters of the first layer of each discriminator (the official ndf).
        n_layers: stride-2 convolutions per discriminator; 3 is SPADE's n_layers_D=4 and pix2pixHD's n_layers_D=3.
        norm: "instance" (official), "batch" or "none".
        num_D: number of scales.
        spectral_norm: spectral norm on the normalised convolutions (SPADE: True, pix2pixHD: False).
        padding: padding of every 4x4 convolution (official: 2).
        init_type: weight initialisation (see `lightning_gans.networks.init.init_weights`); SPADE: "xavier".
        init_gain: its gain; SPADE: 0.02.
    """

    def __init__(
        self,
        in_channels: int = 6,
        base_channels: int = 64,
        n_layers: int = 3,
        norm: NormName = "instance",
        num_D: int = 2,
        spectral_norm: bool = True,
        padding: int = 2,
        init_type: InitType = "xavier",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if num_D < 1:
            raise ValueError(f"num_D must be at least 1, got {num_D}")
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(
                in_channels=in_channels,
                base_channels=base_channels,
                n_layers=n_layers,
                norm=norm,
                padding=padding,
                spectral_norm=spectral_norm,
                init_type=init_type,
                init_gain=init_gain,
            )
            for _ in range(num_D)
        )

    @staticmethod
    def downsample(x: Tensor) -> Tensor:
        """Halve the resolution for the next scale (3x3 average pool, stride 2, padding not counted)."""
        return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        """(N, in_channels, H, W) -> per scale, [feature maps ..., logits]."""
        outputs: list[list[Tensor]] = []
        for index, discriminator in enumerate(self.discriminators):
            if index > 0:
                x = self.downsample(x)
            outputs.append(discriminator.features(x))
        return outputs
