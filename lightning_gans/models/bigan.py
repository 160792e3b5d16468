"""BiGAN / ALI: Donahue, Krähenbühl & Darrell 2017, "Adversarial Feature Learning" (arXiv:1605.09782), and
Dumoulin et al. 2017, "Adversarially Learned Inference" (arXiv:1606.00704).

An encoder E (x -> z) is learned next to the generator G (z -> x). The discriminator D sees joint pairs: real pairs
(x, E(x)) against fake pairs (G(z), z); at the optimum E inverts G. ``stochastic_encoder: true`` is ALI (E samples
z = mu(x) + sigma(x) * eps with the reparameterisation trick), false is BiGAN (deterministic E). Per batch:

- D step: real pairs (x, E(x).detach()) against fake pairs (G(z).detach(), z), under ``loss`` with ``real_label``
  smoothing and the switched-on penalties. Both pair kinds go through ``d_input`` on their image (DiffAugment,
  instance noise). E and G run without gradient here.
- G/E step, every ``n_critic`` D steps, with ONE optimizer over G and E: the "inverted labels" game, i.e. each
  generator loss applied to the fake pair and mirrored onto the real pair (:func:`joint_generator_loss`):
  ``nonsaturating`` is BiGAN's and ALI's softplus(-D(G(z), z)) + softplus(D(x, E(x))); ``minimax`` the papers'
  min-max value itself; ``hinge``/``wasserstein`` BigBiGAN's linear D(x, E(x)) - D(G(z), z); ``lsgan`` swaps the
  targets.

Toolbox (:class:`lightning_gans.toolbox.Toolbox`): DiffAugment and instance noise act on the image of every pair;
the gradient penalty interpolates image and code together, and R1 differentiates with respect to both parts of the
real pair (:func:`joint_penalties`); feature matching matches D's joint features of real and fake pairs (both produced
by the networks being trained, so neither side is detached). ADA (``ada``, :class:`lightning_gans.adaptive.Ada`) is
accepted too: the image of every pair goes through it, D's logits on real pairs steer its p. ``optimizer_g``/
``lr_g`` train G and E, ``optimizer_d``/``lr_d`` train D. Step counting is the base's: one D and (with
``n_critic: 1``) one G/E update per batch.

Grids show the fixed-noise samples, then a fixed batch of real training images (the first
``num_grid_reconstructions`` of the first training batch, a buffer saved in checkpoints), then G(E(x)) of those
images in the same order. ``encode(x)`` gives codes (the posterior mean for ALI) for feature-learning evaluations;
validation logs ``val/recon_mse``, the per-pixel squared error of G(E(x)) on held-out images.

Deviations: z ~ N(0, I) for both (BiGAN's MNIST runs use uniform noise), DCGAN-style networks
(:mod:`lightning_gans.networks.bigan`; D without batch norm, dropout 0.2 as in ALI), Adam without BiGAN's weight
decay and learning-rate decay.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import torch
from torch import Tensor

from lightning_gans.adaptive import Ada
from lightning_gans.core import GANModule, unwrap
from lightning_gans.ema import ema_copy
from lightning_gans.losses import check_loss_name, discriminator_loss, generator_loss
from lightning_gans.networks.bigan import BiGANEncoder, BiGANGenerator, JointDiscriminator
from lightning_gans.optim import check_adversarial_options, make_optimizer
from lightning_gans.reconstruction import FixedImages, decode, eval_mode, samples_and_reconstructions
from lightning_gans.toolbox import Toolbox


def joint_generator_loss(name: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """G and E's loss in the joint game: D's logits on real pairs (x, E(x)) and on fake pairs (G(z), z).

    The generator loss of ``name`` on the fake pairs plus its mirror image on the real pairs (which E should make
    look fake): ``generator_loss(fake) + generator_loss(-real)``; for ``lsgan``, whose targets are 0 and 1 rather
    than symmetric, D's loss with the pairs swapped.
    """
    check_loss_name(name)
    if name == "lsgan":
        return discriminator_loss(name, fake_logits, real_logits)
    return generator_loss(name, fake_logits) + generator_loss(name, -real_logits)


def joint_penalties(
    critic, real: tuple[Tensor, Tensor], fake: tuple[Tensor, Tensor], gradient_penalty: float, r1_gamma: float
) -> dict[str, Tensor]:
    """The switched-on D regularisers on pairs, weighted: ``{"gp": ..., "r1": ...}``.

    ``critic(x, z)`` gives D's logits on pairs. gp: WGAN-GP with image and code interpolated by the same factor, the
    gradient taken with respect to both; r1: the squared gradient norm with respect to both parts of the real pair.
    """
    terms: dict[str, Tensor] = {}
    if gradient_penalty > 0:
        (x, cx), (g, z) = real, fake
        eps = torch.rand(x.shape[0], device=x.device, dtype=x.dtype)
        ex, ez = eps.view(-1, *[1] * (x.dim() - 1)), eps.view(-1, 1)
        x_hat = (ex * x.detach() + (1 - ex) * g.detach()).requires_grad_(True)
        z_hat = (ez * cx.detach() + (1 - ez) * z.detach()).requires_grad_(True)
        grad = _pair_gradient(critic(x_hat, z_hat), x_hat, z_hat)
        terms["gp"] = gradient_penalty * (grad.norm(2, dim=1) - 1).pow(2).mean()
    if r1_gamma > 0:
        x, cx = (t.detach().requires_grad_(True) for t in real)
        grad = _pair_gradient(critic(x, cx), x, cx)
        terms["r1"] = 0.5 * r1_gamma * grad.pow(2).sum(dim=1).mean()
    return terms


def _pair_gradient(logits: Tensor, x: Tensor, z: Tensor) -> Tensor:
    """d(sum logits)/d(x, z), flattened and concatenated per sample (graph kept for the penalty's backward)."""
    gx, gz = torch.autograd.grad(logits.sum(), (x, z), create_graph=True)
    return torch.cat([gx.flatten(1), gz.flatten(1)], dim=1)


class BiGAN(GANModule):
    """BiGAN (deterministic encoder) or ALI (``stochastic_encoder=True``).

    Args:
        loss: adversarial loss, one of nonsaturating, minimax, hinge, wasserstein, lsgan.
        stochastic_encoder: ALI's Gaussian encoder with the reparameterisation trick instead of BiGAN's
            deterministic one.
        latent_dim: size of z, the noise of G and the code of E.
        g_channels: width of G's last hidden layer.
        e_channels: width of E's first convolution (it doubles at each step).
        d_channels: width of D's first image convolution.
        d_hidden_dim: width of D's code branch (its joint layers use twice as many).
        d_dropout: dropout after every hidden layer of D (0.2 in ALI).
        num_grid_reconstructions: real images (and their reconstructions G(E(x))) in the sample grid; 0 shows
            samples only.
        n_critic: D steps per G/E step (one batch per D step).
        optimizer_g: the optimizer of G and E together (adam, adamw, rmsprop, sgd).
        optimizer_d: D's optimizer.
        lr_g: G and E's learning rate.
        lr_d: D's learning rate.
        betas: Adam's betas for both optimizers (SGD uses the first as momentum).
        ema_decay: decay of the EMA copy of G used for sampling and evaluation (0 = off).
        toolbox: stabilisation options (DiffAugment, instance noise, label smoothing, feature matching, gradient
            penalty and R1 on pairs, spectral norm); see :class:`lightning_gans.toolbox.Toolbox`.
        ada: adaptive discriminator augmentation (ADA), off by default; see :class:`lightning_gans.adaptive.Ada`.
        image_shape: (C, H, W) of the images; linked from the datamodule.
        num_classes: classes of the data (unused); linked from the datamodule.
        num_grid_samples: samples in the grid.
    """

    def __init__(
        self,
        *,
        loss: str = "nonsaturating",
        stochastic_encoder: bool = False,
        latent_dim: int = 100,
        g_channels: int = 64,
        e_channels: int = 64,
        d_channels: int = 64,
        d_hidden_dim: int = 512,
        d_dropout: float = 0.2,
        num_grid_reconstructions: int = 32,
        n_critic: int = 1,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        ema_decay: float = 0.0,
        toolbox: Toolbox | None = None,
        ada: Ada | None = None,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 0,
        num_grid_samples: int = 64,
    ) -> None:
        super().__init__(
            image_shape=image_shape, num_classes=num_classes, latent_dim=latent_dim, num_grid_samples=num_grid_samples
        )
        self.save_hyperparameters()
        self.toolbox = Toolbox.of(toolbox).check_for(self.image_shape)
        self.ada = Ada.of(ada).build(self.image_shape, self.toolbox.diffaugment)  # None when off
        check_adversarial_options(self.hparams, self.toolbox.real_label)
        if latent_dim < 1:
            raise ValueError(f"BiGAN needs latent_dim >= 1, got {latent_dim}")
        self.loss, self.n_critic, self.stochastic_encoder = loss, n_critic, stochastic_encoder
        self.generator = BiGANGenerator(latent_dim, self.image_shape, g_channels)
        self.encoder = BiGANEncoder(self.image_shape, latent_dim, e_channels, stochastic=stochastic_encoder)
        self.discriminator = JointDiscriminator(
            self.image_shape, latent_dim, d_channels, d_hidden_dim, dropout=d_dropout
        )
        self.fixed_real = FixedImages(num_grid_reconstructions, self.image_shape)
        self.toolbox.apply_spectral_norm(self.generator, self.discriminator)
        self.generator_ema = ema_copy(self.generator, ema_decay)

    def configure_optimizers(self):
        """G and E with one optimizer (``optimizer_g``, ``lr_g``), D with the other, G/E first."""
        hp = self.hparams
        opt_ge = make_optimizer(
            chain(self.generator.parameters(), self.encoder.parameters()), hp.optimizer_g, hp.lr_g, hp.betas
        )
        return opt_ge, make_optimizer(self.discriminator.parameters(), hp.optimizer_d, hp.lr_d, hp.betas)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        self.fixed_real.fill(x)
        n, tb = x.shape[0], self.toolbox
        opt_g, opt_d = self.optimizers()

        def critic(image, code, **kwargs):  # D on pairs, the image through ADA, DiffAugment and instance noise
            return self.discriminator(tb.d_input(image, self.g_steps, self.ada), code, **kwargs)

        # 1. D step: real pairs (x, E(x)) against fake pairs (G(z), z); E and G run without gradient.
        with self.toggled_optimizer(opt_d):
            with torch.no_grad():
                code = self.encoder(x)
                z = self.noise(n)
                fake = self.generator(z)
            real_logits = critic(x, code)
            d_loss = discriminator_loss(self.loss, real_logits, critic(fake, z), real_label=tb.real_label)
            penalties = joint_penalties(critic, (x, code), (fake, z), tb.gradient_penalty, tb.r1_gamma)
            d_loss = d_loss + sum(penalties.values())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        ada = {"ada_p": self.ada.p, "ada_r_t": self.ada.r_t} if self.ada is not None else {}  # p of this step
        self.count_d_step(d_loss=d_loss, **penalties, **ada)
        if self.ada is not None:  # ADA: sign(D(real)) to the controller; every `interval` D steps p moves
            self.ada.observe(real_logits)
            self.ada.adjust(self.d_steps, n * self.trainer.world_size)

        # 2. G/E step, every n_critic D steps: the inverted game, with one optimizer over G and E.
        if self.d_steps % self.n_critic == 0:
            with self.toggled_optimizer(opt_g):
                code = self.encoder(x)
                z = self.noise(n)
                fake = self.generator(z)
                matching = tb.feature_matching > 0
                real_out = critic(x, code, return_features=matching)
                fake_out = critic(fake, z, return_features=matching)
                extra: dict[str, Tensor] = {}
                if matching:
                    (real_out, real_features), (fake_out, fake_features) = real_out, fake_out
                    diff = real_features.mean(0) - fake_features.mean(0)
                    extra["feature_matching"] = tb.feature_matching * diff.pow(2).sum()
                g_loss = joint_generator_loss(self.loss, real_out, fake_out) + sum(extra.values())
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            if self.generator_ema is not None:
                self.generator_ema.update(self.generator)
            self.count_g_step(g_loss=g_loss, **extra)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        mse = (self.reconstruct(x) - x.clamp(-1, 1)).pow(2).mean()
        self.log("val/recon_mse", mse, on_step=False, on_epoch=True, batch_size=x.shape[0])

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def encode(self, x: Tensor, sample: bool = False) -> Tensor:
        """Codes (N, latent_dim) of images in [-1, 1], encoder in eval mode, no grad.

        For ALI's stochastic encoder: the posterior mean, or a sample with ``sample=True``.
        """
        encoder = unwrap(self.encoder)
        x = x.to(self.device)
        with eval_mode(encoder):
            if self.stochastic_encoder and not sample:
                return encoder.distribution(x)[0]
            return encoder(x)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """G(E(x)): images in [-1, 1] (eval mode, EMA generator when on)."""
        return decode(self, self.encode(x))

    def grid_images(self) -> Tensor:
        """Fixed-noise samples, the fixed real batch and its reconstructions G(E(x))."""
        return samples_and_reconstructions(self, self.fixed_real)


__all__ = ["BiGAN", "joint_generator_loss", "joint_penalties"]
