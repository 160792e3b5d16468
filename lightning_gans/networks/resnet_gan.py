"""SNGAN ResNet generator and discriminator, with the projection discriminator and SAGAN self-attention as options.

Follows:

* Miyato et al. 2018, "Spectral Normalization for Generative Adversarial Networks", appendix B (the CIFAR ResNets
  and their 64/128 variants), as in pfnet-research/sngan_projection, mimicry (``torch_mimicry/nets/sngan``) and
  PyTorch-StudioGAN (``src/models/resnet.py``).
* Miyato & Koyama 2018, "cGANs with Projection Discriminator": with ``num_classes > 0`` the discriminator adds
  ``<embed(y), phi(x)>`` to its logit and the generator uses class-conditional batch norm.
* Zhang et al. 2019, "Self-Attention GANs": ``attention_resolution`` inserts a :class:`~.blocks.SelfAttention` block
  after the block producing that feature-map size (SAGAN = these networks with attention and spectral norm in both
  G and D; StudioGAN's CIFAR SAGAN puts it at 16x16 in both).

Architectures (``g``/``d`` = ``base_channels``, the widest width; defaults are the papers'):

=====  ==============================================  =====================================================
size   generator (from a 4x4 or 7x7 map)               discriminator (first block is the optimised one)
=====  ==============================================  =====================================================
28     7 -> 14 -> 28, all g (default 256)               28 -> 14 -> 7 -> 7 -> 7, all d (default 128)
32     4 -> 8 -> 16 -> 32, all g (default 256)          32 -> 16 -> 8 -> 8 -> 8, all d (default 128)
64     g, g/2, g/4, g/8, g/16 (default g = 1024)        d/16, d/8, d/4, d/2, d down to 2x2 (default d = 1024)
128    g, g, g/2, g/4, g/8, g/16 (default g = 1024)     d/16 ... d down to 4x4, then d at 4x4 (default 1024)
=====  ==============================================  =====================================================

The discriminator ends in ReLU, global *sum* pooling (the penultimate features) and a linear layer to one logit.

Deviations: 28x28 (MNIST-like data) is not in the papers; it uses the 32x32 networks with a 7x7 starting map and one
block fewer in G. Images may have any number of channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_gans.networks.blocks import (
    ResBlockDown,
    ResBlockUp,
    SelfAttention,
    check_image_shape,
    init_xavier,
    maybe_spectral_norm,
)

__all__ = ["ResNetDiscriminator", "ResNetGenerator"]

# Per image size: (start resolution, right shifts of base_channels for the start map and each block's output).
_G_PLAN: dict[int, tuple[int, tuple[int, ...]]] = {
    28: (7, (0, 0, 0)),
    32: (4, (0, 0, 0, 0)),
    64: (4, (0, 1, 2, 3, 4)),
    128: (4, (0, 0, 1, 2, 3, 4)),
}
# Per image size: (right shift of base_channels for each block's output, whether the block downsamples).
_D_PLAN: dict[int, tuple[tuple[int, ...], tuple[bool, ...]]] = {
    28: ((0, 0, 0, 0), (True, True, False, False)),
    32: ((0, 0, 0, 0), (True, True, False, False)),
    64: ((4, 3, 2, 1, 0), (True, True, True, True, True)),
    128: ((4, 3, 2, 1, 0, 0), (True, True, True, True, True, False)),
}
_G_DEFAULT_CHANNELS = {28: 256, 32: 256, 64: 1024, 128: 1024}
_D_DEFAULT_CHANNELS = {28: 128, 32: 128, 64: 1024, 128: 1024}


def _widths(owner: str, base_channels: int, shifts: Sequence[int]) -> list[int]:
    widths = [base_channels >> s for s in shifts]
    if min(widths) < 1:
        needed = 1 << max(shifts)
        raise ValueError(f"{owner}: base_channels={base_channels} is too small for this image size (needs >= {needed})")
    return widths


def _attention_index(owner: str, resolution: int | None, block_resolutions: Sequence[int]) -> int | None:
    """Index of the first block whose output has ``resolution``, or None without attention."""
    if resolution is None:
        return None
    if resolution not in block_resolutions:
        valid = ", ".join(str(r) for r in sorted(set(block_resolutions)))
        raise ValueError(f"{owner}: attention_resolution={resolution} is not a block output size; valid: {valid}")
    return list(block_resolutions).index(resolution)


class ResNetGenerator(nn.Module):
    """SNGAN ResNet generator: z -> linear -> 4x4 (7x7 for 28px) map -> ResBlockUp x n -> BN-ReLU-conv3x3 -> tanh.

    Args:
        latent_dim: size of the noise vector z.
        image_shape: ``(C, H, W)`` of the generated images; square, of size 28, 32, 64 or 128.
        base_channels: widest feature width (see the module table); ``None`` picks the paper's value for the size.
        num_classes: 0 for an unconditional generator; otherwise class-conditional batch norm in every block and
            ``forward`` needs integer labels in ``[0, num_classes)``.
        attention_resolution: feature-map size after which to insert self-attention (SAGAN), e.g. 16 for 32x32
            images; ``None`` for none.
        spectral_norm: spectral normalisation on every layer of G (SAGAN and BigGAN do this; SNGAN does not).
    """

    def __init__(
        self,
        latent_dim: int = 128,
        image_shape: tuple[int, int, int] = (3, 32, 32),
        base_channels: int | None = None,
        num_classes: int = 0,
        attention_resolution: int | None = None,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        size = check_image_shape(image_shape, "ResNetGenerator", tuple(_G_PLAN))
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        bottom, shifts = _G_PLAN[size]
        base = _G_DEFAULT_CHANNELS[size] if base_channels is None else base_channels
        widths = _widths("ResNetGenerator", base, shifts)
        self.bottom = bottom
        self.start_channels = widths[0]

        self.linear = maybe_spectral_norm(init_xavier(nn.Linear(latent_dim, widths[0] * bottom**2)), spectral_norm)
        resolutions = [bottom * 2 ** (i + 1) for i in range(len(widths) - 1)]
        attention_at = _attention_index("ResNetGenerator", attention_resolution, resolutions)
        self.blocks = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            self.blocks.append(ResBlockUp(c_in, c_out, num_classes=num_classes, spectral_norm=spectral_norm))
            if i == attention_at:
                self.blocks.append(SelfAttention(c_out, spectral_norm=spectral_norm))
        self.final_bn = nn.BatchNorm2d(widths[-1])
        self.final_conv = maybe_spectral_norm(
            init_xavier(nn.Conv2d(widths[-1], image_shape[0], 3, padding=1)), spectral_norm
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Map noise ``z`` of shape (N, latent_dim) (and labels (N,) when conditional) to images in [-1, 1]."""
        if self.num_classes > 0 and labels is None:
            raise ValueError(f"ResNetGenerator is class-conditional (num_classes={self.num_classes}): pass labels")
        h = self.linear(z).view(z.shape[0], self.start_channels, self.bottom, self.bottom)
        for block in self.blocks:
            h = block(h, labels) if isinstance(block, ResBlockUp) else block(h)
        h = torch.relu(self.final_bn(h))
        return torch.tanh(self.final_conv(h))


class ResNetDiscriminator(nn.Module):
    """SNGAN ResNet discriminator (optionally a projection discriminator); returns one logit per image.

    Args:
        image_shape: ``(C, H, W)`` of the input images; square, of size 28, 32, 64 or 128.
        base_channels: widest feature width (see the module table); ``None`` picks the paper's value for the size.
        num_classes: 0 for unconditional; otherwise a projection discriminator (Miyato & Koyama 2018): the logit gains
            ``<embed(y), features>`` and ``forward`` needs labels.
        attention_resolution: feature-map size after which to insert self-attention (SAGAN), e.g. 16 for 32x32
            images (the first block's output); ``None`` for none.
        spectral_norm: spectral normalisation on every layer (the point of SNGAN; turn off for e.g. WGAN-GP).
        return_features: the default of ``forward``'s ``return_features``.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 32, 32),
        base_channels: int | None = None,
        num_classes: int = 0,
        attention_resolution: int | None = None,
        spectral_norm: bool = True,
        return_features: bool = False,
    ) -> None:
        super().__init__()
        size = check_image_shape(image_shape, "ResNetDiscriminator", tuple(_D_PLAN))
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.return_features = return_features
        shifts, downs = _D_PLAN[size]
        base = _D_DEFAULT_CHANNELS[size] if base_channels is None else base_channels
        widths = _widths("ResNetDiscriminator", base, shifts)
        resolutions: list[int] = []
        resolution = size
        for down in downs:
            resolution = resolution // 2 if down else resolution
            resolutions.append(resolution)
        attention_at = _attention_index("ResNetDiscriminator", attention_resolution, resolutions)

        self.blocks = nn.Sequential()
        channels = image_shape[0]
        for i, (width, down) in enumerate(zip(widths, downs)):
            self.blocks.append(
                ResBlockDown(channels, width, downsample=down, optimized=i == 0, spectral_norm=spectral_norm)
            )
            if i == attention_at:
                self.blocks.append(SelfAttention(width, spectral_norm=spectral_norm))
            channels = width
        self.feature_dim = channels
        self.linear = maybe_spectral_norm(init_xavier(nn.Linear(channels, 1)), spectral_norm)
        self.embedding: nn.Embedding | None = None
        if num_classes > 0:
            embedding = nn.Embedding(num_classes, channels)
            nn.init.xavier_uniform_(embedding.weight)
            self.embedding = maybe_spectral_norm(embedding, spectral_norm)

    def forward(
        self, x: Tensor, labels: Tensor | None = None, return_features: bool | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Logits of shape (N, 1), or ``(logits, features)`` with the (N, feature_dim) sum-pooled features.

        ``labels`` (N,) are required for a projection discriminator and ignored otherwise.
        """
        features = torch.relu(self.blocks(x)).sum(dim=(2, 3))
        logits = self.linear(features)
        if self.embedding is not None:
            if labels is None:
                raise ValueError(
                    f"ResNetDiscriminator is a projection discriminator (num_classes={self.num_classes}): pass labels"
                )
            logits = logits + (self.embedding(labels) * features).sum(dim=1, keepdim=True)
        if self.return_features if return_features is None else return_features:
            return logits, features
        return logits
