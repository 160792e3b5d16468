"""CGAN: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets" (arXiv:1411.1784), with the projection
discriminator of Miyato & Koyama 2018, "cGANs with Projection Discriminator" (arXiv:1802.05637) as an option.

G(z, y) and D(x, y) both see the class label y; the step is Goodfellow et al.'s Algorithm 1 on the pair (x, y):
D learns to score a real image *with its label* as real and G(z, y) with the same labels as fake, G learns to make
images D accepts for the label it was asked for. After training, ``sample(labels=...)`` and
``lightning-gans predict --writer.label 7`` generate a chosen digit.

``discriminator: concat`` is the paper's joint input (the label embedding concatenated to D's input);
``discriminator: projection`` adds ``<embed(y), phi(x)>`` to an unconditional head instead, which Miyato & Koyama
show conditions D far more reliably. Deviations from the paper: DCGAN networks by default (``backbone: mlp`` gives
the paper's fully connected ones, with LeakyReLU instead of maxout and no dropout), a learned label embedding
instead of a one-hot vector, Adam (2e-4, betas (0.5, 0.999)) instead of SGD with momentum, the non-saturating G
loss, and D returns a logit.

The stabilisation toolbox (``toolbox``, :mod:`lightning_gans.toolbox`) acts on every D input, D(x, y) alike; ADA
(``ada``, :class:`lightning_gans.adaptive.Ada`) is accepted too: every D input goes through it, D's real logits steer
its p.
"""

from __future__ import annotations

from typing import Any

from lightning_gans.adaptive import Ada
from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.losses import discriminator_loss, generator_loss
from lightning_gans.networks.conditional import (
    BACKBONES,
    DISCRIMINATOR_MODES,
    ConditionalDiscriminator,
    ConditionalGenerator,
)
from lightning_gans.optim import check_adversarial_options, make_optimizers
from lightning_gans.toolbox import Toolbox


class CGAN(GANModule):
    """Class-conditional GAN: label embedding in G, concatenation or projection in D.

    Args:
        loss: adversarial loss, one of nonsaturating, minimax, hinge, wasserstein, lsgan.
        discriminator: how D sees the label: ``concat`` (Mirza & Osindero) or ``projection`` (Miyato & Koyama).
        backbone: ``dcgan`` (convolutional) or ``mlp`` (fully connected, as in the paper).
        latent_dim: size of the noise vector z.
        g_embed_dim: size of the label embedding concatenated with z.
        d_embed_dim: size of the label embedding concatenated to D's input (``concat`` only).
        g_channels: DCGAN: channels of G's last hidden layer (ngf).
        d_channels: DCGAN: channels of D's first layer (ndf).
        d_batch_norm: DCGAN: batch norm in D (turn off with a gradient penalty).
        g_hidden_dims: MLP: widths of G's hidden layers.
        d_hidden_dims: MLP: widths of D's hidden layers.
        n_critic: D steps per G step (one batch per D step).
        optimizer_g: G's optimizer (adam, adamw, rmsprop, sgd).
        optimizer_d: D's optimizer.
        lr_g: G's learning rate.
        lr_d: D's learning rate.
        betas: Adam's betas for both networks (SGD uses the first as momentum).
        ema_decay: decay of the EMA copy of G used for sampling and evaluation (0 = off).
        toolbox: stabilisation options (DiffAugment, instance noise, label smoothing, feature matching, gradient
            penalty, R1, spectral norm); see :class:`lightning_gans.toolbox.Toolbox`.
        ada: adaptive discriminator augmentation (ADA), off by default; see :class:`lightning_gans.adaptive.Ada`.
        image_shape: (C, H, W) of the images; linked from the datamodule.
        num_classes: number of classes (at least 1); linked from the datamodule.
        num_grid_samples: images in the fixed-noise sample grid (labels 0, 1, ..., K-1, 0, ...).
    """

    conditional = True

    def __init__(
        self,
        *,
        loss: str = "nonsaturating",
        discriminator: str = "concat",
        backbone: str = "dcgan",
        latent_dim: int = 100,
        g_embed_dim: int = 50,
        d_embed_dim: int = 10,
        g_channels: int = 64,
        d_channels: int = 64,
        d_batch_norm: bool = True,
        g_hidden_dims: tuple[int, ...] = (256, 512, 1024),
        d_hidden_dims: tuple[int, ...] = (512, 256),
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
        if discriminator not in DISCRIMINATOR_MODES:
            raise ValueError(f"Unknown CGAN discriminator {discriminator!r}. Valid: {', '.join(DISCRIMINATOR_MODES)}.")
        if backbone not in BACKBONES:
            raise ValueError(f"Unknown CGAN backbone {backbone!r}. Valid: {', '.join(BACKBONES)}.")
        self.loss, self.n_critic = loss, n_critic
        self.generator = ConditionalGenerator(
            latent_dim, num_classes, self.image_shape, g_embed_dim, backbone, g_channels, tuple(g_hidden_dims)
        )
        self.discriminator = ConditionalDiscriminator(
            self.image_shape,
            num_classes,
            discriminator,
            d_embed_dim,
            backbone,
            d_channels,
            d_batch_norm,
            tuple(d_hidden_dims),
        )
        self.toolbox.apply_spectral_norm(self.generator, self.discriminator)
        self.generator_ema = ema_copy(self.generator, ema_decay)

    def configure_optimizers(self):
        return make_optimizers(self.generator, self.discriminator, self.hparams)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                f"CGAN trains on (images, labels) batches; got {type(batch).__name__}. Use a labelled "
                "datamodule (e.g. MNISTDataModule)."
            )
        real, labels = batch[0], batch[1].long()
        n, tb = real.shape[0], self.toolbox
        opt_g, opt_d = self.optimizers()

        def critic(x, **kwargs):  # D(x, y) on the batch's labels, through ADA, DiffAugment and instance noise
            return self.discriminator(tb.d_input(x, self.g_steps, self.ada), labels, **kwargs)

        # 1. D step: (x, y) real, (G(z, y), y) fake, with the real batch's labels y; plus the penalties switched on.
        with self.toggled_optimizer(opt_d):
            fake = self.generator(self.noise(n), labels).detach()
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

        # 2. G step, every n_critic D steps: G(z, y) must pass as a real image of class y.
        if self.d_steps % self.n_critic == 0:
            with self.toggled_optimizer(opt_g):
                fake = self.generator(self.noise(n), labels)
                g_loss = generator_loss(self.loss, critic(fake))
                extra = tb.feature_matching_terms(critic, real, fake)
                g_loss = g_loss + sum(extra.values())
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            if self.generator_ema is not None:
                self.generator_ema.update(self.generator)
            self.count_g_step(g_loss=g_loss, **extra)
