"""DCGAN: Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional GANs"
(arXiv:1511.06434).

The paper's recipe: all-convolutional G and D with batch norm (not in D's input layer), ReLU/tanh in G,
LeakyReLU(0.2) in D, Adam with lr 2e-4 and beta1 0.5, weights from N(0, 0.02), minibatch 128. Alternating
updates as in Goodfellow et al.'s Algorithm 1 with the non-saturating G loss. Deviations: D returns a logit (the
sigmoid lives in the loss), the number of stages follows the image size (28x28 MNIST starts from 7x7), and the
loss is a config value (``loss: lsgan`` is LSGAN on DCGAN networks).
"""

from __future__ import annotations

from typing import Any

from lightning_gans.core import GANModule
from lightning_gans.losses import check_loss_name, check_real_label
from lightning_gans.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from lightning_gans.steps import adversarial_step


class DCGAN(GANModule):
    """Deep convolutional GAN.

    Args:
        loss: adversarial loss, one of nonsaturating, minimax, hinge, wasserstein, lsgan.
        g_channels: channels of G's last hidden layer (the paper's ngf).
        d_channels: channels of D's first layer (the paper's ndf).
        d_batch_norm: batch norm in D (turn off for a gradient-penalty critic).
        **kwargs: the options every family shares (:class:`lightning_gans.core.GANModule`): image_shape,
            latent_dim, n_critic, ema_decay, optimizers and learning rates, and the stabilisation toolbox.
    """

    def __init__(
        self,
        *,
        loss: str = "nonsaturating",
        g_channels: int = 64,
        d_channels: int = 64,
        d_batch_norm: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.loss = check_loss_name(loss)
        check_real_label(loss, self.real_label)
        self.generator = DCGANGenerator(self.latent_dim, self.image_shape, g_channels)
        self.discriminator = DCGANDiscriminator(self.image_shape, d_channels, d_batch_norm)
        self.finalize_networks()

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        adversarial_step(self, real, loss=self.loss)
