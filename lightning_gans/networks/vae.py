"""Convolutional encoder and decoder for the autoencoder and VAE baselines.

Follows Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (Gaussian encoder, reparameterisation trick) with
DCGAN-style convolutional trunks (Radford et al. 2016) as in the common PyTorch VAE baselines (e.g.
AntixK/PyTorch-VAE): stride-2 4x4 convolutions with batch norm and LeakyReLU down to 4x4 (7x7 for 28x28 images), a
linear layer to the latent code, and the mirror image with transposed convolutions and a final ``tanh`` (images in
[-1, 1], like the generators). Supported image sizes: 28, 32, 64, 128 (square, any number of channels).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_gans.networks.blocks import ConvDownStack, ConvUpStack, check_image_shape

__all__ = ["ConvDecoder", "ConvEncoder", "gaussian_kl", "reparameterize"]


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """Sample ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``; differentiable in mu and logvar."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` summed over latent dimensions and averaged over the batch."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()


class ConvEncoder(nn.Module):
    """Image -> latent code: strided convolutions, then linear heads.

    Args:
        image_shape: ``(C, H, W)`` of the input; square, of size 28, 32, 64 or 128.
        latent_dim: size of the latent code.
        variational: return ``(mu, logvar)`` (VAE) instead of a deterministic code ``z`` (autoencoder).
        base_channels: width after the first convolution (it doubles at each step).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 64,
        variational: bool = True,
        base_channels: int = 64,
    ) -> None:
        super().__init__()
        size = check_image_shape(image_shape, "ConvEncoder")
        self.latent_dim = latent_dim
        self.variational = variational
        self.trunk = ConvDownStack(image_shape[0], size, base_channels, batch_norm=True)
        flat = self.trunk.out_channels * self.trunk.out_size**2
        self.head = nn.Linear(flat, 2 * latent_dim if variational else latent_dim)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """``(mu, logvar)`` of shape (N, latent_dim) each when variational, else ``z`` (N, latent_dim)."""
        out = self.head(self.trunk(x).flatten(1))
        if self.variational:
            mu, logvar = out.chunk(2, dim=1)
            return mu, logvar
        return out


class ConvDecoder(nn.Module):
    """Latent code -> image in [-1, 1]: linear to a 4x4 (7x7) map, transposed convolutions, ``tanh``.

    ``decoder(z)`` is the image; ``decoder(z, pre_tanh=True)`` the values before ``tanh``, which a Bernoulli
    reconstruction loss needs as logits. Both go through ``forward``, so a DDP wrapper sees every call.

    Args:
        latent_dim: size of the latent code.
        image_shape: ``(C, H, W)`` of the output; square, of size 28, 32, 64 or 128.
        base_channels: width of the last hidden feature map (it doubles towards the start).
    """

    def __init__(
        self, latent_dim: int = 64, image_shape: tuple[int, int, int] = (1, 28, 28), base_channels: int = 64
    ) -> None:
        super().__init__()
        size = check_image_shape(image_shape, type(self).__name__)
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        self.net = ConvUpStack(latent_dim, image_shape[0], size, base_channels)

    def forward(self, z: Tensor, pre_tanh: bool = False) -> Tensor:
        out = self.net(z)
        return out if pre_tanh else torch.tanh(out)
