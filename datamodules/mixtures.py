"""2-D Gaussian mixtures of the mode-collapse literature, as a datamodule.

- ``ring8``: 8 Gaussians evenly spaced on a circle of radius 2, std 0.02 (Metz et al., "Unrolled Generative
  Adversarial Networks", ICLR 2017; Srivastava et al., "VEEGAN", NeurIPS 2017).
- ``grid25``: 25 Gaussians on a 5 x 5 grid at {-4, -2, 0, 2, 4}^2, std 0.05 (Srivastava et al. 2017; Lin et al.,
  "PacGAN", NeurIPS 2018).

**Scale.** Generators end in ``tanh``, so the points are divided by ``scale`` (2.5 for the ring, 5 for the grid) to
lie in [-1, 1]: the ring has radius 0.8 and std 0.008, the grid spans [-0.8, 0.8] with spacing 0.4 and std 0.01.
``std`` is given in the literature's units (before scaling); ``mode_centers`` and ``mode_std`` are in the scaled
units the model sees, and the evaluation (:class:`lightning_gans.metrics.MixtureModes`: modes covered, share of
samples within 3 std of a centre) reads them from the datamodule. Points beyond [-1, 1] (more than 25 std out) are
clipped.

The contract of :mod:`datamodules.base`: ``image_shape = (2,)`` (points, not images), ``num_classes = 0`` (the mode
index is not a class label for the models). Batches are ``(points [B, 2], mode index [B])`` tuples, like the
``(images, labels)`` of image datasets; models take ``batch[0]``. The data are drawn once, seeded, in ``setup``:
``num_samples`` training points, ``num_val_samples`` validation points drawn with another seed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from datamodules.base import ImageDataModule

#: kind -> (default std, scale) in the literature's units.
KINDS = {"ring8": (0.02, 2.5), "grid25": (0.05, 5.0)}


def mixture_centers(kind: str) -> Tensor:
    """Mode centres in the literature's units: ring of radius 2 (8) or the grid {-4, -2, 0, 2, 4}^2 (25)."""
    if kind == "ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([2 * angles.cos(), 2 * angles.sin()], dim=1).float()
    if kind == "grid25":
        ticks = torch.arange(-4, 5, 2, dtype=torch.float64)
        ys, xs = torch.meshgrid(ticks, ticks, indexing="ij")
        return torch.stack([xs.flatten(), ys.flatten()], dim=1).float()
    raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")


def sample_mixture(
    centers: Tensor, std: float, n: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``n`` points from the equal-weight mixture of isotropic Gaussians at ``centers``: ``(points, mode index)``."""
    modes = torch.randint(len(centers), (n,), generator=generator)
    points = centers[modes] + std * torch.randn(n, 2, generator=generator)
    return points, modes


class GaussianMixtureDataModule(ImageDataModule):
    """8 Gaussians on a ring or 25 on a grid, scaled into [-1, 1] (see the module docstring).

    Args:
        kind: "ring8" or "grid25".
        num_samples: training points (drawn once; an epoch is one pass over them).
        num_val_samples: validation points (the evaluation compares generated samples with the modes, not with
            these; they serve FID-style metrics on points and the validation loop).
        std: standard deviation of each Gaussian in the literature's units; default 0.02 (ring8) or 0.05 (grid25).
        scale: divisor that maps the data into [-1, 1]; default 2.5 (ring8) or 5 (grid25).
        seed: seed of the draw (validation uses ``seed + 1``).
        batch_size, num_workers, pin_memory: loader settings.
    """

    def __init__(
        self,
        kind: str = "ring8",
        num_samples: int = 100_000,
        num_val_samples: int = 10_000,
        std: float | None = None,
        scale: float | None = None,
        seed: int = 0,
        batch_size: int = 256,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        if num_samples < 1 or num_val_samples < 1:
            raise ValueError(f"num_samples and num_val_samples must be positive, got {num_samples}, {num_val_samples}")
        default_std, default_scale = KINDS[kind]
        std = default_std if std is None else float(std)
        scale = default_scale if scale is None else float(scale)
        if std <= 0 or scale <= 0:
            raise ValueError(f"std and scale must be positive, got std={std}, scale={scale}")
        self.kind = kind
        self.num_samples = num_samples
        self.num_val_samples = num_val_samples
        self.std = std
        self.scale = scale
        self.seed = seed
        self.image_shape = (2,)
        self.num_classes = 0
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    @property
    def mode_centers(self) -> Tensor:
        """Mode centres in the scaled units the model sees (``num_modes x 2``)."""
        return mixture_centers(self.kind) / self.scale

    @property
    def mode_std(self) -> float:
        """Standard deviation of each mode in the scaled units."""
        return self.std / self.scale

    @property
    def num_modes(self) -> int:
        return len(mixture_centers(self.kind))

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` scaled points in [-1, 1] and their mode indices."""
        points, modes = sample_mixture(mixture_centers(self.kind), self.std, n, generator)
        return (points / self.scale).clamp(-1.0, 1.0), modes

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = TensorDataset(*self.sample(self.num_samples, torch.Generator().manual_seed(self.seed)))
        if self.val_set is None:
            gen = torch.Generator().manual_seed(self.seed + 1)
            self.val_set = TensorDataset(*self.sample(self.num_val_samples, gen))

    def train_dataloader(self) -> DataLoader:
        return self._train_loader(self.train_set, drop_last=len(self.train_set) > self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, shuffle=False, **self._loader_kwargs())

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()


__all__ = ["GaussianMixtureDataModule", "mixture_centers", "sample_mixture"]
