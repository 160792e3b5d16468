"""DF-GAN networks (Tao et al. 2022, "DF-GAN: A Simple and Effective Baseline for Text-to-Image Synthesis";
tobran/DF-GAN, ``code/models/GAN.py``).

- G: z -> ``Linear`` -> (8 ngf) x 4 x 4, then one UPBlock per doubling, each: nearest upsampling, a shortcut (1x1
  convolution when the width changes) plus a residual branch *fusion, 3x3 conv, fusion, 3x3 conv*; a fusion block
  is two (affine, LeakyReLU(0.2)) pairs whose per-channel scale and shift are MLPs of the condition
  ``cat(z, sentence)``, the last layer of the scale MLP initialised to weight 0 / bias 1 and of the shift MLP to
  0 / 0 (an identity map at the start). Then LeakyReLU, a 3x3 convolution to the image channels, tanh.
- D: a 3x3 convolution, then one DownBlock per halving (4x4 stride-2 conv, LeakyReLU, 3x3 conv, LeakyReLU as the
  residual, a 1x1-conv + 2x2 average-pool shortcut, residual scaled by a learned gamma initialised to 0) down to
  4x4; the head (NetC) concatenates the sentence vector replicated over the 4x4 map, then a 3x3 conv to 2 ndf,
  LeakyReLU, and a 4x4 conv to one logit.

Widths as the official ``get_G_in_out_chs``/``get_D_in_out_chs``: ``nf * min(2^i, 8)`` per level. Deviations: a
28x28 image (MNIST) starts from and ends at 7x7 instead of 4x4 (two doublings), and D's forward can also score the
images against mismatched sentences by rolling its features (as the official training loop does with
``torch.cat((real_features[1:], real_features[0:1]))``), so one call through a DDP wrapper gives both.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gans.networks.dcgan import dcgan_stages
from lightning_gans.networks.text import ConditioningAugmentation
from lightning_gans.networks.vae import gaussian_kl

__all__ = ["Affine", "DFDiscriminator", "DFGenerator", "FusionBlock"]


def _widths(nf: int, stages: int) -> list[int]:
    """Feature widths from the largest map down to the smallest: ``nf * min(2^i, 8)`` for i = 0..stages."""
    return [nf * min(2**i, 8) for i in range(stages + 1)]


class Affine(nn.Module):
    """``gamma(c) * x + beta(c)`` with per-channel MLPs of the condition c (gamma starts at 1, beta at 0).

    Args:
        cond_dim: size of the condition vector.
        channels: channels of the feature map.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Sequential(nn.Linear(cond_dim, channels), nn.ReLU(True), nn.Linear(channels, channels))
        self.beta = nn.Sequential(nn.Linear(cond_dim, channels), nn.ReLU(True), nn.Linear(channels, channels))
        nn.init.zeros_(self.gamma[2].weight)
        nn.init.ones_(self.gamma[2].bias)
        nn.init.zeros_(self.beta[2].weight)
        nn.init.zeros_(self.beta[2].bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.gamma(cond)[:, :, None, None] * x + self.beta(cond)[:, :, None, None]


class FusionBlock(nn.Module):
    """DF-GAN's DFBlock: affine, LeakyReLU(0.2), affine, LeakyReLU(0.2).

    Args:
        cond_dim: size of the condition vector.
        channels: channels of the feature map.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.affine0, self.affine1 = Affine(cond_dim, channels), Affine(cond_dim, channels)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        x = F.leaky_relu(self.affine0(x, cond), 0.2)
        return F.leaky_relu(self.affine1(x, cond), 0.2)


class _UpBlock(nn.Module):
    def __init__(self, cond_dim: int, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.fuse1, self.c1 = FusionBlock(cond_dim, in_ch), nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.fuse2, self.c2 = FusionBlock(cond_dim, out_ch), nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2)
        h = self.c2(self.fuse2(self.c1(self.fuse1(x, cond)), cond))
        return self.shortcut(x) + h


class _DownBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False),
            nn.LeakyReLU(0.2, True),
        )
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.shortcut(x), 2) + self.gamma * self.residual(x)


class DFGenerator(nn.Module):
    """(z, condition) -> image through affine fusion blocks.

    Args:
        latent_dim: size of z.
        text_dim: size of the text condition (the sentence vector, or its conditioning-augmentation sample).
        image_shape: (C, H, W) with H = W = 4 * 2^k or 7 * 2^k.
        base_channels: ngf (the official default is 32 for 256x256 birds, 64 for COCO).
        ca_dim: size of a conditioning-augmentation code (StackGAN) used instead of the sentence vector; 0: none
            (DF-GAN's default).
    """

    def __init__(
        self,
        latent_dim: int,
        text_dim: int,
        image_shape: tuple[int, int, int],
        base_channels: int = 32,
        ca_dim: int = 0,
    ) -> None:
        super().__init__()
        self.ca = ConditioningAugmentation(text_dim, ca_dim) if ca_dim else None
        text_dim = ca_dim or text_dim
        channels, height, width = image_shape
        if height != width:
            raise ValueError(f"DF-GAN makes square images, got {height}x{width}")
        self.base, k = dcgan_stages(height)
        widths = _widths(base_channels, k)[::-1]
        self.fc = nn.Linear(latent_dim, widths[0] * self.base * self.base)
        cond_dim = latent_dim + text_dim
        self.blocks = nn.ModuleList(_UpBlock(cond_dim, a, b) for a, b in itertools.pairwise(widths))
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2, True), nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh())
        self.first_width = widths[0]

    def forward(self, z: Tensor, text: Tensor, return_kl: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Images from noise and sentence vectors; with ``return_kl`` also the conditioning augmentation's KL term
        (``KL(N(mu, sigma) || N(0, I))`` per dimension, batch mean; 0 without it)."""
        z = z.flatten(1)
        kl = z.new_zeros(())
        if self.ca is not None:
            text, mu, logvar = self.ca(text)
            kl = gaussian_kl(mu, logvar) / mu.shape[1]
        x = self.fc(z).view(z.shape[0], self.first_width, self.base, self.base)
        cond = torch.cat([z, text], dim=1)
        for block in self.blocks:
            x = block(x, cond)
        images = self.to_rgb(x)
        return (images, kl) if return_kl else images


class DFDiscriminator(nn.Module):
    """(image, sentence) -> logit: a residual down-sampling trunk and DF-GAN's joint head (NetC).

    Args:
        image_shape: (C, H, W) with H = W = 4 * 2^k or 7 * 2^k.
        text_dim: size of the sentence vector.
        base_channels: ndf.
    """

    def __init__(self, image_shape: tuple[int, int, int], text_dim: int, base_channels: int = 32) -> None:
        super().__init__()
        channels, height, width = image_shape
        if height != width:
            raise ValueError(f"DF-GAN takes square images, got {height}x{width}")
        self.base, k = dcgan_stages(height)
        widths = _widths(base_channels, k)
        self.conv_img = nn.Conv2d(channels, widths[0], 3, 1, 1)
        self.blocks = nn.Sequential(*(_DownBlock(a, b) for a, b in itertools.pairwise(widths)))
        self.joint = nn.Sequential(
            nn.Conv2d(widths[-1] + text_dim, base_channels * 2, 3, 1, 1, bias=False),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(base_channels * 2, 1, self.base, 1, 0, bias=False),
        )

    def score(self, features: Tensor, sentence: Tensor) -> Tensor:
        text = sentence[:, :, None, None].expand(-1, -1, self.base, self.base)
        return self.joint(torch.cat([features, text], dim=1)).flatten()

    def forward(
        self, images: Tensor, sentence: Tensor, mismatch: tuple[Tensor, Tensor] | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Logits of (images, sentence); with ``mismatch = (image_rows, sentence_rows)`` also the logits of the
        mismatched pairs (images[image_rows], sentence[sentence_rows]), from the same image features."""
        features = self.blocks(self.conv_img(images))
        logits = self.score(features, sentence)
        if mismatch is None:
            return logits
        image_rows, sentence_rows = mismatch
        return logits, self.score(features[image_rows], sentence[sentence_rows])
