"""What the families with an encoder share (Autoencoder, VAE, BiGAN): plain functions and one small module.

- :class:`FixedImages`: a fixed batch of real images for the reconstruction grids, saved in checkpoints;
- :func:`eval_mode`: networks in eval mode for a block, their modes restored afterwards;
- :func:`decode`: codes to images with the sampling decoder (the EMA copy when on), eval mode, no grad;
- :func:`samples_and_reconstructions`: the grid of those families: samples, real images, reconstructions.

No training step lives here: each family file keeps its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from lightning_gans.counters import HostCount

if TYPE_CHECKING:
    from lightning_gans.core import GANModule

__all__ = ["FixedImages", "decode", "eval_mode", "samples_and_reconstructions"]


class FixedImages(nn.Module):
    """A fixed batch of real images for reconstruction grids: filled once from the first training batch.

    Both the images and how many are stored are buffers (saved in checkpoints, moved with the model); the buffer has
    its full size from the start, so checkpoints load into a freshly built model.

    Args:
        size: images to keep (0 keeps none).
        image_shape: ``(C, H, W)`` of the images.
    """

    def __init__(self, size: int, image_shape: tuple[int, ...]) -> None:
        super().__init__()
        if size < 0:
            raise ValueError(f"the number of fixed images must be 0 or more, got {size}")
        self.register_buffer("images", torch.zeros(size, *image_shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.stored = HostCount(self, "count")  # read on the host: no device sync per step

    @property
    def filled(self) -> bool:
        return self.stored.get() > 0

    @property
    def batch(self) -> Tensor:
        """The stored images (an empty batch before the first fill)."""
        return self.images[: self.stored.get()]

    @torch.no_grad()
    def fill(self, x: Tensor) -> None:
        """Keep the first images of ``x`` if nothing is stored yet (later calls do nothing)."""
        if self.filled or self.images.shape[0] == 0:
            return
        k = min(self.images.shape[0], x.shape[0])
        self.images[:k].copy_(x[:k].detach())
        self.stored.set(k)


@contextlib.contextmanager
def eval_mode(*nets: nn.Module) -> Iterator[None]:
    """Put ``nets`` in eval mode (batch-norm running statistics, no dropout) for the block, then restore them."""
    modes = [net.training for net in nets]
    try:
        for net in nets:
            net.eval()
        yield
    finally:
        for net, mode in zip(nets, modes):
            net.train(mode)


def decode(module: GANModule, z: Tensor) -> Tensor:
    """Codes -> images in [-1, 1] with the sampling decoder (EMA copy when on), eval mode, no grad."""
    decoder = module.sampling_generator()
    with torch.no_grad(), eval_mode(decoder):
        return decoder(z.to(module.device)).clamp(-1.0, 1.0)


def samples_and_reconstructions(module: GANModule, fixed: FixedImages) -> Tensor:
    """Grid images: fixed-noise samples, then the fixed real batch, then its reconstructions (same order).

    ``module`` needs ``reconstruct(x)``; before ``fixed`` is filled (no training yet) the grid holds the samples only.
    """
    samples = module.sample(z=module.fixed_noise)
    if not fixed.filled:
        return samples
    real = fixed.batch.to(samples.device)
    return torch.cat([samples, real.clamp(-1.0, 1.0), module.reconstruct(real)])
