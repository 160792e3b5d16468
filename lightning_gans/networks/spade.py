"""SPADE normalisation and the GauGAN generator (Park et al. 2019, "Semantic Image Synthesis with Spatially-Adaptive
Normalization").

Matches the official implementation (NVlabs/SPADE): `SPADE` is models/networks/normalization.py's SPADE,
`SPADEResBlock` is architecture.py's SPADEResnetBlock and `SPADEGenerator` is generator.py's SPADEGenerator (without
its VAE mode), with the official defaults (norm_G "spectralspadesyncbatch3x3": spectral
norm on the residual blocks' convolutions and a 3x3 SPADE over parameter-free batch norm with 128 hidden channels;
Xavier init with gain 0.02).

- SPADE: out = norm(x) * (1 + gamma(m)) + beta(m), where norm has no parameters and gamma, beta are 3x3
  convolutions of a shared conv+ReLU embedding of the segmentation map m, resized (nearest) to x's size.
- SPADEResBlock: SPADE -> LeakyReLU(0.2) -> conv3x3, twice, with the middle width min(fin, fout); the shortcut is
  the identity, or SPADE -> conv1x1 (no bias) when fin != fout.
- SPADEGenerator: a 16*base-channel tensor at image_size / 2**num_up_layers, made by a 3x3 convolution of the
  segmentation map downsampled to that size, then SPADE residual blocks
  16, 16, 16 (middle), 8, 4, 2, 1 * base with nearest-neighbour x2 upsamplings between them, LeakyReLU, conv3x3,
  tanh.

Deviations:
- The paper applies spectral norm to all layers of the generator; the official code (followed here) applies it
  to the residual blocks' convolutions only, not to the first layer, the SPADE convolutions or the last layer.
- Parameter-free "batch" is the default instead of SyncBatchNorm: on one device the two are the same, and under DDP
  `Trainer(sync_batchnorm=True)` converts the BatchNorm layers to SyncBatchNorm, giving the official behaviour.
  "syncbatch" is also accepted.
- The official generator always makes 3 channels; `out_channels` makes it configurable.
- Size errors: where the official code silently floors image_size / 2**num_up_layers, a size the generator
  cannot make exactly raises a ValueError that names it and the sizes it can make.
- No VAE mode (the official `use_vae`, a style encoder and a linear layer of z instead of the downsampled map): the
  GauGAN family here is the paper's deterministic, label-map-only model.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from lightning_gans.networks.init import InitType, init_weights

ParamFreeNorm = Literal["batch", "instance", "syncbatch"]
UpsamplingLayers = Literal["normal", "more", "most"]

# Number of x2 upsamplings between the initial tensor and the image for each official option.
_NUM_UP_LAYERS = {"normal": 5, "more": 6, "most": 7}
# Width of the first SPADE residual blocks, in multiples of base_channels.
_TOP_WIDTH = 16


def _param_free_norm(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if name == "syncbatch":
        return nn.SyncBatchNorm(channels, affine=False)
    raise ValueError(f"unknown param_free_norm {name!r}: choose batch, instance or syncbatch")


class SPADE(nn.Module):
    """Spatially-adaptive denormalisation: normalise x without parameters, then scale and shift it per pixel with
    gamma and beta predicted from the segmentation map.

    Args:
        norm_nc: channels of the normalised activations x (and of gamma and beta).
        label_nc: channels of the segmentation map (one-hot labels, plus an instance-edge map if used).
        hidden: channels of the shared embedding of the segmentation map (official: 128, hard-coded there).
        kernel: kernel size of the embedding, gamma and beta convolutions (official: 3).
        param_free_norm: "batch" (default; see the module docstring for SyncBatchNorm), "instance" or "syncbatch".
    """

    def __init__(
        self,
        norm_nc: int,
        label_nc: int,
        hidden: int = 128,
        kernel: int = 3,
        param_free_norm: ParamFreeNorm = "batch",
    ) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd to keep the map's size, got {kernel}")
        self.norm = _param_free_norm(param_free_norm, norm_nc)
        padding = kernel // 2
        self.shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel, padding=padding), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, norm_nc, kernel, padding=padding)
        self.beta = nn.Conv2d(hidden, norm_nc, kernel, padding=padding)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        """x: (N, norm_nc, H, W); segmap: (N, label_nc, H', W'), resized (nearest) to H x W."""
        normalized = self.norm(x)
        segmap = F.interpolate(segmap, size=x.shape[-2:], mode="nearest")
        embedding = self.shared(segmap)
        return normalized * (1 + self.gamma(embedding)) + self.beta(embedding)


class SPADEResBlock(nn.Module):
    """Residual block with SPADE normalisation, conditioned on the segmentation map.

    Args:
        fin: input channels.
        fout: output channels; a learned 1x1 shortcut (SPADE -> conv, no bias) is used when fin != fout.
        label_nc: channels of the segmentation map.
        spectral_norm: spectral normalisation of the block's convolutions (official: on).
        hidden: hidden channels of its SPADE layers.
        kernel: kernel size of its SPADE layers.
        param_free_norm: parameter-free norm inside its SPADE layers.
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        label_nc: int,
        spectral_norm: bool = True,
        hidden: int = 128,
        kernel: int = 3,
        param_free_norm: ParamFreeNorm = "batch",
    ) -> None:
        super().__init__()
        middle = min(fin, fout)
        self.learned_shortcut = fin != fout

        def conv(fan_in: int, fan_out: int, kernel_size: int, bias: bool = True) -> nn.Module:
            layer = nn.Conv2d(fan_in, fan_out, kernel_size, padding=kernel_size // 2, bias=bias)
            return apply_spectral_norm(layer) if spectral_norm else layer

        def spade(channels: int) -> SPADE:
            return SPADE(channels, label_nc, hidden=hidden, kernel=kernel, param_free_norm=param_free_norm)

        self.norm_0 = spade(fin)
        self.conv_0 = conv(fin, middle, 3)
        self.norm_1 = spade(middle)
        self.conv_1 = conv(middle, fout, 3)
        if self.learned_shortcut:
            self.norm_s = spade(fin)
            self.conv_s = conv(fin, fout, 1, bias=False)

    def shortcut(self, x: Tensor, segmap: Tensor) -> Tensor:
        if self.learned_shortcut:
            return self.conv_s(self.norm_s(x, segmap))
        return x

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        """(N, fin, H, W), segmap (N, label_nc, H', W') -> (N, fout, H, W)."""
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, segmap), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, segmap), 0.2))
        return self.shortcut(x, segmap) + dx


def spade_latent_size(image_size: int, aspect_ratio: float, num_up_layers: int) -> tuple[int, int]:
    """(height, width) of the generator's first tensor, or a ValueError naming the sizes it can make.

    The image is `image_size` wide and `image_size / aspect_ratio` high; both must be 2**num_up_layers times
    a whole number.
    """
    multiple = 2**num_up_layers
    width = image_size // multiple
    height = round(width / aspect_ratio)
    exact = width * multiple == image_size and height * multiple == round(image_size / aspect_ratio)
    if width < 1 or height < 1 or not exact:
        raise ValueError(
            f"SPADEGenerator with {num_up_layers} upsamplings cannot make a {image_size}-wide image with aspect "
            f"ratio {aspect_ratio}: the width and the height (width / aspect_ratio) must be multiples of "
            f"2**{num_up_layers} = {multiple} (e.g. image_size {multiple}, {2 * multiple}, {4 * multiple}); "
            "resize the data or choose num_upsampling_layers 'normal' (5), 'more' (6) or 'most' (7) to fit."
        )
    return height, width


class SPADEGenerator(nn.Module):
    """GauGAN generator: segmentation map -> SPADE residual blocks with x2 upsamplings -> tanh image.

    `forward(segmap)`: the segmentation map is (N, label_nc, H, W), normally at image resolution; the output is
    (N, out_channels, image_size / aspect_ratio, image_size), a deterministic function of the map.

    Args:
        label_nc: channels of the segmentation map (the official semantic_nc: labels, + 1 for "don't care",
            + 1 for an instance-edge map).
        out_channels: channels of the image.
        base_channels: the official ngf; the first blocks have 16 times as many channels.
        image_size: width of the generated image (the official crop_size).
        num_upsampling_layers: "normal" (5 upsamplings), "more" (6: one more between the middle blocks) or
            "most" (7: also a final block at base/2 channels).
        aspect_ratio: width / height of the image (official: 1, 2 for Cityscapes).
        spectral_norm: spectral norm on the residual blocks' convolutions (official: on).
        hidden: hidden channels of every SPADE layer (official: 128).
        kernel: kernel size of every SPADE layer (official: 3).
        param_free_norm: "batch" (default, see the module docstring), "instance" or "syncbatch".
        init_type: weight initialisation (see `lightning_gans.networks.init.init_weights`); official: "xavier".
        init_gain: its gain; official: 0.02.
    """

    def __init__(
        self,
        label_nc: int,
        out_channels: int = 3,
        base_channels: int = 64,
        image_size: int = 256,
        num_upsampling_layers: UpsamplingLayers = "normal",
        aspect_ratio: float = 1.0,
        spectral_norm: bool = True,
        hidden: int = 128,
        kernel: int = 3,
        param_free_norm: ParamFreeNorm = "batch",
        init_type: InitType = "xavier",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if num_upsampling_layers not in _NUM_UP_LAYERS:
            raise ValueError(f"unknown num_upsampling_layers {num_upsampling_layers!r}: choose normal, more or most")
        self.num_upsampling_layers = num_upsampling_layers
        self.latent_height, self.latent_width = spade_latent_size(
            image_size, aspect_ratio, _NUM_UP_LAYERS[num_upsampling_layers]
        )
        nf = base_channels
        top = _TOP_WIDTH * nf
        self.top_channels = top

        self.fc = nn.Conv2d(label_nc, top, kernel_size=3, padding=1)

        def block(fin: int, fout: int) -> SPADEResBlock:
            return SPADEResBlock(
                fin,
                fout,
                label_nc,
                spectral_norm=spectral_norm,
                hidden=hidden,
                kernel=kernel,
                param_free_norm=param_free_norm,
            )

        self.head_0 = block(top, top)
        self.middle_0 = block(top, top)
        self.middle_1 = block(top, top)
        # Each upsampling block halves the width: 16 -> 8 -> 4 -> 2 -> 1 times base (-> 1/2 with "most").
        widths = [top // 2**k for k in range(5)]
        if num_upsampling_layers == "most":
            widths.append(nf // 2)
        self.up_blocks = nn.ModuleList(block(fin, fout) for fin, fout in zip(widths[:-1], widths[1:]))
        self.conv_img = nn.Conv2d(widths[-1], out_channels, kernel_size=3, padding=1)
        init_weights(self, init_type, init_gain)

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of the images it makes."""
        scale = 2 ** _NUM_UP_LAYERS[self.num_upsampling_layers]
        return self.latent_height * scale, self.latent_width * scale

    def forward(self, segmap: Tensor) -> Tensor:
        """(N, label_nc, H, W) segmentation map -> (N, out_channels, height, width) in [-1, 1]."""
        latent_size = (self.latent_height, self.latent_width)
        x = self.fc(F.interpolate(segmap, size=latent_size, mode="nearest"))

        x = self.head_0(x, segmap)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.middle_0(x, segmap)
        if self.num_upsampling_layers in ("more", "most"):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.middle_1(x, segmap)
        for up_block in self.up_blocks:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = up_block(x, segmap)
        x = self.conv_img(F.leaky_relu(x, 0.2))
        return torch.tanh(x)
