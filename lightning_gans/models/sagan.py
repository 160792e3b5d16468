"""SAGAN: Zhang, Goodfellow, Metaxas & Odena 2019, "Self-Attention Generative Adversarial Networks"
(arXiv:1805.08318).

SNGAN's ResNet networks with a self-attention block in both G and D, so a position can use features from the
whole image, not only its neighbourhood. Two stabilisers from the paper: spectral norm in **both** G and D, and
the two time-scale update rule (TTUR): D learns faster (lr 4e-4) than G (lr 1e-4), with one D step per G step.
Hinge loss, Adam with betas (0, 0.9), z of size 128. The step is Goodfellow et al.'s Algorithm 1
(:func:`lightning_gans.steps.adversarial_step`).

The attention block (:class:`lightning_gans.networks.blocks.SelfAttention`, BigGAN/StudioGAN form with a residual
weight gamma that starts at 0) goes after the block whose output is ``attention_resolution`` pixels wide; the
default is half the image size (14 for 28x28, 16 for 32x32: StudioGAN's CIFAR placement, one of the paper's
middle-to-high feature maps). Deviations: the paper trains class-conditional ImageNet 128x128 models (conditional
batch norm in G, projection in D); this family is unconditional. The official code (brain-research/
self-attention-gan) keeps TensorFlow's default beta2 = 0.999; the paper states (0, 0.9), which is used here.
"""

from __future__ import annotations

from typing import Any

from lightning_gans.core import GANModule
from lightning_gans.losses import check_loss_name, check_real_label
from lightning_gans.networks.resnet_gan import ResNetDiscriminator, ResNetGenerator
from lightning_gans.steps import adversarial_step


class SAGAN(GANModule):
    """Self-attention GAN: ResNet G and D with self-attention, spectral norm in both, TTUR.

    Args:
        loss: adversarial loss, one of hinge (paper), nonsaturating, minimax, wasserstein, lsgan.
        g_channels: G's widest feature width; None takes the SNGAN value for the image size (256 at 28/32).
        d_channels: D's widest feature width; None takes the SNGAN value (128 at 28/32). At least 8 (attention).
        g_attention_resolution: feature-map width after which G attends; None = half the image size.
        d_attention_resolution: feature-map width after which D attends; None = half the image size.
        spectral_norm_g: spectral norm on every layer of G (paper: on).
        spectral_norm_d: spectral norm on every layer of D (paper: on).
        latent_dim: size of z (paper: 128).
        n_critic: D steps per G step (paper: 1, with TTUR instead of extra D steps).
        lr_g: generator learning rate (paper: 1e-4).
        lr_d: discriminator learning rate (paper: 4e-4).
        betas: Adam's betas (paper: (0, 0.9)).
        **kwargs: the other options every family shares (:class:`lightning_gans.core.GANModule`): image_shape,
            ema_decay, optimizers, and the stabilisation toolbox.
    """

    def __init__(
        self,
        *,
        loss: str = "hinge",
        g_channels: int | None = None,
        d_channels: int | None = None,
        g_attention_resolution: int | None = None,
        d_attention_resolution: int | None = None,
        spectral_norm_g: bool = True,
        spectral_norm_d: bool = True,
        latent_dim: int = 128,
        n_critic: int = 1,
        lr_g: float = 1e-4,
        lr_d: float = 4e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            spectral_norm_g=spectral_norm_g, spectral_norm_d=spectral_norm_d, latent_dim=latent_dim,
            n_critic=n_critic, lr_g=lr_g, lr_d=lr_d, betas=betas, **kwargs,
        )
        self.save_hyperparameters()
        self.loss = check_loss_name(loss)
        check_real_label(loss, self.real_label)
        if len(self.image_shape) != 3:
            raise ValueError(f"SAGAN makes images (C, H, W), got image_shape {self.image_shape}")
        half = self.image_shape[-1] // 2
        self.generator = ResNetGenerator(
            self.latent_dim, self.image_shape, g_channels,
            attention_resolution=half if g_attention_resolution is None else g_attention_resolution,
            spectral_norm=spectral_norm_g,
        )
        self.discriminator = ResNetDiscriminator(
            self.image_shape, d_channels,
            attention_resolution=half if d_attention_resolution is None else d_attention_resolution,
            spectral_norm=spectral_norm_d,
        )
        self.finalize_networks()

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        adversarial_step(self, real, loss=self.loss)
