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
"""

from __future__ import annotations

from typing import Any


from lightning_gans.core import GANModule
from lightning_gans.losses import check_loss_name, check_real_label
from lightning_gans.networks.conditional import (
    BACKBONES,
    DISCRIMINATOR_MODES,
    ConditionalDiscriminator,
    ConditionalGenerator,
)
from lightning_gans.steps import adversarial_step


class CGAN(GANModule):
    """Class-conditional GAN: label embedding in G, concatenation or projection in D.

    Args:
        loss: adversarial loss, one of nonsaturating, minimax, hinge, wasserstein, lsgan.
        discriminator: how D sees the label: ``concat`` (Mirza & Osindero) or ``projection`` (Miyato & Koyama).
        backbone: ``dcgan`` (convolutional) or ``mlp`` (fully connected, as in the paper).
        g_embed_dim: size of the label embedding concatenated with z.
        d_embed_dim: size of the label embedding concatenated to D's input (``concat`` only).
        g_channels: DCGAN: channels of G's last hidden layer (ngf).
        d_channels: DCGAN: channels of D's first layer (ndf).
        d_batch_norm: DCGAN: batch norm in D (turn off with a gradient penalty).
        g_hidden_dims: MLP: widths of G's hidden layers.
        d_hidden_dims: MLP: widths of D's hidden layers.
        **kwargs: the options every family shares (:class:`lightning_gans.core.GANModule`): image_shape,
            num_classes, latent_dim, n_critic, ema_decay, optimizers and learning rates, and the stabilisation toolbox.
    """

    conditional = True

    def __init__(
        self,
        *,
        loss: str = "nonsaturating",
        discriminator: str = "concat",
        backbone: str = "dcgan",
        g_embed_dim: int = 50,
        d_embed_dim: int = 10,
        g_channels: int = 64,
        d_channels: int = 64,
        d_batch_norm: bool = True,
        g_hidden_dims: tuple[int, ...] = (256, 512, 1024),
        d_hidden_dims: tuple[int, ...] = (512, 256),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.loss = check_loss_name(loss)
        check_real_label(loss, self.real_label)
        if discriminator not in DISCRIMINATOR_MODES:
            raise ValueError(f"Unknown CGAN discriminator {discriminator!r}. Valid: {', '.join(DISCRIMINATOR_MODES)}.")
        if backbone not in BACKBONES:
            raise ValueError(f"Unknown CGAN backbone {backbone!r}. Valid: {', '.join(BACKBONES)}.")
        self.generator = ConditionalGenerator(
            self.latent_dim, self.num_classes, self.image_shape, g_embed_dim, backbone, g_channels, tuple(g_hidden_dims)
        )
        self.discriminator = ConditionalDiscriminator(
            self.image_shape, self.num_classes, discriminator, d_embed_dim, backbone, d_channels, d_batch_norm,
            tuple(d_hidden_dims),
        )
        self.finalize_networks()

    def training_step(self, batch: Any, batch_idx: int) -> None:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(f"CGAN trains on (images, labels) batches; got {type(batch).__name__}. Use a labelled "
                             "datamodule (e.g. MNISTDataModule).")
        real, labels = batch[0], batch[1]
        adversarial_step(self, real, labels.long(), loss=self.loss)
