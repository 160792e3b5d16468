"""Building blocks shared by the classic GAN networks: spectral norm, self-attention, residual blocks, ...

What each block follows:

* Spectral normalisation: Miyato et al. 2018, "Spectral Normalization for GANs" (pfnet-research/sngan_projection),
  through PyTorch's ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per training forward).
  :func:`apply_spectral_norm` wraps every convolution, linear and embedding layer of an existing network, so "spectral
  norm on D, optionally on G" is a switch for any family rather than a property of one network.
* :class:`SelfAttention`: Zhang et al. 2019, "Self-Attention GANs" (brain-research/self-attention-gan), in the
  form BigGAN (ajbrock/BigGAN-PyTorch) and PyTorch-StudioGAN (``src/utils/ops.py``) use: queries and keys with
  ``channels // 8`` channels, values with ``channels // 2``, keys and values max-pooled 2x2 (a quarter of the
  positions, so the attention matrix is 4x smaller) and an output 1x1 convolution back to ``channels``. The residual
  weight ``gamma`` starts at 0, so the block is the identity at initialisation. Deviation: the pooling uses
  ``ceil_mode=True`` so that odd feature maps (7x7 for 28x28 images) keep their last row and column.
* :class:`ResBlockUp` / :class:`ResBlockDown`: the SNGAN CIFAR ResNet blocks (Miyato et al. 2018, appendix; mimicry
  ``torch_mimicry/modules/resblocks.py``, StudioGAN ``src/models/resnet.py``), including the "optimised" first
  discriminator block that does not start with a ReLU on the raw image. Initialisation as in the SNGAN code:
  Xavier-uniform with gain sqrt(2) on the residual 3x3 convolutions and gain 1 on the 1x1 shortcuts.
* :class:`ConditionalBatchNorm2d`: de Vries et al. 2017 / Miyato & Koyama 2018 class-conditional batch norm in the
  BigGAN parameterisation ``gain = 1 + embed_gain(y)``, which stays well defined when spectral norm is applied to
  the generator (a plain "gain = embed(y)" initialised to ones would be divided by its large spectral norm).
* :class:`MinibatchStdDev`: Karras et al. 2018 (ProGAN) minibatch standard deviation as one extra feature map.
* :class:`ConvDownStack` / :class:`ConvUpStack`: DCGAN-style (Radford et al. 2016) strided-convolution trunks used
  by the BiGAN/ALI and autoencoder networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

__all__ = [
    "SUPPORTED_IMAGE_SIZES",
    "ConditionalBatchNorm2d",
    "ConvDownStack",
    "ConvUpStack",
    "MinibatchStdDev",
    "ResBlockDown",
    "ResBlockUp",
    "SelfAttention",
    "apply_spectral_norm",
    "check_image_shape",
    "has_spectral_norm",
    "init_xavier",
    "maybe_spectral_norm",
]

#: Square image sizes the networks in this package build for (28 for MNIST-like data, 32 / 64 / 128 otherwise).
SUPPORTED_IMAGE_SIZES: tuple[int, ...] = (28, 32, 64, 128)

_M = TypeVar("_M", bound=nn.Module)
_NORMALISABLE = (nn.modules.conv._ConvNd, nn.Linear, nn.Embedding)


def check_image_shape(image_shape: Sequence[int], owner: str, supported: Sequence[int] = SUPPORTED_IMAGE_SIZES) -> int:
    """Validate a ``(C, H, W)`` image shape and return its side length.

    Raises ``ValueError`` naming ``owner`` and the supported sizes when the image is not square or its size is not one
    of ``supported``.
    """
    if len(image_shape) != 3:
        raise ValueError(f"{owner}: image_shape must be (channels, height, width), got {tuple(image_shape)}")
    channels, height, width = (int(v) for v in image_shape)
    if channels < 1 or height != width or height not in supported:
        sizes = ", ".join(f"{s}x{s}" for s in supported)
        raise ValueError(
            f"{owner} supports square images of size {sizes} with at least one channel; got image_shape="
            f"{tuple(image_shape)}. Resize the data (e.g. the datamodule's image_size) to a supported size."
        )
    return height


def maybe_spectral_norm(module: _M, enabled: bool) -> _M:
    """Return ``module`` with spectral normalisation on its ``weight`` when ``enabled``, else unchanged."""
    return _spectral_norm(module) if enabled else module


def has_spectral_norm(module: nn.Module) -> bool:
    """Whether ``module.weight`` is spectrally normalised through a parametrization."""
    return parametrize.is_parametrized(module, "weight") and any(
        type(p).__name__ == "_SpectralNorm" for p in module.parametrizations["weight"]
    )


def apply_spectral_norm(net: _M, n_power_iterations: int = 1) -> _M:
    """Add spectral normalisation to every convolution, linear and embedding layer of ``net``, in place.

    Layers that already carry spectral norm are left alone, so calling it on a network built with
    ``spectral_norm=True`` is harmless. Normalisation layers (batch norm's affine parameters) are not touched.

    Args:
        net: any network; returned for chaining.
        n_power_iterations: power iterations per training-mode forward (1, as in the SNGAN paper).
    """
    targets = [m for m in net.modules() if isinstance(m, _NORMALISABLE) and not has_spectral_norm(m)]
    for module in targets:
        _spectral_norm(module, n_power_iterations=n_power_iterations)
    return net


def init_xavier(module: _M, gain: float = 1.0) -> _M:
    """Xavier-uniform weights and zero bias, as the SNGAN/mimicry code initialises its layers."""
    nn.init.xavier_uniform_(module.weight, gain)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return module


def _conv(
    in_channels: int, out_channels: int, kernel_size: int, spectral_norm: bool, gain: float = 1.0, bias: bool = True
) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
    return maybe_spectral_norm(init_xavier(conv, gain), spectral_norm)


class SelfAttention(nn.Module):
    """SAGAN self-attention over the positions of a feature map, BigGAN/StudioGAN form.

    ``out = x + gamma * W_o(softmax(theta(x)^T phi(x)) g(x))`` where theta, phi are 1x1 convolutions to
    ``channels // 8``, g a 1x1 convolution to ``channels // 2``, phi and g are max-pooled 2x2, and W_o maps back to
    ``channels``. ``gamma`` is a learnable scalar initialised to 0: the block is the identity at initialisation.

    Args:
        channels: feature channels of the input (at least 8).
        spectral_norm: spectral normalisation on the four 1x1 convolutions (SAGAN uses it in G and D).
    """

    def __init__(self, channels: int, spectral_norm: bool = True) -> None:
        super().__init__()
        if channels < 8:
            raise ValueError(f"SelfAttention needs at least 8 channels (queries use channels // 8), got {channels}")
        self.channels = channels
        self.theta = _conv(channels, channels // 8, 1, spectral_norm, bias=False)
        self.phi = _conv(channels, channels // 8, 1, spectral_norm, bias=False)
        self.g = _conv(channels, channels // 2, 1, spectral_norm, bias=False)
        self.out = _conv(channels // 2, channels, 1, spectral_norm, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        query = self.theta(x).flatten(2)  # (N, C/8, HW)
        key = F.max_pool2d(self.phi(x), 2, ceil_mode=True).flatten(2)  # (N, C/8, HW')
        value = F.max_pool2d(self.g(x), 2, ceil_mode=True).flatten(2)  # (N, C/2, HW')
        attention = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # (N, HW, HW'), rows sum to 1
        attended = (value @ attention.transpose(1, 2)).view(n, c // 2, h, w)
        return x + self.gamma * self.out(attended)


class ConditionalBatchNorm2d(nn.Module):
    """Class-conditional batch norm: ``BN(x) * (1 + delta_gain[y]) + bias[y]``, without BN's own affine part.

    Args:
        num_features: channels of the input.
        num_classes: number of classes (the labels are integers in ``[0, num_classes)``).
        momentum: batch-norm running-statistics momentum.
    """

    def __init__(self, num_features: int, num_classes: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features = num_features
        self.bn = nn.BatchNorm2d(num_features, affine=False, momentum=momentum)
        # One table holds the gain offsets and the biases. Small random values instead of zeros: a zero matrix has
        # no top singular vector, which breaks spectral norm when it is applied to the generator.
        self.embed = nn.Embedding(num_classes, 2 * num_features)
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        gain, bias = self.embed(labels).chunk(2, dim=1)
        return self.bn(x) * (1.0 + gain[:, :, None, None]) + bias[:, :, None, None]


class ResBlockUp(nn.Module):
    """SNGAN generator residual block: BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus upsample-conv1x1 shortcut.

    Upsampling is nearest-neighbour x2. With ``num_classes > 0`` both batch norms are class-conditional
    (:class:`ConditionalBatchNorm2d`) and ``forward`` needs the labels.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        num_classes: 0 for unconditional batch norm, else the number of classes.
        spectral_norm: spectral normalisation on the convolutions (SAGAN/BigGAN use it in G).
    """

    def __init__(self, in_channels: int, out_channels: int, num_classes: int = 0, spectral_norm: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        if num_classes > 0:
            self.bn1: nn.Module = ConditionalBatchNorm2d(in_channels, num_classes)
            self.bn2: nn.Module = ConditionalBatchNorm2d(out_channels, num_classes)
        else:
            self.bn1 = nn.BatchNorm2d(in_channels)
            self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv1 = _conv(in_channels, out_channels, 3, spectral_norm, gain=2**0.5)
        self.conv2 = _conv(out_channels, out_channels, 3, spectral_norm, gain=2**0.5)
        self.shortcut = _conv(in_channels, out_channels, 1, spectral_norm)

    def _norm(self, bn: nn.Module, x: Tensor, labels: Tensor | None) -> Tensor:
        if self.num_classes > 0:
            if labels is None:
                raise ValueError("this block is class-conditional (num_classes > 0): pass the labels")
            return bn(x, labels)
        return bn(x)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = F.relu(self._norm(self.bn1, x, labels))
        h = self.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv2(F.relu(self._norm(self.bn2, h, labels)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResBlockDown(nn.Module):
    """SNGAN discriminator residual block, with the optimised first-block variant.

    * regular: ReLU-conv3x3-ReLU-conv3x3-[avgpool2]; shortcut conv1x1-[avgpool2] when the block downsamples or changes
      the channel count, identity otherwise.
    * ``optimized=True`` (first block, applied to the image): conv3x3-ReLU-conv3x3-avgpool2; shortcut
      avgpool2-conv1x1. It always downsamples, and it has no ReLU before the first convolution.

    No batch norm: the SNGAN discriminator relies on spectral norm alone, and gradient penalties need per-sample
    outputs.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        downsample: halve the spatial size with 2x2 average pooling (ignored, always on, for ``optimized``).
        optimized: the first-block variant.
        spectral_norm: spectral normalisation on the convolutions.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        downsample: bool = True,
        optimized: bool = False,
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        self.optimized = optimized
        self.downsample = downsample or optimized
        self.conv1 = _conv(in_channels, out_channels, 3, spectral_norm, gain=2**0.5)
        self.conv2 = _conv(out_channels, out_channels, 3, spectral_norm, gain=2**0.5)
        learnable_shortcut = optimized or self.downsample or in_channels != out_channels
        self.shortcut = _conv(in_channels, out_channels, 1, spectral_norm) if learnable_shortcut else None

    def _pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: Tensor) -> Tensor:
        if self.optimized:
            h = self._pool(self.conv2(F.relu(self.conv1(x))))
            return h + self.shortcut(self._pool(x))
        h = self._pool(self.conv2(F.relu(self.conv1(F.relu(x)))))
        skip = x if self.shortcut is None else self._pool(self.shortcut(x))
        return h + skip


class MinibatchStdDev(nn.Module):
    """Append the average standard deviation over groups of samples as one extra channel (ProGAN).

    The batch is split into groups of ``group_size`` samples (or the largest divisor of the batch size not above it);
    the per-feature standard deviation within each group, averaged over channels and positions, becomes a constant
    feature map for that group's samples. Output has ``C + 1`` channels.

    Args:
        group_size: samples per group (4 in ProGAN/StyleGAN).
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        group = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        grouped = x.view(group, n // group, c, h, w)  # sample i belongs to group i % (n // group)
        std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n // group,)
        feature = std.repeat(group).view(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, feature], dim=1)


def _halvings(image_size: int) -> int:
    """Number of stride-2 steps between a 4x4 (or 7x7 for 28x28) feature map and the image."""
    steps = 0
    while image_size % 2 == 0 and image_size > 4:
        image_size //= 2
        steps += 1
    return steps


class ConvDownStack(nn.Module):
    """DCGAN-style trunk: 4x4 stride-2 convolutions from the image down to 4x4 (7x7 for 28x28 images).

    Widths double at each step: ``base_channels, 2 * base_channels, ...``; ``out_channels`` and ``out_size`` give the
    final feature map. Each convolution is followed by [batch norm] (never after the first one), LeakyReLU(0.2) and
    [dropout].

    Args:
        in_channels: image channels.
        image_size: image side (one of ``SUPPORTED_IMAGE_SIZES``).
        base_channels: width after the first convolution.
        batch_norm: batch norm after every convolution but the first.
        spectral_norm: spectral normalisation on the convolutions.
        dropout: dropout probability after each activation (ALI uses 0.2 in its discriminator).
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        base_channels: int = 64,
        batch_norm: bool = True,
        spectral_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        steps = _halvings(image_size)
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(steps):
            width = base_channels * 2**i
            conv = nn.Conv2d(channels, width, 4, stride=2, padding=1, bias=not (batch_norm and i > 0))
            layers.append(maybe_spectral_norm(conv, spectral_norm))
            if batch_norm and i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            channels = width
        self.net = nn.Sequential(*layers)
        self.out_channels = channels
        self.out_size = image_size // 2**steps

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvUpStack(nn.Module):
    """DCGAN-style decoder: a linear map to a 4x4 (7x7 for 28x28) feature map, then 4x4 stride-2 transposed convs.

    Widths halve at each step down to ``base_channels``; the last transposed convolution outputs the image channels
    (no activation: callers add ``tanh``). Batch norm and ReLU after every layer but the last.

    Args:
        latent_dim: size of the input vector.
        out_channels: image channels.
        image_size: image side (one of ``SUPPORTED_IMAGE_SIZES``).
        base_channels: width of the last hidden feature map (the widest is ``base_channels * 2 ** (steps - 1)``).
    """

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, base_channels: int = 64) -> None:
        super().__init__()
        steps = _halvings(image_size)
        self.bottom = image_size // 2**steps
        self.top_channels = base_channels * 2 ** (steps - 1)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, self.top_channels * self.bottom**2, bias=False),
            nn.Unflatten(1, (self.top_channels, self.bottom, self.bottom)),
            nn.BatchNorm2d(self.top_channels),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        channels = self.top_channels
        for _ in range(steps - 1):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(),
            ]
            channels //= 2
        layers.append(nn.ConvTranspose2d(channels, out_channels, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.project(z))
