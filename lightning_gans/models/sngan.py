"""SNGAN: Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for Generative Adversarial Networks"
(arXiv:1802.05957).

Every layer of the discriminator is divided by its spectral norm (largest singular value, estimated with one power
iteration per forward), which bounds D's Lipschitz constant without the per-sample cost of a gradient penalty. The
step is Goodfellow et al.'s Algorithm 1 (:func:`lightning_gans.steps.adversarial_step`).

Defaults are the paper's ResNet CIFAR-10 setting (as in pfnet-research/sngan_projection and mimicry's
``sngan`` example): the ResNet G and D of appendix B (:mod:`lightning_gans.networks.resnet_gan`), hinge loss, Adam
with lr 2e-4 and betas (0, 0.9) for both networks, n_dis = 5 D steps per G step, z of size 128. G uses batch norm
and no spectral norm. Deviations: 28x28 images use the 32x32 networks from a 7x7 start (see the network module);
the paper's experiments are unconditional, and so is this family (CGAN with ``discriminator: projection`` is the
class-conditional variant).
"""

from __future__ import annotations

from typing import Any

from lightning_gans.core import GANModule
from lightning_gans.losses import check_loss_name, check_real_label
from lightning_gans.networks.resnet_gan import ResNetDiscriminator, ResNetGenerator
from lightning_gans.steps import adversarial_step


class SNGAN(GANModule):
    """Spectrally normalised ResNet GAN.

    Args:
        loss: adversarial loss, one of hinge (paper's best), nonsaturating, minimax, wasserstein, lsgan.
        g_channels: G's widest feature width; None takes the paper's value for the image size (256 at 28/32).
        d_channels: D's widest feature width; None takes the paper's value (128 at 28/32).
        spectral_norm_d: spectral norm on every layer of D (the point of SNGAN; off only for ablations).
        latent_dim: size of z (paper: 128).
        n_critic: D steps per G step (paper: 5).
        lr_g: generator learning rate (paper: 2e-4).
        lr_d: discriminator learning rate (paper: 2e-4).
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
        spectral_norm_d: bool = True,
        latent_dim: int = 128,
        n_critic: int = 5,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            spectral_norm_d=spectral_norm_d, latent_dim=latent_dim, n_critic=n_critic, lr_g=lr_g, lr_d=lr_d,
            betas=betas, **kwargs,
        )
        self.save_hyperparameters()
        self.loss = check_loss_name(loss)
        check_real_label(loss, self.real_label)
        self.generator = ResNetGenerator(self.latent_dim, self.image_shape, g_channels)
        self.discriminator = ResNetDiscriminator(self.image_shape, d_channels, spectral_norm=spectral_norm_d)
        self.finalize_networks()

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        adversarial_step(self, real, loss=self.loss)
