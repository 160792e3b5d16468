"""Plain generator and discriminator architectures (no training logic, no Lightning)."""

from lightning_gans.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from lightning_gans.networks.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator"]
