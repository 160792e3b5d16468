"""lightning-gans: GAN families as PyTorch Lightning modules, one command to train each.

Importing the package registers :class:`~lightning_gans.strategy.GANDDPStrategy` under Lightning's ``ddp``
names (one DDP per network; see :mod:`lightning_gans.strategy`).
"""

from lightning_gans.core import GANModule
from lightning_gans.strategy import GANDDPStrategy, register_gan_ddp

register_gan_ddp()

__version__ = "0.1.0"
__all__ = ["GANDDPStrategy", "GANModule", "__version__"]
