"""The registry of families: one LightningModule per file; registering a family is its import line here."""

from __future__ import annotations

from lightning_gans.core import GANModule
from lightning_gans.models.acgan import ACGAN
from lightning_gans.models.autoencoder import Autoencoder
from lightning_gans.models.bigan import BiGAN
from lightning_gans.models.cgan import CGAN
from lightning_gans.models.cyclegan import CycleGAN
from lightning_gans.models.dcgan import DCGAN
from lightning_gans.models.dfgan import DFGAN
from lightning_gans.models.esrgan import ESRGAN
from lightning_gans.models.gan import GAN
from lightning_gans.models.gan_int_cls import GANINTCLS
from lightning_gans.models.gaugan import GauGAN
from lightning_gans.models.pix2pix import Pix2Pix
from lightning_gans.models.sagan import SAGAN
from lightning_gans.models.sngan import SNGAN
from lightning_gans.models.srgan import SRGAN
from lightning_gans.models.srresnet import SRResNet
from lightning_gans.models.stylegan import StyleGAN
from lightning_gans.models.vae import VAE
from lightning_gans.models.wgan import WGAN
from lightning_gans.models.wgan_gp import WGANGP

#: name -> LightningModule class, for the contract tests, docs and ``lightning-gans --model NAME``: every family
#: imported above (a GANModule subclass defined in ``lightning_gans.models``).
FAMILIES: dict[str, type[GANModule]] = {
    cls.__name__: cls for cls in GANModule.__subclasses__() if cls.__module__.startswith(f"{__name__}.")
}

__all__ = ["FAMILIES", *sorted(FAMILIES)]
