"""ACGAN: Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs" (arXiv:1610.09585).

Every generated image gets a class c ~ p(c) and noise z: X_fake = G(c, z). D never sees the label; it outputs a
source logit (real or fake) and class logits. With the source log-likelihood L_S and the class log-likelihood L_C,
D maximises L_S + L_C (it must classify real *and* generated images correctly) and G maximises L_C - L_S (its images
must look real *and* be recognisable as the class it was asked for). The step below is written out for that:

1. D step: source loss on real and fake (``loss``, non-saturating by default) + ``class_weight`` x cross-entropy of
   the class head on the real images (their labels) and on the fakes (the labels they were made for).
2. G step (every ``n_critic`` D steps): source loss on fresh fakes + ``class_weight`` x their cross-entropy.

Deviations: DCGAN networks sized to the data (the paper's are ImageNet/CIFAR ones), a learned label embedding
concatenated with z instead of the class baked into z, the non-saturating G loss for the source term, and the
source head returns a logit (the sigmoid lives in the loss). The shared toolbox hooks are honoured: ``d_input``
(DiffAugment, instance noise) on every D input, ``discriminator_penalty`` on the source logit, feature matching.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_gans.core import GANModule
from lightning_gans.losses import check_loss_name, check_real_label, discriminator_loss, generator_loss
from lightning_gans.networks.conditional import AuxiliaryClassifierDiscriminator, ConditionalGenerator


class ACGAN(GANModule):
    """Auxiliary-classifier GAN: conditional G, D with a source head and a class head.

    Args:
        loss: adversarial loss of the source head, one of nonsaturating, minimax, hinge, wasserstein, lsgan.
        class_weight: weight of the class cross-entropy in both losses (1 in the paper; StudioGAN's cond_lambda).
        g_embed_dim: size of the label embedding concatenated with z.
        g_channels: channels of G's last hidden layer (ngf).
        d_channels: channels of D's first layer (ndf).
        d_batch_norm: batch norm in D.
        **kwargs: the options every family shares (:class:`lightning_gans.core.GANModule`): image_shape,
            num_classes, latent_dim, n_critic, ema_decay, optimizers and learning rates, and the stabilisation toolbox.
    """

    conditional = True

    def __init__(
        self,
        *,
        loss: str = "nonsaturating",
        class_weight: float = 1.0,
        g_embed_dim: int = 50,
        g_channels: int = 64,
        d_channels: int = 64,
        d_batch_norm: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.loss = check_loss_name(loss)
        check_real_label(loss, self.real_label)
        if class_weight < 0:
            raise ValueError(f"class_weight must be 0 or positive, got {class_weight}")
        self.class_weight = class_weight
        self.generator = ConditionalGenerator(self.latent_dim, self.num_classes, self.image_shape, g_embed_dim, "dcgan", g_channels)
        self.discriminator = AuxiliaryClassifierDiscriminator(self.image_shape, self.num_classes, d_channels, d_batch_norm)
        self.finalize_networks()

    def discriminate(self, x: Tensor, labels: Tensor | None = None, return_features: bool = False):
        """The *source* logit only (and D's features), so the base's penalties and feature matching work unchanged."""
        if return_features:
            source, _, features = self.discriminator(x, return_features=True)
            return source, features
        return self.discriminator(x)[0]

    def random_labels(self, n: int) -> Tensor:
        """Classes for generated images, c ~ uniform over the classes (the paper's p_c)."""
        return torch.randint(self.num_classes, (n,), device=self.device)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(f"ACGAN trains on (images, labels) batches; got {type(batch).__name__}. Use a labelled "
                             "datamodule (e.g. MNISTDataModule).")
        real, real_labels = batch[0], batch[1].long()
        n = real.shape[0]
        opt_g, opt_d = self.optimizers()

        # D: source loss on real and fake, class loss on real and fake.
        with self.toggled_optimizer(opt_d):
            fake_labels = self.random_labels(n)
            fake = self.generate(self.generator, self.noise(n), fake_labels).detach()
            source_real, class_real = self.discriminator(self.d_input(real))
            source_fake, class_fake = self.discriminator(self.d_input(fake))
            d_source = discriminator_loss(self.loss, source_real, source_fake, real_label=self.real_label)
            d_class = F.cross_entropy(class_real, real_labels) + F.cross_entropy(class_fake, fake_labels)
            penalties = self.discriminator_penalty(real, fake)
            d_loss = d_source + self.class_weight * d_class + sum(penalties.values())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        accuracy = (class_real.argmax(1) == real_labels).float().mean()
        self.after_discriminator_step(d_loss=d_loss, d_class=d_class, d_real_accuracy=accuracy, **penalties)

        # G: look real to the source head, be recognised as the asked-for class by the class head.
        if self.should_step_generator():
            with self.toggled_optimizer(opt_g):
                fake_labels = self.random_labels(n)
                fake = self.generate(self.generator, self.noise(n), fake_labels)
                source_fake, class_fake = self.discriminator(self.d_input(fake))
                g_class = F.cross_entropy(class_fake, fake_labels)
                g_loss = generator_loss(self.loss, source_fake) + self.class_weight * g_class
                extra = {}
                if self.feature_matching_weight > 0:
                    extra["feature_matching"] = self.generator_feature_matching(real, fake)
                    g_loss = g_loss + extra["feature_matching"]
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            self.after_generator_step(g_loss=g_loss, g_class=g_class, **extra)
