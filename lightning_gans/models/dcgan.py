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
from lightning_gans.losses import check_loss_name, discriminator_loss, generator_loss
from lightning_gans.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from lightning_gans.optim import make_optimizer


class DCGAN(GANModule):
    """Deep convolutional GAN.

    Args:
        loss: adversarial loss, one of nonsaturating, minimax, hinge, wasserstein, lsgan.
        g_channels: channels of G's last hidden layer (the paper's ngf).
        d_channels: channels of D's first layer (the paper's ndf).
        d_batch_norm: batch norm in D (turn off for a gradient-penalty critic).
        optimizer: optimizer for both networks (adam, adamw, rmsprop, sgd).
        lr_g: generator learning rate.
        lr_d: discriminator learning rate.
        betas: Adam's betas (SGD uses the first as momentum).
        **kwargs: the shared options of :class:`lightning_gans.core.GANModule` (image_shape, latent_dim, n_critic,
            ema_decay, ...).
    """

    def __init__(
        self,
        *,
        loss: str = "nonsaturating",
        g_channels: int = 64,
        d_channels: int = 64,
        d_batch_norm: bool = True,
        optimizer: str = "adam",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.loss = check_loss_name(loss)
        self.generator = DCGANGenerator(self.latent_dim, self.image_shape, g_channels)
        self.discriminator = DCGANDiscriminator(self.image_shape, d_channels, d_batch_norm)
        self.configure_ema()

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        opt_g, opt_d = self.optimizers()

        # D step: real images should score high, G(z) low. D sees real and fake in separate batches (batch norm).
        with self.toggled_optimizer(opt_d):
            fake = self.generator(self.noise(real.shape[0])).detach()
            d_loss = discriminator_loss(self.loss, self.discriminator(real), self.discriminator(fake))
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        self.after_discriminator_step(d_loss=d_loss)

        # G step (every n_critic D steps): make D score fresh samples G(z) as real.
        if self.should_step_generator():
            with self.toggled_optimizer(opt_g):
                g_loss = generator_loss(self.loss, self.discriminator(self.generator(self.noise(real.shape[0]))))
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            self.after_generator_step(g_loss=g_loss)

    def configure_optimizers(self):
        hp = self.hparams
        opt_g = make_optimizer(self.generator.parameters(), hp.optimizer, hp.lr_g, hp.betas)
        opt_d = make_optimizer(self.discriminator.parameters(), hp.optimizer, hp.lr_d, hp.betas)
        return opt_g, opt_d
