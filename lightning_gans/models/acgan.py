"""ACGAN: Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs" (arXiv:1610.09585).

Every generated image gets a class c ~ p(c) and noise z: X_fake = G(c, z). D never sees the label; it outputs a
source logit (real or fake) and class logits. With the source log-likelihood L_S and the class log-likelihood L_C,
D maximises L_S + L_C (it must classify real *and* generated images correctly) and G maximises L_C - L_S (its images
must look real *and* be recognisable as the class it was asked for). The step below is written out for that:

1. D step: source loss on real and fake (``loss``, non-saturating by default) + ``class_weight`` x cross-entropy of
   the class head on the real images (their labels) and on the fakes (the labels they were made for).
2. G step (every ``n_critic`` D steps): source loss on fresh fakes + ``class_weight`` x their cross-entropy.

``aux_classifier`` changes what the class heads learn. ``real``: the class head learns real images only (as
PyTorch-StudioGAN trains its AC discriminator), so it stays a classifier of real images.
``tac``: Gong et al. 2019, "Twin Auxiliary Classifiers GAN" (arXiv:1907.02690): the class head learns real images
only, a twin head on the same trunk learns the fakes' labels, and G also maximises the twin's cross-entropy, which
cancels ACGAN's pull toward easily classified, low-diversity samples (the paper's eq. 6, with lambda = class_weight).
``g_label_input: multiply`` feeds G ``z * embed(y)``: with the label concatenated to z, G can ignore z and draw one
image per class, which the unconditional source head does not stop (README's MNIST zoo: it did so on MNIST whatever
the class loss was, even with none, in 500-step trials); ``acgan_mnist.yaml`` uses both.

Deviations: DCGAN networks sized to the data (the paper's are ImageNet/CIFAR ones), a learned label embedding
concatenated with z (``g_label_input: multiply``: scaling z) instead of the class baked into z, the non-saturating G
loss for the source term, and the source head returns a logit (the sigmoid lives in the loss). The stabilisation
toolbox is honoured: DiffAugment and instance noise on every D input, the gradient penalty and R1 on the source
logit, feature matching on D's trunk. ADA (``ada``, :class:`lightning_gans.adaptive.Ada`) is accepted too: every D
input goes through it, the source head's real logits steer its p.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_gans.adaptive import Ada
from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.losses import discriminator_loss, generator_loss
from lightning_gans.networks.conditional import LABEL_INPUTS, AuxiliaryClassifierDiscriminator, ConditionalGenerator
from lightning_gans.optim import check_adversarial_options, make_optimizers
from lightning_gans.toolbox import Toolbox

AUX_CLASSIFIERS: tuple[str, ...] = ("ac", "real", "tac")


class ACGAN(GANModule):
    """Auxiliary-classifier GAN: conditional G, D with a source head and a class head.

    Args:
        loss: adversarial loss of the source head, one of nonsaturating, minimax, hinge, wasserstein, lsgan.
        class_weight: weight of the class cross-entropy in both losses (1 in the paper; StudioGAN's cond_lambda).
        aux_classifier: what D's class heads learn: ``ac`` (the paper: real images and the fakes' labels),
            ``real`` (real images only) or ``tac`` (TAC-GAN: real images, plus a twin head that learns the fakes'
            labels and that G plays against); see the module docstring.
        latent_dim: size of the noise vector z.
        g_embed_dim: size of the label embedding concatenated with z (with ``g_label_input: multiply``, latent_dim).
        g_label_input: how G takes the label: ``concat`` (``[z, embed(y)]``) or ``multiply`` (``z * embed(y)``, so
            that G cannot draw a class without using z; see the module docstring).
        g_channels: channels of G's last hidden layer (ngf).
        d_channels: channels of D's first layer (ndf).
        d_batch_norm: batch norm in D.
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
        class_weight: float = 1.0,
        aux_classifier: str = "ac",
        latent_dim: int = 100,
        g_embed_dim: int = 50,
        g_label_input: str = "concat",
        g_channels: int = 64,
        d_channels: int = 64,
        d_batch_norm: bool = True,
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
        if class_weight < 0:
            raise ValueError(f"class_weight must be 0 or positive, got {class_weight}")
        if aux_classifier not in AUX_CLASSIFIERS:
            raise ValueError(
                f"unknown aux_classifier {aux_classifier!r}: choose one of {', '.join(AUX_CLASSIFIERS)} "
                "(ac = the paper, real = class head on real images only, tac = TAC-GAN's twin classifier)"
            )
        if g_label_input not in LABEL_INPUTS:
            raise ValueError(f"Unknown ACGAN g_label_input {g_label_input!r}. Valid: {', '.join(LABEL_INPUTS)}.")
        self.loss, self.class_weight, self.aux_classifier, self.n_critic = loss, class_weight, aux_classifier, n_critic
        self.generator = ConditionalGenerator(
            latent_dim, num_classes, self.image_shape, g_embed_dim, "dcgan", g_channels, label_input=g_label_input
        )
        self.discriminator = AuxiliaryClassifierDiscriminator(
            self.image_shape, num_classes, d_channels, d_batch_norm, twin_head=aux_classifier == "tac"
        )
        self.toolbox.apply_spectral_norm(self.generator, self.discriminator)
        self.generator_ema = ema_copy(self.generator, ema_decay)

    def configure_optimizers(self):
        return make_optimizers(self.generator, self.discriminator, self.hparams)

    def random_labels(self, n: int) -> Tensor:
        """Classes for generated images, c ~ uniform over the classes (the paper's p_c)."""
        return torch.randint(self.num_classes, (n,), device=self.device)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                f"ACGAN trains on (images, labels) batches; got {type(batch).__name__}. Use a labelled "
                "datamodule (e.g. MNISTDataModule)."
            )
        real, real_labels = batch[0], batch[1].long()
        n, tb = real.shape[0], self.toolbox
        opt_g, opt_d = self.optimizers()

        def d(x):  # (source logit, class logits, trunk features), through ADA, DiffAugment, instance noise
            return self.discriminator(tb.d_input(x, self.g_steps, self.ada), return_features=True)

        def source(x, return_features=False):  # the source head alone, for the penalties and feature matching
            logit, _, features = d(x)
            return (logit, features) if return_features else logit

        def twin(features):  # TAC-GAN's twin classifier: class logits of generated images
            return self.discriminator.twin_head(features)

        # 1. D step: source loss L_S on real and fake + class loss L_C on real (their labels) and fake (the labels
        #    they were made for), plus the penalties switched on (on the source logit). With ``real`` the class head
        #    learns real images only; with ``tac`` the twin head learns the fakes' labels instead.
        with self.toggled_optimizer(opt_d):
            fake_labels = self.random_labels(n)
            fake = self.generator(self.noise(n), fake_labels).detach()
            source_real, class_real, _ = d(real)
            source_fake, class_fake, fake_features = d(fake)
            d_source = discriminator_loss(self.loss, source_real, source_fake, real_label=tb.real_label)
            d_class = F.cross_entropy(class_real, real_labels)
            if self.aux_classifier == "ac":
                d_class = d_class + F.cross_entropy(class_fake, fake_labels)
            elif self.aux_classifier == "tac":
                d_class = d_class + F.cross_entropy(twin(fake_features), fake_labels)
            penalties = tb.penalties(source, real, fake)
            d_loss = d_source + self.class_weight * d_class + sum(penalties.values())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        accuracy = (class_real.argmax(1) == real_labels).float().mean()
        real_logits = source_real  # ADA watches the source head
        ada = {"ada_p": self.ada.p, "ada_r_t": self.ada.r_t} if self.ada is not None else {}  # p of this step
        self.count_d_step(d_loss=d_loss, d_class=d_class, d_real_accuracy=accuracy, **penalties, **ada)
        if self.ada is not None:  # ADA: sign(D(real)) to the controller; every `interval` D steps p moves
            self.ada.observe(real_logits)
            self.ada.adjust(self.d_steps, n * self.trainer.world_size)

        # 2. G step, every n_critic D steps: look real to the source head (-L_S) and be recognised as the asked-for
        #    class by the class head (L_C); with ``tac``, also be hard for the twin head to classify.
        if self.d_steps % self.n_critic == 0:
            with self.toggled_optimizer(opt_g):
                fake_labels = self.random_labels(n)
                fake = self.generator(self.noise(n), fake_labels)
                source_fake, class_fake, fake_features = d(fake)
                g_class = F.cross_entropy(class_fake, fake_labels)
                if self.aux_classifier == "tac":
                    g_class = g_class - F.cross_entropy(twin(fake_features), fake_labels)
                g_loss = generator_loss(self.loss, source_fake) + self.class_weight * g_class
                extra = tb.feature_matching_terms(source, real, fake)
                g_loss = g_loss + sum(extra.values())
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            if self.generator_ema is not None:
                self.generator_ema.update(self.generator)
            self.count_g_step(g_loss=g_loss, g_class=g_class, **extra)
