"""DCGAN generator and discriminator (Radford et al. 2016, "Unsupervised Representation Learning with DCGANs").

As in the paper: strided (transposed) convolutions instead of pooling, batch norm in G and in D except D's input
layer, ReLU in G with tanh output, LeakyReLU(0.2) in D, weights from N(0, 0.02). The paper's D ends in a sigmoid;
here it returns the logit (the loss applies the sigmoid). The paper's networks are for 64x64; here the number of
up/down-sampling stages follows the image size, which must be 4 * 2^k (32, 64, 128, ...) or 7 * 2^k (28 for
MNIST), k >= 1.
"""

from __future__ import annotations

from torch import Tensor, nn

_BASES = (4, 7)


def dcgan_stages(image_size: int) -> tuple[int, int]:
    """(base, k) with image_size = base * 2^k, or a ValueError that lists the sizes DCGAN can make."""
    for base in _BASES:
        size, k = image_size, 0
        while size % 2 == 0 and size > base:
            size //= 2
            k += 1
        if size == base and k >= 1:
            return base, k
    raise ValueError(
        f"DCGAN cannot make {image_size}x{image_size} images: the size must be 4*2^k or 7*2^k "
        "(e.g. 28, 32, 56, 64, 128). Resize the data (datamodule image_size) to one of them."
    )


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) for conv weights, N(1, 0.02) for batch-norm scales, zero biases (the paper's init)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z -> (transposed conv, BN, ReLU) x k -> tanh image.

    Args:
        latent_dim: size of z.
        image_shape: (C, H, W) with H == W a size DCGAN can make.
        base_channels: channels of the last hidden layer (the paper's ngf, 64 for 64x64).
    """

    def __init__(
        self, latent_dim: int = 100, image_shape: tuple[int, int, int] = (1, 28, 28), base_channels: int = 64
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        if height != width:
            raise ValueError(f"DCGAN makes square images, got {height}x{width}")
        base, k = dcgan_stages(height)
        ch = base_channels * 2 ** (k - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, ch, base, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image -> (strided conv, BN, LeakyReLU) x k -> one logit.

    Args:
        image_shape: (C, H, W) with H == W a size DCGAN can make.
        base_channels: channels of the first layer (the paper's ndf).
        batch_norm: batch norm after every conv but the first; turn it off for critics with a gradient penalty.
    """

    def __init__(
        self, image_shape: tuple[int, int, int] = (1, 28, 28), base_channels: int = 64, batch_norm: bool = True
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        if height != width:
            raise ValueError(f"DCGAN takes square images, got {height}x{width}")
        base, k = dcgan_stages(height)
        ch = base_channels
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(k - 1):
            layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False))
            if batch_norm:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, 1, base, 1, 0, bias=False)
        self.apply(init_dcgan_weights)

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        features = self.features(x)
        logits = self.head(features).flatten()
        return (logits, features.flatten(1)) if return_features else logits
