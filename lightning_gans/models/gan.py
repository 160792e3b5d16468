"""GAN: Goodfellow et al. 2014, "Generative Adversarial Nets" (arXiv:1406.2661), with MLP networks.

Algorithm 1 of the paper, one minibatch at a time: update D on real and generated samples (``n_critic`` times,
the paper's k, each on a fresh batch), then update G once. Deviations: G minimises the non-saturating loss
-log D(G(z)) by default (the paper's own suggestion; ``loss: minimax`` gives log(1 - D(G(z)))), Adam instead of
momentum SGD, LeakyReLU units instead of maxout, tanh images in [-1, 1]; D returns a logit.
"""

from __future__ import annotations

from typing import Any

from lightning_gans.core import GANModule
from lightning_gans.losses import check_loss_name, check_real_label
from lightning_gans.networks.mlp import MLPDiscriminator, MLPGenerator
from lightning_gans.steps import adversarial_step


class GAN(GANModule):
    """The original GAN with fully connected G and D.

    Args:
        loss: adversarial loss, one of nonsaturating, minimax, hinge, wasserstein, lsgan.
        g_hidden_dims: widths of G's hidden layers.
        d_hidden_dims: widths of D's hidden layers.
        d_dropout: dropout in D's hidden layers.
        **kwargs: the options every family shares (:class:`lightning_gans.core.GANModule`): image_shape,
            latent_dim, n_critic, ema_decay, optimizers and learning rates, and the stabilisation toolbox.
    """

    def __init__(
        self,
        *,
        loss: str = "nonsaturating",
        g_hidden_dims: tuple[int, ...] = (256, 512, 1024),
        d_hidden_dims: tuple[int, ...] = (512, 256),
        d_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.loss = check_loss_name(loss)
        check_real_label(loss, self.real_label)
        self.generator = MLPGenerator(self.latent_dim, self.image_shape, tuple(g_hidden_dims))
        self.discriminator = MLPDiscriminator(self.image_shape, tuple(d_hidden_dims), d_dropout)
        self.finalize_networks()

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        adversarial_step(self, real, loss=self.loss)
