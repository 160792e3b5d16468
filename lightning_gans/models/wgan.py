"""WGAN: Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN" (arXiv:1701.07875), Algorithm 1.

The critic f_w estimates the Wasserstein-1 distance as E[f(x)] - E[f(G(z))]; it must be 1-Lipschitz, which the
paper enforces crudely by clipping every critic parameter into [-c, c] after each critic update. The algorithm,
as written in ``training_step``:

1. critic step (one batch): RMSprop on E[f(G(z))] - E[f(x)], then clip all critic weights to [-c, c];
2. every ``n_critic`` critic steps, one generator step: RMSprop on -E[f(G(z))].

The paper's defaults are this family's defaults: c = 0.01, n_critic = 5, RMSprop with lr 5e-5 for both networks,
batch 64 (the datamodule's). The critic has no sigmoid. Networks are DCGAN's with batch norm in both G and the
critic, as in the official code (martinarjovsky/WassersteinGAN, ``models/dcgan.py``). The official code also trains
the critic "to optimality" 100 steps per generator step for the first 25 generator steps and every 500th;
``critic_warmup: true`` does the same (off by default, as in the paper's Algorithm 1; on in ``wgan_mnist.yaml``).
``train/wasserstein`` logs the critic's estimate. The stabilisation toolbox (``toolbox``) is accepted; ADA (``ada``,
:class:`lightning_gans.adaptive.Ada`) is accepted too: every critic input goes through it and
sign(f(x)) on the reals steers its p; a critic's outputs have no fixed zero (its loss ignores a constant offset), so
that heuristic is a rough one here and a fixed ``ada.p`` may suit a critic better.
"""

from __future__ import annotations

from typing import Any

import torch

from lightning_gans.adaptive import Ada
from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.losses import check_real_label, discriminator_loss, generator_loss
from lightning_gans.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from lightning_gans.optim import check_adversarial_options, make_optimizers
from lightning_gans.toolbox import Toolbox


class WGAN(GANModule):
    """Wasserstein GAN with weight clipping.

    Args:
        clip_value: c, the bound every critic parameter is clipped to after each critic step.
        latent_dim: size of the noise vector z.
        g_channels: channels of G's last hidden layer (ngf).
        d_channels: channels of the critic's first layer (ndf).
        d_batch_norm: batch norm in the critic (the official code has it).
        n_critic: critic steps per generator step (paper: 5).
        critic_warmup: 100 critic steps per generator step for the first 25 generator steps and every 500th, as
            the official code (see the module docstring).
        optimizer_g: generator optimizer (paper: rmsprop).
        optimizer_d: critic optimizer (paper: rmsprop).
        lr_g: generator learning rate (paper: 5e-5).
        lr_d: critic learning rate (paper: 5e-5).
        betas: Adam's betas, when an Adam optimizer is chosen (RMSprop has none).
        ema_decay: decay of the EMA copy of G used for sampling and evaluation (0 = off).
        toolbox: stabilisation options (DiffAugment, instance noise, feature matching, gradient penalty, R1,
            spectral norm; the critic has no target to smooth, so real_label stays 1); see
            :class:`lightning_gans.toolbox.Toolbox`.
        ada: adaptive discriminator augmentation (ADA), off by default; see :class:`lightning_gans.adaptive.Ada`.
        image_shape: (C, H, W) of the images; linked from the datamodule.
        num_classes: classes of the data (unused by this unconditional family); linked from the datamodule.
        num_grid_samples: images in the fixed-noise sample grid.
    """

    def __init__(
        self,
        *,
        clip_value: float = 0.01,
        latent_dim: int = 100,
        g_channels: int = 64,
        d_channels: int = 64,
        d_batch_norm: bool = True,
        n_critic: int = 5,
        critic_warmup: bool = False,
        optimizer_g: str = "rmsprop",
        optimizer_d: str = "rmsprop",
        lr_g: float = 5e-5,
        lr_d: float = 5e-5,
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
        check_adversarial_options(self.hparams)
        check_real_label("wasserstein", self.toolbox.real_label)
        if clip_value <= 0:
            raise ValueError(f"clip_value must be positive (the paper uses 0.01), got {clip_value}")
        self.clip_value, self.n_critic, self.critic_warmup = clip_value, n_critic, critic_warmup
        self.generator = DCGANGenerator(latent_dim, self.image_shape, g_channels)
        self.discriminator = DCGANDiscriminator(self.image_shape, d_channels, d_batch_norm)
        self.toolbox.apply_spectral_norm(self.generator, self.discriminator)
        self.generator_ema = ema_copy(self.generator, ema_decay)

    def configure_optimizers(self):
        return make_optimizers(self.generator, self.discriminator, self.hparams)

    def critic_steps_before(self, g_steps: int) -> int:
        """Critic steps that precede generator step ``g_steps`` (1-based): ``n_critic`` each, or 100 during the
        warm-up (generator steps 0-24 and every 500th, counted from 0). A function of the counters alone, so a
        resumed run follows the same schedule."""
        if not self.critic_warmup:
            return g_steps * self.n_critic
        warm = min(g_steps, 25) + (max(g_steps - 1, 0) // 500 if g_steps > 500 else 0)
        return warm * 100 + (g_steps - warm) * self.n_critic

    @torch.no_grad()
    def clip_critic_weights(self) -> None:
        """w <- clip(w, -c, c) for every critic parameter (weights, biases, batch-norm affine parameters)."""
        for p in self.discriminator.parameters():
            p.clamp_(-self.clip_value, self.clip_value)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        n, tb = real.shape[0], self.toolbox
        opt_g, opt_d = self.optimizers()

        def critic(x, **kwargs):  # f_w on any sample, real or fake, through ADA, DiffAugment and instance noise
            return self.discriminator(tb.d_input(x, self.g_steps, self.ada), **kwargs)

        # 1. Critic step: maximise E[f(x)] - E[f(G(z))] (minimise its negative) ...
        with self.toggled_optimizer(opt_d):
            fake = self.generator(self.noise(n)).detach()
            real_logits = critic(real)
            d_wasserstein = discriminator_loss("wasserstein", real_logits, critic(fake))
            penalties = tb.penalties(critic, real, fake)
            d_loss = d_wasserstein + sum(penalties.values())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        # ... then clip every critic weight into [-c, c].
        self.clip_critic_weights()
        ada = {"ada_p": self.ada.p, "ada_r_t": self.ada.r_t} if self.ada is not None else {}  # p of this step
        self.count_d_step(d_loss=d_loss, wasserstein=-d_wasserstein, **penalties, **ada)
        if self.ada is not None:  # ADA: sign(D(real)) to the controller; every `interval` D steps p moves
            self.ada.observe(real_logits)
            self.ada.adjust(self.d_steps, n * self.trainer.world_size)

        # 2. Generator step, after n_critic critic steps (100 during the warm-up): minimise -E[f(G(z))].
        if self.d_steps == self.critic_steps_before(self.g_steps + 1):
            with self.toggled_optimizer(opt_g):
                fake = self.generator(self.noise(n))
                g_loss = generator_loss("wasserstein", critic(fake))
                extra = tb.feature_matching_terms(critic, real, fake)
                g_loss = g_loss + sum(extra.values())
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            if self.generator_ema is not None:
                self.generator_ema.update(self.generator)
            self.count_g_step(g_loss=g_loss, **extra)
