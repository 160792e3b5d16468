"""VAE: Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (arXiv:1312.6114).

A Gaussian encoder q(z|x) = N(mu(x), diag(exp(logvar(x)))), a decoder p(x|z) (``self.generator``) and the prior
p(z) = N(0, I). One optimizer over encoder and decoder minimises the negative ELBO with a beta (Higgins et al.
2017) weight on the KL term, on one reparameterised sample z = mu + sigma * eps per image (the paper's L = 1):

    loss = recon_loss + kl_weight * KL(q(z|x) || N(0, I))

both summed over pixels / latent dimensions and averaged over the batch (``kl_weight = 1`` is the ELBO itself).
The reconstruction term is a Bernoulli (``"bce"``, as in the paper's MNIST experiments) or fixed-variance Gaussian
(``"mse"``) likelihood; see :mod:`lightning_gans.models.autoencoder` for both. Logged: ``train/loss``,
``train/recon_loss``, ``train/kl`` (the unweighted KL) and the same on validation.

``sample(n)`` decodes z ~ N(0, I), the prior, through the base class unchanged. ``encode(x)`` returns the posterior
mean. Deviations: DCGAN-style convolutional encoder/decoder instead of the paper's one-hidden-layer MLPs, images in
[-1, 1] with a ``tanh`` decoder (the Bernoulli loss uses its exact logits), Adam. Step counting, the single
optimizer, the refused discriminator options and the grids (samples, a fixed real batch, its reconstructions) are
the autoencoder's.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import torch
from torch import Tensor

from lightning_gans.core import GANModule, unwrap
from lightning_gans.models.autoencoder import (
    RECONSTRUCTIONS,
    FixedBatch,
    LogitConvDecoder,
    check_no_discriminator_options,
    decode,
    eval_mode,
    reconstruction_loss,
    samples_and_reconstructions,
)
from lightning_gans.networks.vae import ConvEncoder, gaussian_kl, reparameterize
from lightning_gans.optim import make_optimizer


class VAE(GANModule):
    """Variational autoencoder with convolutional encoder and decoder.

    Args:
        kl_weight: weight (beta) of the KL term; 1 is the ELBO, > 1 a beta-VAE, < 1 sharper reconstructions.
        reconstruction: reconstruction loss, ``"bce"`` (Bernoulli on [0, 1]-mapped pixels) or ``"mse"``.
        e_channels: width of the encoder's first convolution (it doubles at each step).
        g_channels: width of the decoder's last hidden layer.
        num_grid_reconstructions: real images (and their reconstructions) in the sample grid; 0 shows samples only.
        **kwargs: the options every family shares (:class:`lightning_gans.core.GANModule`): image_shape,
            latent_dim, ema_decay, optimizer_g, lr_g, betas, spectral_norm_g, num_grid_samples. The discriminator
            options are refused (there is no discriminator).
    """

    def __init__(
        self,
        *,
        kl_weight: float = 1.0,
        reconstruction: str = "bce",
        e_channels: int = 64,
        g_channels: int = 64,
        num_grid_reconstructions: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        check_no_discriminator_options(self)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"Unknown reconstruction loss {reconstruction!r}. Valid: {', '.join(RECONSTRUCTIONS)}.")
        if kl_weight < 0:
            raise ValueError(f"kl_weight must be 0 or more, got {kl_weight}")
        if self.latent_dim < 1:
            raise ValueError(f"VAE needs latent_dim >= 1, got {self.latent_dim}")
        self.kl_weight = kl_weight
        self.reconstruction = reconstruction
        self.encoder = ConvEncoder(self.image_shape, self.latent_dim, variational=True, base_channels=e_channels)
        self.generator = LogitConvDecoder(self.latent_dim, self.image_shape, g_channels)
        self.fixed_real = FixedBatch(num_grid_reconstructions, self.image_shape)
        self.finalize_networks()

    # ------------------------------------------------------------------ optimisation
    def generator_parameters(self):
        """Encoder and decoder: the one optimizer updates both."""
        return chain(self.generator.parameters(), self.encoder.parameters())

    def configure_optimizers(self):
        """One optimizer (``optimizer_g``, ``lr_g``, ``betas``) over encoder + decoder."""
        return make_optimizer(self.generator_parameters(), self.optimizer_g, self.lr_g, self.betas)

    def loss_terms(self, x: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """``({"loss": ..., "recon_loss": ..., "kl": ...}, z)`` on the batch ``x``: ``loss = recon_loss + kl_weight *
        kl`` with one posterior sample ``z`` per image."""
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar)
        recon = reconstruction_loss(self.generator(z, pre_tanh=True), x, self.reconstruction)
        kl = gaussian_kl(mu, logvar)
        return {"loss": recon + self.kl_weight * kl, "recon_loss": recon, "kl": kl}, z

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        self.fixed_real.fill(x)
        opt = self.optimizers()
        terms, _ = self.loss_terms(x)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(terms["loss"])
        opt.step()
        self.after_generator_step(**terms)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        for name, value in self.loss_terms(x)[0].items():
            self.log(f"val/{name}", value, on_step=False, on_epoch=True, batch_size=x.shape[0])

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Posterior means (N, latent_dim) of images in [-1, 1]: encoder in eval mode, no grad."""
        encoder = unwrap(self.encoder)
        with eval_mode(encoder):
            mu, _ = encoder(x.to(self.device))
        return mu

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decoded posterior means of ``x``: images in [-1, 1] (eval mode, EMA decoder when on)."""
        return decode(self, self.encode(x))

    def grid_images(self) -> Tensor:
        """Prior samples of the fixed noise, the fixed real batch and its reconstructions."""
        return samples_and_reconstructions(self)


__all__ = ["VAE"]
