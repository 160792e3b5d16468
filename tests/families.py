"""Tiny configurations of every registered family, for the contract tests (one entry per family).

Each entry gives constructor kwargs small enough to train a step in well under a second on a CPU, and a function
that makes one batch in the format the family's datamodule produces. Adding a family = one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


def image_batch(shape: tuple[int, ...], n: int = 4, num_classes: int = 10) -> Callable[[], Any]:
    """A (images, labels) batch like MNISTDataModule's."""

    def make() -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        return torch.rand(n, *shape, generator=g) * 2 - 1, torch.randint(num_classes, (n,), generator=g)

    return make


@dataclass
class FamilySpec:
    kwargs: dict[str, Any]
    batch: Callable[[], Any]
    #: attribute names of the networks whose parameters must change in one training step
    trained: tuple[str, ...] = ("generator", "discriminator")
    #: does ``sample(n)`` make images from noise (False for image-to-image families)
    samples_from_noise: bool = True
    #: does a step update a discriminator (False for the autoencoder baselines: one update per batch, d_steps stays 0)
    adversarial: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


MNIST_SHAPE = (1, 28, 28)

TINY: dict[str, FamilySpec] = {
    "GAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_hidden_dims=(16,), d_hidden_dims=(16,)),
        batch=image_batch(MNIST_SHAPE),
    ),
    "DCGAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=4, d_channels=4),
        batch=image_batch(MNIST_SHAPE),
    ),
    "BiGAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=4, e_channels=4, d_channels=4,
                    d_hidden_dim=8, num_grid_samples=8, num_grid_reconstructions=4),
        batch=image_batch(MNIST_SHAPE),
        trained=("generator", "encoder", "discriminator"),
    ),
    "Autoencoder": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=4, e_channels=4,
                    num_grid_samples=8, num_grid_reconstructions=4),
        batch=image_batch(MNIST_SHAPE),
        trained=("generator", "encoder"),
        adversarial=False,
    ),
    "VAE": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=4, e_channels=4,
                    num_grid_samples=8, num_grid_reconstructions=4),
        batch=image_batch(MNIST_SHAPE),
        trained=("generator", "encoder"),
        adversarial=False,
    ),
    "CGAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_embed_dim=4, d_embed_dim=4, g_channels=4,
                    d_channels=4),
        batch=image_batch(MNIST_SHAPE),
    ),
    "ACGAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_embed_dim=4, g_channels=4, d_channels=4),
        batch=image_batch(MNIST_SHAPE),
    ),
    "WGAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=4, d_channels=4, n_critic=1),
        batch=image_batch(MNIST_SHAPE),
    ),
    "WGANGP": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=4, d_channels=4, n_critic=1),
        batch=image_batch(MNIST_SHAPE),
    ),
    "SNGAN": FamilySpec(
        kwargs=dict(image_shape=(3, 32, 32), num_classes=0, latent_dim=8, g_channels=8, d_channels=8, n_critic=1),
        batch=image_batch((3, 32, 32)),
    ),
    "SAGAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=8, d_channels=8, n_critic=1),
        batch=image_batch(MNIST_SHAPE),
    ),
}
