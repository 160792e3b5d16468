"""GAN-INT-CLS networks (Reed et al. 2016, "Generative Adversarial Text to Image Synthesis"; reedscot/icml2016,
``main_cls_int.lua``): DCGAN networks that see a sentence vector.

- G: the sentence vector -> ``Linear(text_dim, 128)`` + LeakyReLU(0.2), concatenated with z, -> a DCGAN generator.
- D: a DCGAN trunk down to its smallest feature map (4x4 for 32/64/128 images, 7x7 for 28x28); the sentence vector
  -> ``Linear(text_dim, 128)`` + batch norm + LeakyReLU(0.2), replicated over that map and concatenated to the
  features; then a 1x1 convolution (batch norm, LeakyReLU) and a convolution over the whole map to one logit.

Deviations: the official script inserts a residual block (1x1 and 3x3 convolutions) after G's 4x4 and 8x8 stages and
D's 4x4 stage, which the paper does not describe; they are left out, so these are the paper's DCGAN networks. D
returns a logit (the sigmoid lives in the loss), and :meth:`TextConditionalDiscriminator.forward` can also score the
same images against mismatched sentences by rolling the image features (one trunk pass for real and mismatched
pairs).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_gans.networks.dcgan import DCGANGenerator, dcgan_stages, init_dcgan_weights

__all__ = ["TextConditionalDCGANGenerator", "TextConditionalDiscriminator"]


class TextConditionalDCGANGenerator(nn.Module):
    """(z, sentence) -> image: the projected sentence concatenated with z into a DCGAN generator.

    Args:
        latent_dim: size of z.
        text_dim: size of the sentence vector.
        image_shape: (C, H, W), a size DCGAN can make.
        base_channels: channels of G's last hidden layer (ngf).
        projection_dim: size of the projected sentence (the paper's 128).
    """

    def __init__(
        self,
        latent_dim: int,
        text_dim: int,
        image_shape: tuple[int, int, int],
        base_channels: int = 64,
        projection_dim: int = 128,
    ) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(text_dim, projection_dim), nn.LeakyReLU(0.2, True))
        self.net = DCGANGenerator(latent_dim + projection_dim, image_shape, base_channels)
        self.project.apply(init_dcgan_weights)

    def forward(self, z: Tensor, sentence: Tensor) -> Tensor:
        return self.net(torch.cat([z.flatten(1), self.project(sentence)], dim=1))


class TextConditionalDiscriminator(nn.Module):
    """(image, sentence) -> logit, matching-aware: the sentence joins the image features at the smallest map.

    Args:
        image_shape: (C, H, W), a size DCGAN can make.
        text_dim: size of the sentence vector.
        base_channels: channels of the first layer (ndf).
        projection_dim: size of the projected sentence (the paper's 128).
    """

    def __init__(
        self, image_shape: tuple[int, int, int], text_dim: int, base_channels: int = 64, projection_dim: int = 128
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        if height != width:
            raise ValueError(f"the GAN-INT-CLS discriminator takes square images, got {height}x{width}")
        base, k = dcgan_stages(height)
        ch = base_channels
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(k - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.trunk = nn.Sequential(*layers)
        self.base = base
        self.project = nn.Sequential(
            nn.Linear(text_dim, projection_dim), nn.BatchNorm1d(projection_dim), nn.LeakyReLU(0.2, True)
        )
        self.joint = nn.Sequential(
            nn.Conv2d(ch + projection_dim, ch, 1, bias=False),
            nn.BatchNorm2d(ch),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ch, 1, base, 1, 0, bias=False),
        )
        self.apply(init_dcgan_weights)

    def score(self, features: Tensor, text: Tensor) -> Tensor:
        """Logits of image features and *projected* sentences."""
        text = text[:, :, None, None].expand(-1, -1, self.base, self.base)
        return self.joint(torch.cat([features, text], dim=1)).flatten()

    def forward(
        self, images: Tensor, sentence: Tensor, mismatch: tuple[Tensor, Tensor] | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Logits of (images, sentence); with ``mismatch = (image_rows, sentence_rows)`` also the logits of the
        mismatched pairs (images[image_rows], sentence[sentence_rows]), from the same image features."""
        features, text = self.trunk(images), self.project(sentence)  # the text's batch norm sees the whole batch
        logits = self.score(features, text)
        if mismatch is None:
            return logits
        image_rows, sentence_rows = mismatch
        return logits, self.score(features[image_rows], text[sentence_rows])
