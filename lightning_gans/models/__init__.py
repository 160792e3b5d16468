"""The registry of families: one LightningModule per file, one line here."""

from __future__ import annotations

from lightning_gans.core import GANModule
from lightning_gans.models.dcgan import DCGAN
from lightning_gans.models.gan import GAN

#: name -> LightningModule class, for the contract tests, docs and ``lightning-gans --model NAME``.
FAMILIES: dict[str, type[GANModule]] = {
    "GAN": GAN,
    "DCGAN": DCGAN,
}

__all__ = ["FAMILIES", "GAN", "DCGAN"]
