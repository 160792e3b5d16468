"""lightning-gans: GAN families as PyTorch Lightning modules, one command to train each.

Importing the package changes nothing in Lightning (no strategy or other registry entry). For DDP, the CLI picks
:class:`~lightning_gans.strategy.GANDDPStrategy` by itself; a plain Trainer takes ``strategy=GANDDPStrategy()``.
"""

from lightning_gans.core import GANModule
from lightning_gans.pretrained import from_pretrained
from lightning_gans.strategy import GANDDPStrategy

__version__ = "0.1.0"
__all__ = ["GANDDPStrategy", "GANModule", "__version__", "from_pretrained"]
