"""VAE: Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (arXiv:1312.6114).

A Gaussian encoder q(z|x) = N(mu(x), diag(exp(logvar(x)))), a decoder p(x|z) (``self.generator``) and the prior
p(z) = N(0, I). One optimizer over encoder and decoder minimises the negative ELBO with a beta (Higgins et al.
2017) weight on the KL term, on one reparameterised sample z = mu + sigma * eps per image (the paper's L = 1):

    loss = recon_loss + kl_weight * KL(q(z|x) || N(0, I))

both summed over pixels / latent dimensions and averaged over the batch (``kl_weight = 1`` is the ELBO itself).
The reconstruction term is a Bernoulli (``"bce"``, as in the paper's MNIST experiments) or fixed-variance Gaussian
(``"mse"``) likelihood; see :func:`lightning_gans.losses.reconstruction_loss` for both. Logged: ``train/loss``,
``train/recon_loss``, ``train/kl`` (the unweighted KL) and the same on validation.

``sample(n)`` decodes z ~ N(0, I), the prior, through the base class unchanged. ``encode(x)`` returns the posterior
mean. Deviations: DCGAN-style convolutional encoder/decoder instead of the paper's one-hidden-layer MLPs, images in
[-1, 1] with a ``tanh`` decoder (the Bernoulli loss uses its exact logits), Adam. As for the autoencoder:
one update of encoder and decoder per batch (counted as a G step), one optimizer (``optimizer``, ``lr``, ``betas``),
no stabilisation toolbox (there is no discriminator), and grids of samples, a fixed real batch and its
reconstructions.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import torch
from torch import Tensor

from lightning_gans.core import GANModule, unwrap
from lightning_gans.ema import ema_copy
from lightning_gans.losses import check_reconstruction_name, reconstruction_loss
from lightning_gans.networks.vae import ConvDecoder, ConvEncoder, gaussian_kl, reparameterize
from lightning_gans.optim import check_optimizer, make_optimizer
from lightning_gans.reconstruction import FixedImages, decode, eval_mode, samples_and_reconstructions


class VAE(GANModule):
    """Variational autoencoder with convolutional encoder and decoder.

    Args:
        kl_weight: weight (beta) of the KL term; 1 is the ELBO, > 1 a beta-VAE, < 1 sharper reconstructions.
        reconstruction: reconstruction loss, ``"bce"`` (Bernoulli on [0, 1]-mapped pixels) or ``"mse"``.
        latent_dim: size of the latent code.
        e_channels: width of the encoder's first convolution (it doubles at each step).
        g_channels: width of the decoder's last hidden layer.
        num_grid_reconstructions: real images (and their reconstructions) in the sample grid; 0 shows samples only.
        optimizer: the optimizer of encoder + decoder (adam, adamw, rmsprop, sgd).
        lr: its learning rate.
        betas: Adam's betas (SGD uses the first as momentum).
        ema_decay: decay of the EMA copy of the decoder used for sampling and evaluation (0 = off).
        image_shape: (C, H, W) of the images; linked from the datamodule.
        num_classes: classes of the data (unused); linked from the datamodule.
        num_grid_samples: prior samples in the grid.
    """

    def __init__(
        self,
        *,
        kl_weight: float = 1.0,
        reconstruction: str = "bce",
        latent_dim: int = 100,
        e_channels: int = 64,
        g_channels: int = 64,
        num_grid_reconstructions: int = 32,
        optimizer: str = "adam",
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        ema_decay: float = 0.0,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 0,
        num_grid_samples: int = 64,
    ) -> None:
        super().__init__(
            image_shape=image_shape, num_classes=num_classes, latent_dim=latent_dim, num_grid_samples=num_grid_samples
        )
        self.save_hyperparameters()
        self.reconstruction = check_reconstruction_name(reconstruction)
        check_optimizer(optimizer, lr)
        if kl_weight < 0:
            raise ValueError(f"kl_weight must be 0 or more, got {kl_weight}")
        if latent_dim < 1:
            raise ValueError(f"VAE needs latent_dim >= 1, got {latent_dim}")
        self.kl_weight = kl_weight
        self.encoder = ConvEncoder(self.image_shape, latent_dim, variational=True, base_channels=e_channels)
        self.generator = ConvDecoder(latent_dim, self.image_shape, g_channels)
        self.fixed_real = FixedImages(num_grid_reconstructions, self.image_shape)
        self.generator_ema = ema_copy(self.generator, ema_decay)

    def configure_optimizers(self):
        """One optimizer over encoder + decoder."""
        params = chain(self.generator.parameters(), self.encoder.parameters())
        return make_optimizer(params, self.hparams.optimizer, self.hparams.lr, self.hparams.betas)

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
        # Minimise the negative ELBO (beta-weighted) over encoder and decoder together.
        terms, _ = self.loss_terms(x)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(terms["loss"])
        opt.step()
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        self.count_g_step(**terms)

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
        return samples_and_reconstructions(self, self.fixed_real)
