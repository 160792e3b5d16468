"""StyleGAN generator and discriminator in plain PyTorch (no custom CUDA or C++ ops): CPU-importable, compilable.

The reference for every default is NVlabs' code: ``stylegan2-ada-pytorch`` (``training/networks.py``) for the
``modulated`` style block, the networks around it and the discriminator, and the original ``stylegan``
(``training/networks_stylegan.py``, ``G_synthesis``' ``layer_epilogue``) for the ``adain`` style block. What each
piece follows:

* **Equalised learning rate** (:class:`EqualLinear`, :class:`EqualConv2d`): weights are stored as ``N(0, 1) /
  lr_mul`` and multiplied by ``lr_mul / sqrt(fan_in)`` in every forward, biases by ``lr_mul``; an activation's gain
  (``sqrt(2)`` for leaky ReLU 0.2) is applied after it, as the official ``bias_act``.
* **Mapping network** (:class:`MappingNetwork`): z normalised by its second moment, ``num_layers`` fully connected
  leaky-ReLU layers with learning-rate multiplier 0.01 (8 layers in the papers; the official ``auto`` and ``cifar``
  configurations use 2), the moving average ``w_avg`` of W (decay 0.995, updated in training mode only), truncation
  ``w_avg + psi (w - w_avg)`` on the first ``truncation_cutoff`` layers (all when ``None``).
* **Modulated block** (StyleGAN2, the default): :func:`modulated_conv2d` scales the input channels by the style,
  convolves, and demodulates each output channel by ``rsqrt(sum (w * s)^2 + 1e-8)``; a zero-initialised scalar
  noise strength per layer, noise added after the convolution, then bias and leaky ReLU. ToRGB is modulated (styles
  scaled by ``1 / sqrt(fan_in)``) but not demodulated. The 4x4 input is a learned constant (``N(0, 1)``).
* **AdaIN block** (StyleGAN): convolution, per-channel noise weights (zero-initialised), bias, leaky ReLU, instance
  normalisation of each feature map, then the style ``x * (1 + y_s) + y_b`` from an affine map of w. The 4x4
  constant starts at ones and gets its own AdaIN before the first convolution, as ``G_synthesis`` does; ToRGB is a
  plain 1x1 convolution. Both blocks take ``2 log2(resolution) - 2`` styles.
* **Architecture**: skip-connection generator (every resolution adds its ToRGB output to the upsampled image) and
  residual discriminator (blocks ``conv3x3 -> conv3x3 down`` plus a ``1x1 down`` shortcut, both scaled by
  ``sqrt(1/2)``; at 4x4 minibatch standard deviation, a 3x3 convolution and two fully connected layers). Up- and
  downsampling filter with the ``[1, 3, 3, 1]`` blur exactly as ``conv2d_resample`` pads it: a transposed stride-2
  convolution followed by the blur (gain 4) for up, the blur followed by a stride-2 convolution for down.
* **Channels** ``min(channel_base // resolution, channel_max)`` at each resolution, so a 32x32 CPU model and a
  256x256 GPU model are the same code with other numbers; any power-of-two resolution from 8 up.

Deviations from the official code: no FP16 layers or ``conv_clamp`` (use ``precision: bf16-mixed``, whose bf16 has
float32's range); modulated convolutions always run as "scale, convolve, demodulate" (the official non-fused path;
its fused grouped convolution computes the same thing, :func:`modulated_weight` gives those per-sample weights);
the ``adain`` block uses the StyleGAN2 skip generator and ``[1, 3, 3, 1]`` resampling instead of StyleGAN's
progressive growing with nearest-neighbour upsampling and a ``[1, 2, 1]`` blur; no class conditioning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_gans.networks.blocks import MinibatchStdDev
from lightning_gans.networks.stylegan_ops import (  # noqa: F401  (re-exported: the layers' public home)
    BLUR_TAPS,
    LRELU_GAIN,
    EqualConv2d,
    EqualLinear,
    bias_act,
    blur_filter,
    check_resolution,
    conv2d_resample,
    instance_norm,
    modulated_conv2d,
    modulated_weight,
    normalize_2nd_moment,
    truncate,
    upfirdn2d,
    upsample2d,
)

__all__ = [
    "NOISE_MODES",
    "STYLE_BLOCKS",
    "EqualConv2d",
    "EqualLinear",
    "MappingNetwork",
    "StyleDiscriminator",
    "StyleGenerator",
    "SynthesisNetwork",
    "check_resolution",
    "instance_norm",
    "modulated_conv2d",
    "modulated_weight",
    "normalize_2nd_moment",
    "truncate",
    "upfirdn2d",
]

NOISE_MODES: tuple[str, ...] = ("random", "const", "none")
STYLE_BLOCKS: tuple[str, ...] = ("modulated", "adain")


class MappingNetwork(nn.Module):
    """z -> w: second-moment normalisation, ``num_layers`` leaky-ReLU layers with LR multiplier ``lr_mul``, and
    ``w`` broadcast to ``num_ws`` layers. Tracks ``w_avg`` (a buffer) in training mode.

    Args:
        z_dim: size of z.
        w_dim: size of w (and of the hidden layers).
        num_ws: how many copies of w the synthesis network takes (one per style input).
        num_layers: fully connected layers (8 in the papers; 2 in the official low-resolution configs).
        lr_mul: learning-rate multiplier of these layers (0.01).
        w_avg_beta: decay of the moving average of w (0.995).
    """

    def __init__(
        self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8, lr_mul: float = 0.01, w_avg_beta: float = 0.995
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"the mapping network needs at least one layer, got num_layers={num_layers}")
        self.z_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, w_dim, num_ws, w_avg_beta
        features = [z_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(
            *[EqualLinear(features[i], features[i + 1], activation="lrelu", lr_mul=lr_mul) for i in range(num_layers)]
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self, z: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None, update_w_avg: bool = True
    ) -> Tensor:
        """``ws [N, num_ws, w_dim]``; in training mode (and ``update_w_avg``) ``w_avg`` moves towards this batch."""
        w = self.layers(normalize_2nd_moment(z.float()))
        if self.training and update_w_avg:
            self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)


# ------------------------------------------------------------------------------------------ the synthesis layers
class _Noise(nn.Module):
    """Per-layer noise: a fixed map (``noise_const``) or fresh N(0, 1) per sample, times a learned strength that
    starts at zero (one scalar in StyleGAN2, one per channel in StyleGAN)."""

    def __init__(self, resolution: int, channels: int | None) -> None:
        super().__init__()
        self.resolution = resolution
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.strength = nn.Parameter(torch.zeros([] if channels is None else [channels]))

    def forward(self, x: Tensor, noise_mode: str) -> Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
        elif noise_mode == "const":
            noise = self.noise_const.to(x.dtype)
        else:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        strength = self.strength.to(x.dtype)
        return x + noise * (strength if strength.dim() == 0 else strength.reshape(1, -1, 1, 1))


class ModulatedLayer(nn.Module):
    """StyleGAN2 synthesis layer: modulated/demodulated 3x3 convolution, noise, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1) -> None:
        super().__init__()
        self.up = up
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.noise = _Noise(resolution, None)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", blur_filter(), persistent=False)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random") -> Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, up=self.up, resample_filter=self.resample_filter, padding=1)
        return bias_act(self.noise(x, noise_mode), self.bias, "lrelu")


class AdaINLayer(nn.Module):
    """StyleGAN synthesis layer: [3x3 convolution], noise, bias, leaky ReLU, instance norm, style ``x (1 + y_s) +
    y_b`` (``conv=False``: the epilogue alone, for the learned constant)."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1, conv: bool = True
    ) -> None:
        super().__init__()
        self.conv = EqualConv2d(in_channels, out_channels, 3, bias=False, up=up) if conv else None
        self.noise = _Noise(resolution, out_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.style = EqualLinear(w_dim, 2 * out_channels)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random") -> Tensor:
        if self.conv is not None:
            x = self.conv(x)
        x = instance_norm(bias_act(self.noise(x, noise_mode), self.bias, "lrelu"))
        scale, shift = self.style(w).to(x.dtype).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x * (1 + scale) + shift


class ToRGB(nn.Module):
    """StyleGAN2's ToRGB: modulated 1x1 convolution without demodulation (styles scaled by ``1/sqrt(fan_in)``)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        return bias_act(modulated_conv2d(x, self.weight, styles, demodulate=False), self.bias)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: [upsampling layer,] layer, ToRGB added to the upsampled image.

    ``num_ws`` styles are read from ``ws``: one per layer, plus the ToRGB's for the modulated block (which it shares
    with the next block's first layer, as in the official code).
    """

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int, style_block: str
    ) -> None:
        super().__init__()
        self.first = in_channels == 0
        self.style_block = style_block
        layers: list[nn.Module] = []
        if style_block == "modulated":
            if self.first:
                self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            else:
                layers.append(ModulatedLayer(in_channels, out_channels, w_dim, resolution, up=2))
            layers.append(ModulatedLayer(out_channels, out_channels, w_dim, resolution))
            self.torgb: nn.Module = ToRGB(out_channels, img_channels, w_dim)
        else:
            if self.first:
                self.const = nn.Parameter(torch.ones(out_channels, resolution, resolution))
                layers.append(AdaINLayer(out_channels, out_channels, w_dim, resolution, conv=False))
            else:
                layers.append(AdaINLayer(in_channels, out_channels, w_dim, resolution, up=2))
            layers.append(AdaINLayer(out_channels, out_channels, w_dim, resolution))
            self.torgb = EqualConv2d(out_channels, img_channels, 1)
        self.layers = nn.ModuleList(layers)
        self.num_conv = len(layers)
        self.num_torgb = 1 if style_block == "modulated" else 0
        self.register_buffer("resample_filter", blur_filter(), persistent=False)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str) -> tuple[Tensor, Tensor]:
        if self.first:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1).to(ws.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv]) if self.num_torgb else self.torgb(x)
        img = y.float() if img is None else upsample2d(img, self.resample_filter) + y.float()
        return x, img


class SynthesisNetwork(nn.Module):
    """ws -> image: a learned 4x4 constant, then one :class:`SynthesisBlock` per resolution up to the output.

    Args:
        w_dim: size of w.
        resolution: output side (a power of two, 8 or more).
        img_channels: output channels.
        channel_base: channels at resolution r are ``min(channel_base // r, channel_max)``.
        channel_max: the cap on channels.
        style_block: "modulated" (StyleGAN2) or "adain" (StyleGAN).
    """

    def __init__(
        self,
        w_dim: int,
        resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        style_block: str = "modulated",
    ) -> None:
        super().__init__()
        if style_block not in STYLE_BLOCKS:
            raise ValueError(f"style_block must be one of {STYLE_BLOCKS}, got {style_block!r}")
        self.w_dim, self.resolution = w_dim, resolution
        self.block_resolutions = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
        channels = {r: max(1, min(channel_base // r, channel_max)) for r in self.block_resolutions}
        self.blocks = nn.ModuleList()
        self.num_ws = 0
        for r in self.block_resolutions:
            block = SynthesisBlock(channels[r // 2] if r > 4 else 0, channels[r], w_dim, r, img_channels, style_block)
            self.blocks.append(block)
            self.num_ws += block.num_conv
        self.num_ws += self.blocks[-1].num_torgb

    def layer_resolutions(self) -> list[int]:
        """The resolution each style input acts at (``num_ws`` entries; the last ToRGB's counts as the output's)."""
        out = [r for block, r in zip(self.blocks, self.block_resolutions) for _ in range(block.num_conv)]
        return out + [self.resolution] * self.blocks[-1].num_torgb

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        x = img = None
        start = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, start : start + block.num_conv + block.num_torgb], noise_mode)
            start += block.num_conv
        return img


class StyleGenerator(nn.Module):
    """The style-based generator: :class:`MappingNetwork` (z -> w, ``w_avg``) and :class:`SynthesisNetwork`.

    Args:
        latent_dim: size of z.
        image_shape: (C, H, W) of the output, H = W a power of two from 8 up.
        w_dim: size of w.
        mapping_layers: layers of the mapping network (8 in the papers, 2 in the official low-resolution configs).
        mapping_lr_mul: learning-rate multiplier of the mapping network.
        channel_base: channels at resolution r are ``min(channel_base // r, channel_max)``.
        channel_max: the cap on channels.
        style_block: "modulated" (StyleGAN2) or "adain" (StyleGAN).
        w_avg_beta: decay of the tracked average of w.
    """

    def __init__(
        self,
        latent_dim: int = 512,
        image_shape: Sequence[int] = (3, 32, 32),
        w_dim: int = 512,
        mapping_layers: int = 8,
        mapping_lr_mul: float = 0.01,
        channel_base: int = 32768,
        channel_max: int = 512,
        style_block: str = "modulated",
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        resolution = check_resolution(image_shape, "StyleGenerator")
        self.latent_dim = latent_dim
        channels = int(image_shape[0])
        self.synthesis = SynthesisNetwork(w_dim, resolution, channels, channel_base, channel_max, style_block)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(latent_dim, w_dim, self.num_ws, mapping_layers, mapping_lr_mul, w_avg_beta)

    @property
    def w_avg(self) -> Tensor:
        return self.mapping.w_avg

    def forward(
        self,
        z: Tensor,
        mix_z: Tensor | None = None,
        mixing_cutoff: int | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        return_ws: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Images from z (and the ``ws`` they were made from with ``return_ws``).

        Style mixing: with ``mix_z`` the style inputs ``[mixing_cutoff, num_ws)`` come from ``mix_z``'s w (which
        does not move ``w_avg``); ``mixing_cutoff = num_ws`` (or None) mixes nothing.
        """
        ws = self.mapping(z)
        if mix_z is not None and mixing_cutoff is not None and mixing_cutoff < self.num_ws:
            mixed = self.mapping(mix_z, update_w_avg=False)
            ws = torch.cat([ws[:, :mixing_cutoff], mixed[:, mixing_cutoff:]], dim=1)
        ws = truncate(ws, self.mapping.w_avg, truncation_psi, truncation_cutoff)
        img = self.synthesis(ws, noise_mode)
        return (img, ws) if return_ws else img


# ---------------------------------------------------------------------------------------------- the discriminator
class DiscriminatorBlock(nn.Module):
    """Residual discriminator block: [FromRGB,] conv3x3, conv3x3 down, plus a 1x1 down shortcut, each x sqrt(1/2)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int) -> None:
        super().__init__()
        self.fromrgb = EqualConv2d(img_channels, tmp_channels, 1, activation="lrelu") if in_channels == 0 else None
        self.conv0 = EqualConv2d(tmp_channels, tmp_channels, 3, activation="lrelu")
        self.conv1 = EqualConv2d(tmp_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = EqualConv2d(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor | None, img: Tensor) -> Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class StyleDiscriminator(nn.Module):
    """StyleGAN2's residual discriminator; returns one logit per image ``[N, 1]``.

    Args:
        image_shape: (C, H, W) of the input, H = W a power of two from 8 up.
        channel_base: channels at resolution r are ``min(channel_base // r, channel_max)``.
        channel_max: the cap on channels.
        mbstd_group_size: samples per minibatch-standard-deviation group (4; the ``cifar`` config uses 32).
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (3, 32, 32),
        channel_base: int = 32768,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
    ) -> None:
        super().__init__()
        resolution = check_resolution(image_shape, "StyleDiscriminator")
        resolutions = [2**i for i in range(int(math.log2(resolution)), 2, -1)]
        channels = {r: max(1, min(channel_base // r, channel_max)) for r in [*resolutions, 4]}
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(channels[r] if r < resolution else 0, channels[r], channels[r // 2], int(image_shape[0]))
            for r in resolutions
        )
        c4 = channels[4]
        self.mbstd = MinibatchStdDev(mbstd_group_size)
        self.conv = EqualConv2d(c4 + 1, c4, 3, activation="lrelu")
        self.fc = EqualLinear(c4 * 16, c4, activation="lrelu")
        self.out = EqualLinear(c4, 1)

    def forward(self, img: Tensor) -> Tensor:
        x = None
        for block in self.blocks:
            x = block(x, img)
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))
