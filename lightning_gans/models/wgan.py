"""WGAN: Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN" (arXiv:1701.07875), Algorithm 1.

The critic f_w estimates the Wasserstein-1 distance as E[f(x)] - E[f(G(z))]; it must be 1-Lipschitz, which the
paper enforces crudely by clipping every critic parameter into [-c, c] after each critic update. The algorithm,
as written in ``training_step``:

1. critic step (one batch): RMSprop on E[f(G(z))] - E[f(x)], then clip all critic weights to [-c, c];
2. every ``n_critic`` critic steps, one generator step: RMSprop on -E[f(G(z))].

The paper's defaults are this family's defaults: c = 0.01, n_critic = 5, RMSprop with lr 5e-5 for both networks,
batch 64 (the datamodule's). The critic has no sigmoid. Networks are DCGAN's with batch norm in both G and the
critic, as in the official code (martinarjovsky/WassersteinGAN, ``models/dcgan.py``). Deviation from the official
code: it also runs 100 critic steps per generator step for the first 25 generator steps and every 500th; the
paper's Algorithm 1 does not, and neither does this family. ``train/wasserstein`` logs the critic's estimate.
"""

from __future__ import annotations

from typing import Any

import torch

from lightning_gans.core import GANModule
from lightning_gans.losses import discriminator_loss, generator_loss
from lightning_gans.networks.dcgan import DCGANDiscriminator, DCGANGenerator


class WGAN(GANModule):
    """Wasserstein GAN with weight clipping.

    Args:
        clip_value: c, the bound every critic parameter is clipped to after each critic step.
        g_channels: channels of G's last hidden layer (ngf).
        d_channels: channels of the critic's first layer (ndf).
        d_batch_norm: batch norm in the critic (the official code has it).
        n_critic: critic steps per generator step (paper: 5).
        optimizer_g: generator optimizer (paper: rmsprop).
        optimizer_d: critic optimizer (paper: rmsprop).
        lr_g: generator learning rate (paper: 5e-5).
        lr_d: critic learning rate (paper: 5e-5).
        **kwargs: the other options every family shares (:class:`lightning_gans.core.GANModule`): image_shape,
            latent_dim, ema_decay, and the stabilisation toolbox.
    """

    def __init__(
        self,
        *,
        clip_value: float = 0.01,
        g_channels: int = 64,
        d_channels: int = 64,
        d_batch_norm: bool = True,
        n_critic: int = 5,
        optimizer_g: str = "rmsprop",
        optimizer_d: str = "rmsprop",
        lr_g: float = 5e-5,
        lr_d: float = 5e-5,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            n_critic=n_critic, optimizer_g=optimizer_g, optimizer_d=optimizer_d, lr_g=lr_g, lr_d=lr_d, **kwargs
        )
        self.save_hyperparameters()
        if clip_value <= 0:
            raise ValueError(f"clip_value must be positive (the paper uses 0.01), got {clip_value}")
        if self.real_label != 1.0:
            raise ValueError("WGAN's critic has no target to smooth: leave real_label at 1.0")
        self.clip_value = clip_value
        self.generator = DCGANGenerator(self.latent_dim, self.image_shape, g_channels)
        self.discriminator = DCGANDiscriminator(self.image_shape, d_channels, d_batch_norm)
        self.finalize_networks()

    @torch.no_grad()
    def clip_critic_weights(self) -> None:
        """w <- clip(w, -c, c) for every critic parameter (weights, biases, batch-norm affine parameters)."""
        for p in self.discriminator.parameters():
            p.clamp_(-self.clip_value, self.clip_value)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        n = real.shape[0]
        opt_g, opt_d = self.optimizers()

        # Critic: maximise E[f(x)] - E[f(G(z))], then clip the weights.
        with self.toggled_optimizer(opt_d):
            fake = self.generate(self.generator, self.noise(n)).detach()
            d_real = self.discriminate(self.d_input(real))
            d_fake = self.discriminate(self.d_input(fake))
            d_adv = discriminator_loss("wasserstein", d_real, d_fake)
            penalties = self.discriminator_penalty(real, fake)
            d_loss = d_adv + sum(penalties.values())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        self.clip_critic_weights()
        self.after_discriminator_step(d_loss=d_loss, wasserstein=-d_adv, **penalties)

        # Generator, every n_critic critic steps: minimise -E[f(G(z))].
        if self.should_step_generator():
            with self.toggled_optimizer(opt_g):
                fake = self.generate(self.generator, self.noise(n))
                g_loss = generator_loss("wasserstein", self.discriminate(self.d_input(fake)))
                extra = {}
                if self.feature_matching_weight > 0:
                    extra["feature_matching"] = self.generator_feature_matching(real, fake)
                    g_loss = g_loss + extra["feature_matching"]
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            self.after_generator_step(g_loss=g_loss, **extra)
