"""The registry of families: one LightningModule per file, one line here."""

from __future__ import annotations

from lightning_gans.core import GANModule
from lightning_gans.models.dcgan import DCGAN
from lightning_gans.models.gan import GAN
from lightning_gans.models.bigan import BiGAN
from lightning_gans.models.autoencoder import Autoencoder
from lightning_gans.models.vae import VAE
from lightning_gans.models.cgan import CGAN
from lightning_gans.models.acgan import ACGAN
from lightning_gans.models.wgan import WGAN
from lightning_gans.models.wgan_gp import WGANGP
from lightning_gans.models.sngan import SNGAN
from lightning_gans.models.sagan import SAGAN
from lightning_gans.models.pix2pix import Pix2Pix
from lightning_gans.models.cyclegan import CycleGAN
from lightning_gans.models.gaugan import GauGAN

#: name -> LightningModule class, for the contract tests, docs and ``lightning-gans --model NAME``.
FAMILIES: dict[str, type[GANModule]] = {
    "GAN": GAN,
    "DCGAN": DCGAN,
    "BiGAN": BiGAN,
    "Autoencoder": Autoencoder,
    "VAE": VAE,
    "CGAN": CGAN,
    "ACGAN": ACGAN,
    "WGAN": WGAN,
    "WGANGP": WGANGP,
    "SNGAN": SNGAN,
    "SAGAN": SAGAN,
    "Pix2Pix": Pix2Pix,
    "CycleGAN": CycleGAN,
    "GauGAN": GauGAN,
}

__all__ = ["FAMILIES", "GAN", "DCGAN"]
__all__ += ["BiGAN", "Autoencoder", "VAE"]
__all__ += ["CGAN", "ACGAN", "WGAN", "WGANGP", "SNGAN", "SAGAN"]
__all__ += ["Pix2Pix", "CycleGAN", "GauGAN"]
