"""SNGAN: Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for Generative Adversarial Networks"
(arXiv:1802.05957).

Every layer of the discriminator is divided by its spectral norm (largest singular value, estimated with one power
iteration per forward), which bounds D's Lipschitz constant without the per-sample cost of a gradient penalty. The
step is Goodfellow et al.'s Algorithm 1, written out in ``training_step``.

Defaults are the paper's ResNet CIFAR-10 setting (as in pfnet-research/sngan_projection and mimicry's
``sngan`` example): the ResNet G and D of appendix B (:mod:`lightning_gans.networks.resnet_gan`), hinge loss, Adam
with lr 2e-4 and betas (0, 0.9) for both networks, n_dis = 5 D steps per G step, z of size 128. G uses batch norm
and no spectral norm. Deviations: 28x28 images use the 32x32 networks from a 7x7 start (see the network module);
the paper's experiments are unconditional, and so is this family (CGAN with ``discriminator: projection`` is the
class-conditional variant). The stabilisation toolbox (``toolbox``) is accepted, and ADA (``ada``,
:class:`lightning_gans.adaptive.Ada`): every D input goes through it, D's real logits steer its p.
"""

from __future__ import annotations

from typing import Any

from lightning_gans.adaptive import Ada
from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.losses import discriminator_loss, generator_loss
from lightning_gans.networks.resnet_gan import ResNetDiscriminator, ResNetGenerator
from lightning_gans.optim import check_adversarial_options, make_optimizers
from lightning_gans.toolbox import Toolbox


class SNGAN(GANModule):
    """Spectrally normalised ResNet GAN.

    Args:
        loss: adversarial loss, one of hinge (paper's best), nonsaturating, minimax, wasserstein, lsgan.
        latent_dim: size of z (paper: 128).
        g_channels: G's widest feature width; None takes the paper's value for the image size (256 at 28/32).
        d_channels: D's widest feature width; None takes the paper's value (128 at 28/32).
        n_critic: D steps per G step (paper: 5).
        optimizer_g: G's optimizer (adam, adamw, rmsprop, sgd).
        optimizer_d: D's optimizer.
        lr_g: G's learning rate (paper: 2e-4).
        lr_d: D's learning rate (paper: 2e-4).
        betas: Adam's betas (paper: (0, 0.9)).
        ema_decay: decay of the EMA copy of G used for sampling and evaluation (0 = off).
        toolbox: further stabilisation options (DiffAugment, instance noise, label smoothing, feature matching,
            gradient penalty, R1, spectral norm in G; D always has it); see :class:`lightning_gans.toolbox.Toolbox`.
        ada: adaptive discriminator augmentation (ADA), off by default; see :class:`lightning_gans.adaptive.Ada`.
        image_shape: (C, H, W) of the images; linked from the datamodule.
        num_classes: classes of the data (unused by this unconditional family); linked from the datamodule.
        num_grid_samples: images in the fixed-noise sample grid.
    """

    def __init__(
        self,
        *,
        loss: str = "hinge",
        latent_dim: int = 128,
        g_channels: int | None = None,
        d_channels: int | None = None,
        n_critic: int = 5,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.0, 0.9),
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
        self.generator = ResNetGenerator(latent_dim, self.image_shape, g_channels)
        self.discriminator = ResNetDiscriminator(self.image_shape, d_channels, spectral_norm=True)  # SNGAN: always
        self.toolbox.apply_spectral_norm(self.generator, self.discriminator)
        self.generator_ema = ema_copy(self.generator, ema_decay)

    def configure_optimizers(self):
        return make_optimizers(self.generator, self.discriminator, self.hparams)

    # Copied from lightning_gans.models.dcgan.DCGAN.training_step
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
