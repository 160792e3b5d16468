"""WGAN-GP: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (arXiv:1704.00028).

WGAN with the weight clipping replaced by a gradient penalty: the critic's loss is
E[f(G(z))] - E[f(x)] + lambda E[(||grad f(x_hat)||_2 - 1)^2], x_hat uniformly between a real and a generated sample.
The step is Goodfellow et al.'s Algorithm 1 (:func:`lightning_gans.steps.adversarial_step`) with the Wasserstein
loss and the shared ``gradient_penalty`` option; this family sets the paper's Algorithm 1 defaults: lambda = 10,
n_critic = 5, Adam with lr 1e-4 and betas (0, 0.9). The penalty is logged as ``train/gp``.

The penalty is per sample, so the critic has **no batch norm** (the paper: "we omit batch normalization in the
critic"): DCGAN networks with a norm-free critic, as the official MNIST script (igul222/improved_wgan_training,
``gan_mnist.py``) uses. Deviations: that script uses betas (0.5, 0.9) and no batch norm in G either; the paper's
CIFAR ResNet critic uses layer normalisation, which the DCGAN critic does not offer (it has batch norm or none),
so this critic has none.
"""

from __future__ import annotations

from typing import Any

from lightning_gans.core import GANModule
from lightning_gans.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from lightning_gans.steps import adversarial_step


class WGANGP(GANModule):
    """Wasserstein GAN with gradient penalty.

    Args:
        g_channels: channels of G's last hidden layer (ngf).
        d_channels: channels of the critic's first layer (ndf).
        gradient_penalty: lambda, the penalty weight (paper: 10).
        n_critic: critic steps per generator step (paper: 5).
        lr_g: generator learning rate (paper: 1e-4).
        lr_d: critic learning rate (paper: 1e-4).
        betas: Adam's betas for both networks (paper: (0, 0.9)).
        **kwargs: the other options every family shares (:class:`lightning_gans.core.GANModule`): image_shape,
            latent_dim, ema_decay, optimizers, and the stabilisation toolbox.
    """

    def __init__(
        self,
        *,
        g_channels: int = 64,
        d_channels: int = 64,
        gradient_penalty: float = 10.0,
        n_critic: int = 5,
        lr_g: float = 1e-4,
        lr_d: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            gradient_penalty=gradient_penalty, n_critic=n_critic, lr_g=lr_g, lr_d=lr_d, betas=betas, **kwargs
        )
        self.save_hyperparameters()
        if self.real_label != 1.0:
            raise ValueError("WGAN-GP's critic has no target to smooth: leave real_label at 1.0")
        self.loss = "wasserstein"
        self.generator = DCGANGenerator(self.latent_dim, self.image_shape, g_channels)
        self.discriminator = DCGANDiscriminator(self.image_shape, d_channels, batch_norm=False)
        self.finalize_networks()

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        adversarial_step(self, real, loss=self.loss)
