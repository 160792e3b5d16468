"""DCGAN: Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional GANs"
(arXiv:1511.06434).

The paper's recipe: all-convolutional G and D with batch norm (not in D's input layer), ReLU/tanh in G,
LeakyReLU(0.2) in D, Adam with lr 2e-4 and beta1 0.5, weights from N(0, 0.02), minibatch 128. Alternating updates
as in Goodfellow et al.'s Algorithm 1 with the non-saturating G loss; ``training_step`` below is that algorithm with
the switched-on options of the stabilisation toolbox (:mod:`lightning_gans.toolbox`) at the places they act.
ADA (``ada``, :class:`lightning_gans.adaptive.Ada`) is accepted too: every D input goes through it, D's real
logits steer its p.
Deviations: D returns a logit (the sigmoid lives in the loss), the number of stages follows the image size (28x28
MNIST starts from 7x7), and the loss is a config value (``loss: lsgan`` is LSGAN on DCGAN networks).
"""

from __future__ import annotations

from typing import Any

from lightning_gans.adaptive import Ada
from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.losses import discriminator_loss, generator_loss
from lightning_gans.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from lightning_gans.optim import check_adversarial_options, make_optimizers
from lightning_gans.toolbox import Toolbox


class DCGAN(GANModule):
    """Deep convolutional GAN.

    Args:
        loss: adversarial loss, one of nonsaturating, minimax, hinge, wasserstein, lsgan.
        latent_dim: size of the noise vector z.
        g_channels: channels of G's last hidden layer (the paper's ngf).
        d_channels: channels of D's first layer (the paper's ndf).
        d_batch_norm: batch norm in D (turn off for a gradient-penalty critic).
        n_critic: D steps per G step (one batch per D step).
        optimizer_g: G's optimizer (adam, adamw, rmsprop, sgd).
        optimizer_d: D's optimizer.
        lr_g: G's learning rate.
        lr_d: D's learning rate (TTUR: lr_d > lr_g).
        betas: Adam's betas for both networks (SGD uses the first as momentum).
        ema_decay: decay of the EMA copy of G used for sampling and evaluation (0 = off).
        toolbox: stabilisation options (DiffAugment, instance noise, label smoothing, feature matching, gradient
            penalty, R1, spectral norm); see :class:`lightning_gans.toolbox.Toolbox`.
        ada: adaptive discriminator augmentation (ADA), off by default; see :class:`lightning_gans.adaptive.Ada`.
        image_shape: (C, H, W) of the images; linked from the datamodule.
        num_classes: classes of the data (unused by this unconditional family); linked from the datamodule.
        num_grid_samples: images in the fixed-noise sample grid.
    """

    def __init__(
        self,
        *,
        loss: str = "nonsaturating",
        latent_dim: int = 100,
        g_channels: int = 64,
        d_channels: int = 64,
        d_batch_norm: bool = True,
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
        self.loss, self.n_critic = loss, n_critic
        self.generator = DCGANGenerator(latent_dim, self.image_shape, g_channels)
        self.discriminator = DCGANDiscriminator(self.image_shape, d_channels, d_batch_norm)
        self.toolbox.apply_spectral_norm(self.generator, self.discriminator)
        self.generator_ema = ema_copy(self.generator, ema_decay)

    def configure_optimizers(self):
        return make_optimizers(self.generator, self.discriminator, self.hparams)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        n, tb = real.shape[0], self.toolbox
        opt_g, opt_d = self.optimizers()

        def critic(x, **kwargs):  # D sees every sample, real or fake, through ADA, DiffAugment and instance noise
            return self.discriminator(tb.d_input(x, self.g_steps, self.ada), **kwargs)

        # 1. D step: score real samples as real and G(z) as fake, plus the penalties switched on (GP, R1).
        with self.toggled_optimizer(opt_d):
            fake = self.generator(self.noise(n)).detach()
            real_logits = critic(real)
            d_loss = discriminator_loss(self.loss, real_logits, critic(fake), real_label=tb.real_label)
            penalties = tb.penalties(critic, real, fake)
            d_loss = d_loss + sum(penalties.values())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        ada = {"ada_p": self.ada.p, "ada_r_t": self.ada.r_t} if self.ada is not None else {}  # p of this step
        self.count_d_step(d_loss=d_loss, **penalties, **ada)
        if self.ada is not None:  # ADA: sign(D(real)) to the controller; every `interval` D steps p moves
            self.ada.observe(real_logits)
            self.ada.adjust(self.d_steps, n * self.trainer.world_size)

        # 2. G step, every n_critic D steps: fool D on fresh samples (plus feature matching when on).
        if self.d_steps % self.n_critic == 0:
            with self.toggled_optimizer(opt_g):
                fake = self.generator(self.noise(n))
                g_loss = generator_loss(self.loss, critic(fake))
                extra = tb.feature_matching_terms(critic, real, fake)
                g_loss = g_loss + sum(extra.values())
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            if self.generator_ema is not None:
                self.generator_ema.update(self.generator)
            self.count_g_step(g_loss=g_loss, **extra)
