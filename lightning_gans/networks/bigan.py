"""BiGAN / ALI networks: an encoder x -> z, a generator z -> x and a discriminator on (x, z) pairs.

Follows Donahue et al. 2017, "Adversarial Feature Learning" (BiGAN, jeffdonahue/bigan) and Dumoulin et al. 2017,
"Adversarially Learned Inference" (ALI, IshmaelBelghazi/ALI): the discriminator sees joint pairs (x, E(x)) and
(G(z), z); its image branch is convolutional, its latent branch an MLP, and a joint MLP maps the concatenation to
one logit; dropout 0.2 in every discriminator layer as in ALI. The ALI encoder is stochastic (Gaussian with the
reparameterisation trick), the BiGAN one deterministic; ``stochastic`` chooses.

Deviations: DCGAN-style trunks (4x4 stride-2 convolutions, LeakyReLU(0.2)) instead of the papers' per-dataset
stacks (ALI's maxout and 1x1-convolution layers); the discriminator has no batch norm, so gradient penalties stay
per sample. Supported image sizes: 28, 32, 64, 128 (square, any number of channels).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_gans.networks.blocks import ConvDownStack, check_image_shape, maybe_spectral_norm
from lightning_gans.networks.vae import ConvDecoder, reparameterize

__all__ = ["BiGANEncoder", "BiGANGenerator", "JointDiscriminator"]


class BiGANEncoder(nn.Module):
    """Encoder E: image -> latent code, deterministic (BiGAN) or a reparameterised Gaussian sample (ALI).

    Args:
        image_shape: ``(C, H, W)`` of the input; square, of size 28, 32, 64 or 128.
        latent_dim: size of the code (the generator's noise size).
        base_channels: width after the first convolution (it doubles at each step).
        stochastic: sample ``z = mu + sigma * eps`` (ALI) instead of returning a deterministic code (BiGAN).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 64,
        base_channels: int = 64,
        stochastic: bool = False,
    ) -> None:
        super().__init__()
        size = check_image_shape(image_shape, "BiGANEncoder")
        self.latent_dim = latent_dim
        self.stochastic = stochastic
        self.trunk = ConvDownStack(image_shape[0], size, base_channels, batch_norm=True)
        flat = self.trunk.out_channels * self.trunk.out_size**2
        self.head = nn.Linear(flat, 2 * latent_dim if stochastic else latent_dim)

    def distribution(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)`` of the Gaussian posterior; only for a stochastic encoder."""
        if not self.stochastic:
            raise ValueError("BiGANEncoder.distribution needs stochastic=True")
        mu, logvar = self.head(self.trunk(x).flatten(1)).chunk(2, dim=1)
        return mu, logvar

    def forward(self, x: Tensor) -> Tensor:
        """The code z of shape (N, latent_dim): deterministic, or a differentiable sample when stochastic."""
        if self.stochastic:
            return reparameterize(*self.distribution(x))
        return self.head(self.trunk(x).flatten(1))


class BiGANGenerator(ConvDecoder):
    """Generator G: noise -> image in [-1, 1]; the DCGAN-style :class:`~lightning_gans.networks.vae.ConvDecoder`.

    Args:
        latent_dim: size of the noise vector.
        image_shape: ``(C, H, W)`` of the output; square, of size 28, 32, 64 or 128.
        base_channels: width of the last hidden feature map (it doubles towards the start).
    """


class JointDiscriminator(nn.Module):
    """Discriminator on (x, z) pairs: conv branch on x, MLP branch on z, joint MLP -> one logit (no sigmoid).

    Args:
        image_shape: ``(C, H, W)`` of the images; square, of size 28, 32, 64 or 128.
        latent_dim: size of the codes.
        base_channels: width after the image branch's first convolution (it doubles at each step).
        hidden_dim: width of the latent branch; the joint layers use ``2 * hidden_dim``.
        dropout: dropout probability after every hidden layer (0.2 in ALI; 0 turns it off).
        spectral_norm: spectral normalisation on every layer.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 64,
        base_channels: int = 64,
        hidden_dim: int = 512,
        dropout: float = 0.2,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        size = check_image_shape(image_shape, "JointDiscriminator")
        self.latent_dim = latent_dim
        self.x_branch = ConvDownStack(
            image_shape[0], size, base_channels, batch_norm=False, spectral_norm=spectral_norm, dropout=dropout
        )
        x_features = self.x_branch.out_channels * self.x_branch.out_size**2

        def layer(n_in: int, n_out: int) -> list[nn.Module]:
            return [maybe_spectral_norm(nn.Linear(n_in, n_out), spectral_norm), nn.LeakyReLU(0.2), nn.Dropout(dropout)]

        self.z_branch = nn.Sequential(*layer(latent_dim, hidden_dim), *layer(hidden_dim, hidden_dim))
        self.joint = nn.Sequential(
            *layer(x_features + hidden_dim, 2 * hidden_dim), *layer(2 * hidden_dim, 2 * hidden_dim)
        )
        self.feature_dim = 2 * hidden_dim
        self.out = maybe_spectral_norm(nn.Linear(2 * hidden_dim, 1), spectral_norm)

    def forward(self, x: Tensor, z: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Logits (N, 1) for the pairs ``(x[i], z[i])``, or ``(logits, features)`` with the (N, feature_dim) joint
        features before the last layer."""
        if x.shape[0] != z.shape[0]:
            raise ValueError(f"x and z batch sizes differ: {x.shape[0]} vs {z.shape[0]}")
        features = self.joint(torch.cat([self.x_branch(x).flatten(1), self.z_branch(z)], dim=1))
        logits = self.out(features)
        return (logits, features) if return_features else logits
