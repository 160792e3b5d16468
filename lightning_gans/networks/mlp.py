"""Fully connected generator and discriminator (Goodfellow et al. 2014, "Generative Adversarial Nets").

Deviations from the paper, as in most modern re-implementations: LeakyReLU(0.2) instead of maxout units in D,
LeakyReLU instead of ReLU in G, tanh output (images in [-1, 1]) instead of sigmoid, and D returns a logit.
Works for any sample shape, including 2-D points of the Gaussian-mixture experiments.
"""

from __future__ import annotations

import math

from torch import Tensor, nn


class MLPGenerator(nn.Module):
    """z -> hidden layers -> tanh sample of ``image_shape``.

    Args:
        latent_dim: size of z.
        image_shape: shape of one sample, (C, H, W) or (D,).
        hidden_dims: widths of the hidden layers.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        image_shape: tuple[int, ...] = (1, 28, 28),
        hidden_dims: tuple[int, ...] = (256, 512, 1024),
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        layers += [nn.Linear(width, math.prod(self.image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    """Flattened sample -> hidden layers -> one logit.

    Args:
        image_shape: shape of one sample.
        hidden_dims: widths of the hidden layers.
        dropout: dropout after each hidden layer (the paper uses dropout in D).
    """

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 28, 28),
        hidden_dims: tuple[int, ...] = (512, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        features = self.features(x)
        logits = self.head(features).squeeze(1)
        return (logits, features) if return_features else logits
