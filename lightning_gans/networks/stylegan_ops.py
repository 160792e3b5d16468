"""The building blocks of :mod:`lightning_gans.networks.stylegan` in plain PyTorch: the official ``bias_act``,
``upfirdn2d`` and ``conv2d_resample`` (the ``[1, 3, 3, 1]`` blur padded as NVlabs' code pads it), modulated
convolution, truncation, and the equalised-learning-rate layers. See that module's docstring for what each follows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_GAIN = math.sqrt(2.0)
BLUR_TAPS = (1, 3, 3, 1)


# ---------------------------------------------------------------------------------------------- plain functions
def check_resolution(image_shape: Sequence[int], owner: str) -> int:
    """The side of a square ``(C, H, W)`` image whose size is a power of two from 8 up, or a ValueError."""
    if len(image_shape) != 3:
        raise ValueError(f"{owner}: image_shape must be (channels, height, width), got {tuple(image_shape)}")
    channels, height, width = (int(v) for v in image_shape)
    if channels < 1 or height != width or height < 8 or height & (height - 1):
        raise ValueError(
            f"{owner} makes square images whose side is a power of two from 8 up (8, 16, 32, 64, ...); got "
            f"image_shape={tuple(image_shape)}. Resize the data (e.g. the datamodule's image_size) to such a size."
        )
    return height


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x / sqrt(mean(x^2) + eps)`` along ``dim``: what the mapping network does to z first."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def instance_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Normalise each feature map of each sample to zero mean and unit variance (in float32, as StyleGAN)."""
    dtype = x.dtype
    x = x.float()
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return (x * (x.square().mean(dim=(2, 3), keepdim=True) + eps).rsqrt()).to(dtype)


def bias_act(x: Tensor, bias: Tensor | None, activation: str = "linear", gain: float = 1.0) -> Tensor:
    """Add the bias, apply the activation and multiply by its gain (``sqrt(2)`` for leaky ReLU) times ``gain``."""
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, *([1] * (x.dim() - 2)))
    if activation == "lrelu":
        x = F.leaky_relu(x, 0.2)
        gain = gain * LRELU_GAIN
    elif activation != "linear":
        raise ValueError(f"activation must be 'linear' or 'lrelu', got {activation!r}")
    return x * gain if gain != 1 else x


def blur_filter(taps: Sequence[float] = BLUR_TAPS) -> Tensor:
    """The separable 2-D low-pass filter ``outer(taps, taps)``, normalised to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(
    x: Tensor, f: Tensor, up: int = 1, down: int = 1, padding: tuple[int, int] = (0, 0), gain: float = 1.0
) -> Tensor:
    """Upsample by zero insertion, pad, filter with ``f * gain``, downsample: the official resampling primitive.

    For the symmetric filters used here, non-negative padding ``(before, after)`` on both axes, and any ``up`` /
    ``down``. Pure PyTorch (a depthwise convolution), as the official reference implementation.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    p0, p1 = padding
    x = F.pad(x, [p0, p1, p0, p1])
    kernel = (f * gain).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, kernel, stride=down, groups=c)


def upsample2d(x: Tensor, f: Tensor, up: int = 2) -> Tensor:
    """Upsample ``x`` by ``up`` with the filter (the skip generator's image path)."""
    taps = f.shape[-1]
    return upfirdn2d(x, f, up=up, padding=((taps + up - 1) // 2, (taps - up) // 2), gain=up**2)


def conv2d_resample(
    x: Tensor, weight: Tensor, f: Tensor | None, up: int = 1, down: int = 1, padding: int = 0
) -> Tensor:
    """Convolution with optional x2 up- or downsampling through filter ``f``, padded as the official
    ``conv2d_resample``: up = transposed stride-2 convolution, then the filter (gain 4); down = the filter, then a
    stride-2 convolution (1x1 kernels: filter with stride, then convolve)."""
    k = weight.shape[-1]
    if up == 1 and down == 1:
        return F.conv2d(x, weight, padding=padding)
    assert f is not None, "resampling needs a filter"
    taps = f.shape[-1]
    if down > 1 and up == 1:
        pad = (padding + (taps - down + 1) // 2, padding + (taps - down) // 2)
        if k == 1:
            return F.conv2d(upfirdn2d(x, f, down=down, padding=pad), weight)
        return F.conv2d(upfirdn2d(x, f, padding=pad), weight, stride=down)
    if up > 1 and down == 1:
        pad0 = padding + (taps + up - 1) // 2 - (k - 1)
        pad1 = padding + (taps - up) // 2 - (k - up)
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=up)
        return upfirdn2d(x, f, padding=(pad0, pad1), gain=up**2)
    raise ValueError(f"conv2d_resample supports up or down, not both (got up={up}, down={down})")


def modulated_weight(weight: Tensor, styles: Tensor, demodulate: bool = True) -> Tensor:
    """Per-sample weights ``[N, O, I, k, k]``: ``weight * styles`` over input channels, each output channel then
    divided by ``sqrt(sum (weight * styles)^2 + 1e-8)`` when ``demodulate`` (StyleGAN2, eq. 1-3)."""
    w = weight.unsqueeze(0) * styles.reshape(styles.shape[0], 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    return w


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    demodulate: bool = True,
    up: int = 1,
    resample_filter: Tensor | None = None,
    padding: int = 0,
) -> Tensor:
    """Modulated (and demodulated) convolution: the same as a grouped convolution with :func:`modulated_weight`,
    computed as scale the input channels, convolve with the shared weight, scale the output channels.

    Args:
        x: input ``[N, I, H, W]``.
        weight: shared weight ``[O, I, k, k]``.
        styles: per-sample scales of the input channels ``[N, I]``.
        demodulate: divide each output channel by the norm of its modulated weight.
        up: 1, or 2 for an upsampling convolution (with ``resample_filter``).
    """
    n = x.shape[0]
    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
    if demodulate:  # sum_i,k (w_oik s_i)^2 = sum_i s_i^2 sum_k w_oik^2
        dcoefs = (styles.float().square() @ weight.float().square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()  # [N, O]
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    return x


def truncate(ws: Tensor, w_avg: Tensor, psi: float | Tensor = 1.0, cutoff: int | None = None) -> Tensor:
    """The truncation trick: ``w_avg + psi (w - w_avg)`` on layers ``[0, cutoff)`` of ``ws [N, L, w_dim]`` (all
    layers when ``cutoff`` is None); ``psi = 1`` returns ``ws``. ``psi`` may be a 0-d tensor (an input of an exported
    generator), which always takes the lerp (exact at 1)."""
    if not isinstance(psi, Tensor) and psi == 1:
        return ws
    coefs = torch.ones(ws.shape[1], device=ws.device, dtype=ws.dtype)
    coefs[: ws.shape[1] if cutoff is None else cutoff] = psi
    return w_avg.to(ws.dtype).lerp(ws, coefs[None, :, None])


# ------------------------------------------------------------------------------------------ equalised-LR layers
class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate (the official ``FullyConnectedLayer``).

    Args:
        in_features: input size.
        out_features: output size.
        bias: add a bias.
        bias_init: initial bias value (1 for the style affines, so styles start at 1).
        lr_mul: learning-rate multiplier (0.01 in the mapping network).
        activation: "linear" or "lrelu".
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: str = "linear",
    ) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, self.activation)


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate and optional x2 resampling (the official ``Conv2dLayer``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size.
        bias: add a bias.
        activation: "linear" or "lrelu".
        up: 2 for an upsampling convolution.
        down: 2 for a downsampling convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
    ) -> None:
        super().__init__()
        self.activation, self.up, self.down, self.padding = activation, up, down, kernel_size // 2
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.register_buffer("resample_filter", blur_filter(), persistent=False)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        return bias_act(x, self.bias, self.activation, gain)


# -------------------------------------------------------------------------------------------------- the mapping
