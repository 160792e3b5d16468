"""Autoencoder: the deterministic baseline the VAE and BiGAN grew from (Hinton & Salakhutdinov 2006, with the
DCGAN-style convolutional trunks of :mod:`lightning_gans.networks.vae`).

An encoder E maps an image to a code z, the decoder (``self.generator``) maps it back, and one optimizer over both
minimises the reconstruction loss. It shares the GAN families' CLI, datamodules, sample grids, ``predict`` and
evaluation, so its numbers compare with theirs. Choices made here, shared with :class:`~lightning_gans.models.VAE`:

**Reconstruction loss** (``reconstruction``, :func:`lightning_gans.losses.reconstruction_loss`), summed over pixels
and averaged over the batch (a per-image negative log-likelihood, up to constants, as in Kingma & Welling 2014 and
pytorch/examples' VAE): ``"bce"`` (default), a Bernoulli likelihood on pixels mapped to [0, 1] computed exactly from
the decoder's pre-``tanh`` output, with MNIST's grey levels as targets (not binarised), as in pytorch/examples; or
``"mse"``, the sum of squared errors on [-1, 1] pixels.

**Sampling.** Decoding z ~ N(0, I) means nothing for a plain autoencoder: nothing pulls its codes towards N(0, I).
So the autoencoder fits a Gaussian N(m, C) to the codes of its training batches (running moments, a cumulative
average for the first ``1 / code_momentum`` batches and then an exponential one, so the fit follows the moving
encoder) and samples by mapping the standard noise through it: ``z = m + C^{1/2} eps``. The noise everywhere else
(``fixed_noise``, ``predict``, ``noise``) stays N(0, I); only :meth:`Autoencoder.generate` applies the fit. The
moments are buffers, saved in checkpoints; before any training they are N(0, I). Under DDP each rank fits its own
shard's codes and rank 0's fit is the one saved.

**Step counting.** There is no discriminator: each batch is one update of encoder and decoder together, counted by
``count_g_step``; ``d_steps`` stays 0 and ``trainer.max_steps`` counts batches.

**Options.** One optimizer (``optimizer``, ``lr``, ``betas``) over encoder + decoder (the decoder is the generator).
There is no discriminator, so the stabilisation toolbox does not apply; ``ema_decay`` keeps an EMA decoder.

**Grids** show the fixed-noise samples, then a fixed batch of real training images (the first
``num_grid_reconstructions`` of the first training batch, kept in a buffer and saved in checkpoints,
:class:`lightning_gans.reconstruction.FixedImages`), then their reconstructions in the same order. Validation logs
``val/recon_loss`` on the held-out images.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import torch
from torch import Tensor, nn

from lightning_gans.core import GANModule, unwrap
from lightning_gans.counters import HostCount
from lightning_gans.ema import ema_copy
from lightning_gans.losses import check_reconstruction_name, reconstruction_loss
from lightning_gans.networks.vae import ConvDecoder, ConvEncoder
from lightning_gans.optim import check_optimizer, make_optimizer
from lightning_gans.reconstruction import FixedImages, decode, eval_mode, samples_and_reconstructions


class CodeGaussian(nn.Module):
    """A Gaussian N(m, C) fitted to codes by running first and second moments (buffers, saved in checkpoints).

    Each :meth:`update` moves the moments towards the batch's with weight ``max(momentum, 1 / n_updates)``: an exact
    average over the first ``1 / momentum`` batches, then an exponential one that forgets stale codes. Before any
    update it is N(0, I).

    Args:
        dim: size of the codes.
        momentum: weight of a new batch once the warm-up is over.
    """

    def __init__(self, dim: int, momentum: float = 0.01) -> None:
        super().__init__()
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"code_momentum must be in (0, 1], got {momentum}")
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("second_moment", torch.eye(dim))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.update_count = HostCount(self, "updates")  # read on the host: no device sync per step

    @torch.no_grad()
    def update(self, z: Tensor) -> None:
        z = z.detach().float()
        w = max(self.momentum, 1.0 / self.update_count.add(1))
        with torch.autocast(z.device.type, enabled=False):  # float32 moments under mixed precision too
            self.mean.lerp_(z.mean(0), w)
            self.second_moment.lerp_(z.T @ z / z.shape[0], w)

    @property
    def covariance(self) -> Tensor:
        cov = self.second_moment - torch.outer(self.mean, self.mean)
        return 0.5 * (cov + cov.T)

    def scale(self) -> Tensor:
        """A square root S of the covariance (S S^T = C), from its eigendecomposition (negative eigenvalues of a
        noisy estimate clamped to 0)."""
        eigvals, eigvecs = torch.linalg.eigh(self.covariance)
        return eigvecs * eigvals.clamp_min(0.0).sqrt()

    def transform(self, eps: Tensor) -> Tensor:
        """Map standard-normal ``eps`` (N, dim) to samples of N(m, C)."""
        return (self.mean + eps.float() @ self.scale().T).to(eps.dtype)


class Autoencoder(GANModule):
    """Deterministic convolutional autoencoder; samples from a Gaussian fitted to its codes.

    Args:
        reconstruction: reconstruction loss, ``"bce"`` (Bernoulli on [0, 1]-mapped pixels) or ``"mse"``.
        latent_dim: size of the code.
        e_channels: width of the encoder's first convolution (it doubles at each step).
        g_channels: width of the decoder's last hidden layer.
        code_momentum: weight of a new batch in the running Gaussian fit of the codes (after a warm-up of
            ``1 / code_momentum`` batches averaged exactly).
        num_grid_reconstructions: real images (and their reconstructions) in the sample grid; 0 shows samples only.
        optimizer: the optimizer of encoder + decoder (adam, adamw, rmsprop, sgd).
        lr: its learning rate.
        betas: Adam's betas (SGD uses the first as momentum).
        ema_decay: decay of the EMA copy of the decoder used for sampling and evaluation (0 = off).
        image_shape: (C, H, W) of the images; linked from the datamodule.
        num_classes: classes of the data (unused); linked from the datamodule.
        num_grid_samples: samples in the grid.
    """

    def __init__(
        self,
        *,
        reconstruction: str = "bce",
        latent_dim: int = 100,
        e_channels: int = 64,
        g_channels: int = 64,
        code_momentum: float = 0.01,
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
        if latent_dim < 1:
            raise ValueError(f"Autoencoder needs latent_dim >= 1, got {latent_dim}")
        self.encoder = ConvEncoder(self.image_shape, latent_dim, variational=False, base_channels=e_channels)
        self.generator = ConvDecoder(latent_dim, self.image_shape, g_channels)
        self.code_gaussian = CodeGaussian(latent_dim, code_momentum)
        self.fixed_real = FixedImages(num_grid_reconstructions, self.image_shape)
        self.generator_ema = ema_copy(self.generator, ema_decay)

    def configure_optimizers(self):
        """One optimizer over encoder + decoder."""
        params = chain(self.generator.parameters(), self.encoder.parameters())
        return make_optimizer(params, self.hparams.optimizer, self.hparams.lr, self.hparams.betas)

    def loss_terms(self, x: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """``({"loss": ..., "recon_loss": ...}, codes)`` on the batch ``x``, with the networks as they are."""
        z = self.encoder(x)
        recon = reconstruction_loss(self.generator(z, pre_tanh=True), x, self.reconstruction)
        return {"loss": recon, "recon_loss": recon}, z

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        self.fixed_real.fill(x)
        opt = self.optimizers()
        # Minimise the reconstruction loss of E and G together, then move the Gaussian fit of the codes.
        terms, z = self.loss_terms(x)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(terms["loss"])
        opt.step()
        self.code_gaussian.update(z)
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        self.count_g_step(**terms)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        terms, _ = self.loss_terms(x)
        self.log("val/recon_loss", terms["recon_loss"], on_step=False, on_epoch=True, batch_size=x.shape[0])

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Codes (N, latent_dim) of images in [-1, 1]: encoder in eval mode, no grad."""
        encoder = unwrap(self.encoder)
        with eval_mode(encoder):
            return encoder(x.to(self.device))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decoded codes of ``x``: images in [-1, 1] (eval mode, EMA decoder when on)."""
        return decode(self, self.encode(x))

    def generate(self, generator: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Decode standard noise mapped through the Gaussian fitted to the training codes."""
        return generator(self.code_gaussian.transform(z))

    def grid_images(self) -> Tensor:
        """Fixed-noise samples, the fixed real batch and its reconstructions."""
        return samples_and_reconstructions(self, self.fixed_real)
