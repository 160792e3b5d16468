"""GAN: Goodfellow et al. 2014, "Generative Adversarial Nets" (arXiv:1406.2661), with MLP networks.

Algorithm 1 of the paper, one minibatch at a time: update D on real and generated samples (``n_critic`` times,
the paper's k, each on a fresh batch), then update G once. Deviations: G minimises the non-saturating loss
-log D(G(z)) by default (the paper's own suggestion; ``loss: minimax`` gives log(1 - D(G(z)))), Adam instead of
momentum SGD, LeakyReLU units instead of maxout, tanh images in [-1, 1]; D returns a logit.
"""

from __future__ import annotations

from typing import Any

from lightning_gans.core import GANModule
from lightning_gans.losses import check_loss_name, discriminator_loss, generator_loss
from lightning_gans.networks.mlp import MLPDiscriminator, MLPGenerator
from lightning_gans.optim import make_optimizer


class GAN(GANModule):
    """The original GAN with fully connected G and D.

    Args:
        loss: adversarial loss, one of nonsaturating, minimax, hinge, wasserstein, lsgan.
        g_hidden_dims: widths of G's hidden layers.
        d_hidden_dims: widths of D's hidden layers.
        d_dropout: dropout in D's hidden layers.
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
        g_hidden_dims: tuple[int, ...] = (256, 512, 1024),
        d_hidden_dims: tuple[int, ...] = (512, 256),
        d_dropout: float = 0.0,
        optimizer: str = "adam",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.loss = check_loss_name(loss)
        self.generator = MLPGenerator(self.latent_dim, self.image_shape, tuple(g_hidden_dims))
        self.discriminator = MLPDiscriminator(self.image_shape, tuple(d_hidden_dims), d_dropout)
        self.configure_ema()

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        opt_g, opt_d = self.optimizers()

        # Update D by descending its loss on real samples x and generated samples G(z).
        with self.toggled_optimizer(opt_d):
            fake = self.generator(self.noise(real.shape[0])).detach()
            d_loss = discriminator_loss(self.loss, self.discriminator(real), self.discriminator(fake))
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        self.after_discriminator_step(d_loss=d_loss)

        # After n_critic D steps, update G by descending its loss on D(G(z)).
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



