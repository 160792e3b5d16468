"""Autoencoder: the deterministic baseline the VAE and BiGAN grew from (Hinton & Salakhutdinov 2006, with the
DCGAN-style convolutional trunks of :mod:`lightning_gans.networks.vae`).

An encoder E maps an image to a code z, the decoder (``self.generator``) maps it back, and one optimizer over both
minimises the reconstruction loss. It shares the GAN families' CLI, datamodules, sample grids, ``predict`` and
evaluation, so its numbers compare with theirs. Choices made here, shared with :class:`~lightning_gans.models.VAE`:

**Reconstruction loss** (``reconstruction``), summed over pixels and averaged over the batch (a per-image negative
log-likelihood, up to constants, as in Kingma & Welling 2014 and pytorch/examples' VAE):

- ``"bce"`` (default): a Bernoulli likelihood on pixels mapped to [0, 1]. The decoder ends in ``tanh``, and
  ``(tanh(a) + 1) / 2 = sigmoid(2a)``, so the loss is ``binary_cross_entropy_with_logits(2a, (x + 1) / 2)`` on the
  decoder's pre-``tanh`` output ``a``: exact, stable and safe under autocast. MNIST's grey levels are used as
  targets (not binarised), as in pytorch/examples.
- ``"mse"``: the sum of squared errors on [-1, 1] pixels (a Gaussian likelihood with fixed variance 1/2).

**Sampling.** Decoding z ~ N(0, I) means nothing for a plain autoencoder: nothing pulls its codes towards N(0, I).
So the autoencoder fits a Gaussian N(m, C) to the codes of its training batches (running moments, a cumulative
average for the first ``1 / code_momentum`` batches and then an exponential one, so the fit follows the moving
encoder) and samples by mapping the standard noise through it: ``z = m + C^{1/2} eps``. The noise everywhere else
(``fixed_noise``, ``predict``, ``noise``) stays N(0, I); only :meth:`Autoencoder.generate` applies the fit. The
moments are buffers, saved in checkpoints; before any training they are N(0, I). Under DDP each rank fits its own
shard's codes and rank 0's fit is the one saved.

**Step counting.** There is no discriminator: each batch is one update of encoder and decoder together, counted by
``after_generator_step``; ``d_steps`` stays 0 and ``trainer.max_steps`` counts batches.

**Options.** The single optimizer is ``optimizer_g`` with ``lr_g`` and ``betas`` over encoder + decoder (the decoder
is the generator; BiGAN also trains G and E with one optimizer); ``optimizer_d``/``lr_d`` are unused. The
discriminator options of the stabilisation toolbox (DiffAugment, instance noise, label smoothing, feature matching,
gradient penalty, R1, spectral norm on D, ``n_critic`` > 1) are refused with an error; ``ema_decay`` and
``spectral_norm_g`` apply to the decoder.

**Grids** show the fixed-noise samples, then a fixed batch of real training images (the first
``num_grid_reconstructions`` of the first training batch, kept in a buffer and saved in checkpoints), then their
reconstructions in the same order. Validation logs ``val/recon_loss`` on the held-out images.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from itertools import chain
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gans.core import GANModule, unwrap
from lightning_gans.networks.vae import ConvDecoder, ConvEncoder
from lightning_gans.optim import make_optimizer

__all__ = [
    "RECONSTRUCTIONS",
    "Autoencoder",
    "CodeGaussian",
    "FixedBatch",
    "LogitConvDecoder",
    "check_no_discriminator_options",
    "decode",
    "eval_mode",
    "reconstruction_loss",
    "samples_and_reconstructions",
]

RECONSTRUCTIONS: tuple[str, ...] = ("bce", "mse")


# ---------------------------------------------------------------------------------------------- shared helpers
def reconstruction_loss(pre_tanh: Tensor, target: Tensor, kind: str = "bce") -> Tensor:
    """Per-image reconstruction loss, summed over pixels and averaged over the batch.

    Args:
        pre_tanh: the decoder's output *before* its ``tanh`` (the image is ``tanh(pre_tanh)``).
        target: the real images in [-1, 1].
        kind: ``"bce"`` (Bernoulli on [0, 1]-mapped pixels, logits ``2 * pre_tanh``) or ``"mse"`` (squared error
            on [-1, 1] pixels).
    """
    if pre_tanh.shape != target.shape:
        raise ValueError(f"reconstruction and target differ in shape: {tuple(pre_tanh.shape)} vs {tuple(target.shape)}")
    n = target.shape[0]
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(2.0 * pre_tanh, (target + 1.0) / 2.0, reduction="sum") / n
    if kind == "mse":
        return (torch.tanh(pre_tanh) - target).pow(2).sum() / n
    raise ValueError(f"Unknown reconstruction loss {kind!r}. Valid: {', '.join(RECONSTRUCTIONS)}.")


class LogitConvDecoder(ConvDecoder):
    """:class:`~lightning_gans.networks.vae.ConvDecoder` that can also return its pre-``tanh`` output.

    ``decoder(z)`` is the image in [-1, 1]; ``decoder(z, pre_tanh=True)`` the values before ``tanh``, which the
    Bernoulli loss needs as logits. Both go through ``forward``, so a DDP wrapper sees every call.
    """

    def forward(self, z: Tensor, pre_tanh: bool = False) -> Tensor:
        out = self.net(z)
        return out if pre_tanh else torch.tanh(out)


class FixedBatch(nn.Module):
    """A fixed batch of real images for reconstruction grids: filled once from the first training batch.

    Both the images and how many are stored are buffers (saved in checkpoints, moved with the model); the buffer has
    its full size from the start, so checkpoints load into a freshly built model.

    Args:
        size: images to keep (0 keeps none).
        image_shape: ``(C, H, W)`` of the images.
    """

    def __init__(self, size: int, image_shape: tuple[int, ...]) -> None:
        super().__init__()
        if size < 0:
            raise ValueError(f"the fixed batch size must be 0 or more, got {size}")
        self.register_buffer("images", torch.zeros(size, *image_shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @property
    def filled(self) -> bool:
        return int(self.count) > 0

    @property
    def batch(self) -> Tensor:
        """The stored images (an empty batch before the first fill)."""
        return self.images[: int(self.count)]

    @torch.no_grad()
    def fill(self, x: Tensor) -> None:
        """Keep the first images of ``x`` if nothing is stored yet (later calls do nothing)."""
        if self.filled or self.images.shape[0] == 0:
            return
        k = min(self.images.shape[0], x.shape[0])
        self.images[:k].copy_(x[:k].detach())
        self.count.fill_(k)


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

    @torch.no_grad()
    def update(self, z: Tensor) -> None:
        z = z.detach().float()
        self.updates += 1
        w = max(self.momentum, 1.0 / float(self.updates))
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


def check_no_discriminator_options(module: GANModule) -> None:
    """Refuse the toolbox options that act on a discriminator, for families that have none."""
    used = [
        name
        for name, on in (
            ("n_critic", module.n_critic != 1),
            ("diffaugment", bool(module.diffaugment)),
            ("instance_noise", module.instance_noise_std > 0),
            ("real_label", module.real_label != 1.0),
            ("feature_matching", module.feature_matching_weight > 0),
            ("gradient_penalty", module.gradient_penalty_weight > 0),
            ("r1_gamma", module.r1_gamma > 0),
            ("spectral_norm_d", module.spectral_norm_d),
        )
        if on
    ]
    if used:
        raise ValueError(
            f"{type(module).__name__} has no discriminator, so {', '.join(used)} cannot apply: leave them at their "
            "defaults (n_critic 1, real_label 1.0, the others off)"
        )


@contextlib.contextmanager
def eval_mode(*nets: nn.Module) -> Iterator[None]:
    """Put ``nets`` in eval mode (batch-norm running statistics, no dropout) for the block, then restore them."""
    modes = [net.training for net in nets]
    try:
        for net in nets:
            net.eval()
        yield
    finally:
        for net, mode in zip(nets, modes):
            net.train(mode)


def samples_and_reconstructions(module: GANModule) -> Tensor:
    """Grid images: fixed-noise samples, then the fixed real batch, then its reconstructions (same order).

    ``module`` needs ``fixed_real`` (:class:`FixedBatch`) and ``reconstruct(x)``; before the fixed batch is filled
    (no training yet) the grid holds the samples only.
    """
    samples = module.sample(z=module.fixed_noise)
    if not module.fixed_real.filled:
        return samples
    real = module.fixed_real.batch.to(samples.device)
    return torch.cat([samples, real.clamp(-1.0, 1.0), module.reconstruct(real)])


def decode(module: GANModule, z: Tensor) -> Tensor:
    """Codes -> images in [-1, 1] with the sampling decoder (EMA copy when on), eval mode, no grad."""
    decoder = module.sampling_generator()
    with torch.no_grad(), eval_mode(decoder):
        return decoder(z.to(module.device)).clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------------------------- the family
class Autoencoder(GANModule):
    """Deterministic convolutional autoencoder; samples from a Gaussian fitted to its codes.

    Args:
        reconstruction: reconstruction loss, ``"bce"`` (Bernoulli on [0, 1]-mapped pixels) or ``"mse"``.
        e_channels: width of the encoder's first convolution (it doubles at each step).
        g_channels: width of the decoder's last hidden layer.
        code_momentum: weight of a new batch in the running Gaussian fit of the codes (after a warm-up of
            ``1 / code_momentum`` batches averaged exactly).
        num_grid_reconstructions: real images (and their reconstructions) in the sample grid; 0 shows samples only.
        **kwargs: the options every family shares (:class:`lightning_gans.core.GANModule`): image_shape,
            latent_dim, ema_decay, optimizer_g, lr_g, betas, spectral_norm_g, num_grid_samples. The discriminator
            options are refused (there is no discriminator).
    """

    def __init__(
        self,
        *,
        reconstruction: str = "bce",
        e_channels: int = 64,
        g_channels: int = 64,
        code_momentum: float = 0.01,
        num_grid_reconstructions: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        check_no_discriminator_options(self)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"Unknown reconstruction loss {reconstruction!r}. Valid: {', '.join(RECONSTRUCTIONS)}.")
        if self.latent_dim < 1:
            raise ValueError(f"Autoencoder needs latent_dim >= 1, got {self.latent_dim}")
        self.reconstruction = reconstruction
        self.encoder = ConvEncoder(self.image_shape, self.latent_dim, variational=False, base_channels=e_channels)
        self.generator = LogitConvDecoder(self.latent_dim, self.image_shape, g_channels)
        self.code_gaussian = CodeGaussian(self.latent_dim, code_momentum)
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
        """``({"loss": ..., "recon_loss": ...}, codes)`` on the batch ``x``, with the networks as they are."""
        z = self.encoder(x)
        recon = reconstruction_loss(self.generator(z, pre_tanh=True), x, self.reconstruction)
        return {"loss": recon, "recon_loss": recon}, z

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        self.fixed_real.fill(x)
        opt = self.optimizers()
        terms, z = self.loss_terms(x)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(terms["loss"])
        opt.step()
        self.code_gaussian.update(z)
        self.after_generator_step(**terms)

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
        return samples_and_reconstructions(self)
