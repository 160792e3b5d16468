"""Stabilisation toolbox: differentiable augmentation (DiffAugment) and instance noise, as plain functions.

* :func:`diff_augment` follows Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"
  (mit-han-lab/data-efficient-gans, ``DiffAugment_pytorch.py``): the same random, differentiable transformations are
  applied to real *and* generated images before *every* discriminator call (in both the D and the G step), so the
  generator still receives gradients through them. Policies and their ranges, as in the official code:

  - ``color``: brightness ``+ U(-0.5, 0.5)``, saturation ``x U(0, 2)`` around the per-pixel channel mean, contrast
    ``x U(0.5, 1.5)`` around the per-image mean (one draw per image each);
  - ``translation``: an integer shift of up to 1/8 of the size in each direction, zero-padded;
  - ``cutout``: a square of half the image size at a uniformly random centre set to zero (clipped at the borders).

  ``brightness``, ``saturation`` and ``contrast`` are also accepted alone. Deviation: translation gathers from a
  zero-padded copy (no clamping of indices), which is the same transformation written more directly; all
  randomness can come from an explicit ``torch.Generator``.
* :func:`instance_noise` follows Sønderby et al. 2017 / Arjovsky & Bottou 2017: Gaussian noise added to every
  discriminator input, with a standard deviation the caller anneals to zero (:func:`annealed_std`).

Label smoothing lives with the losses (``lightning_gans.losses``, ``real_label``), not here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["POLICIES", "annealed_std", "diff_augment", "instance_noise", "parse_policy"]

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """One U(0, 1) draw per image, shaped to broadcast over (C, H, W)."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)


def _randint(low: int, high: int, n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """``n`` integers in ``[low, high)`` on x's device."""
    return torch.randint(low, high, (n,), generator=generator, device=x.device)


def _brightness(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return x + (_uniform(x, generator) - 0.5)


def _saturation(x: Tensor, generator: torch.Generator | None) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (2.0 * _uniform(x, generator)) + mean


def _contrast(x: Tensor, generator: torch.Generator | None) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def _translation(x: Tensor, generator: torch.Generator | None, ratio: float = TRANSLATION_RATIO) -> Tensor:
    """Shift each image by integers (dy, dx) in ``[-s, s]``, s = round(ratio * size), filling with zeros."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sy == 0 and sx == 0:
        return x
    dy = _randint(-sy, sy + 1, n, x, generator)
    dx = _randint(-sx, sx + 1, n, x, generator)
    padded = F.pad(x, (sx, sx, sy, sy))
    # out[i, j] = x[i - dy, j - dx], i.e. padded[i - dy + sy, j - dx + sx]; the padding supplies the zeros.
    rows = (torch.arange(h, device=x.device)[None, :] - dy[:, None] + sy)[:, :, None]  # (N, H, 1)
    cols = (torch.arange(w, device=x.device)[None, :] - dx[:, None] + sx)[:, None, :]  # (N, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: Tensor, generator: torch.Generator | None, ratio: float = CUTOUT_RATIO) -> Tensor:
    """Zero a square of ``round(ratio * size)`` pixels centred at a uniformly random position of each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _randint(0, h, n, x, generator)
    cx = _randint(0, w, n, x, generator)
    top, left = cy - ch // 2, cx - cw // 2
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < top[:, None] + ch)  # (N, H)
    inside_cols = (cols >= left[:, None]) & (cols < left[:, None] + cw)  # (N, W)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])  # (N, H, W)
    return x * keep[:, None].to(x.dtype)


_Augment = Callable[[Tensor, torch.Generator | None], Tensor]

#: Policy name -> the transformations it applies, in order.
POLICIES: dict[str, tuple[_Augment, ...]] = {
    "color": (_brightness, _saturation, _contrast),
    "translation": (_translation,),
    "cutout": (_cutout,),
    "brightness": (_brightness,),
    "saturation": (_saturation,),
    "contrast": (_contrast,),
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """Split a comma-separated policy into names, checking each; ``""`` gives ``()``.

    Call it in a model's constructor to reject a misspelt policy before training starts.
    """
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"Unknown DiffAugment polic{'ies' if len(unknown) > 1 else 'y'} {', '.join(map(repr, unknown))} in "
            f"{policy!r}. Valid names (comma-separated): {', '.join(POLICIES)}."
        )
    return names


def diff_augment(
    x: Tensor, policy: str = "color,translation,cutout", generator: torch.Generator | None = None
) -> Tensor:
    """Apply DiffAugment to a batch of images (N, C, H, W); differentiable with respect to ``x``.

    Every image gets its own random parameters. Apply it to real and generated batches alike, before each
    discriminator call.

    Args:
        x: images, typically in [-1, 1].
        policy: comma-separated names from ``POLICIES`` (``"color,translation,cutout"`` is the paper's choice for
            CIFAR-10 with limited data); ``""`` returns ``x`` unchanged.
        generator: optional source of randomness (on ``x``'s device) for reproducible augmentation.
    """
    for name in parse_policy(policy):
        for augment in POLICIES[name]:
            x = augment(x, generator)
    return x.contiguous()


def instance_noise(x: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """Add Gaussian noise ``N(0, std^2)`` to discriminator inputs (real and fake alike); ``std = 0`` returns ``x``.

    Args:
        x: a batch of discriminator inputs.
        std: noise standard deviation, annealed towards 0 by the caller (see :func:`annealed_std`).
        generator: optional source of randomness for reproducible noise.
    """
    if std < 0:
        raise ValueError(f"instance noise std must be >= 0, got {std}")
    if std == 0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + std * noise


def annealed_std(initial_std: float, step: int, anneal_steps: int) -> float:
    """Linearly decay ``initial_std`` to 0 over ``anneal_steps`` steps (0 afterwards; constant if anneal_steps <= 0)."""
    if anneal_steps <= 0:
        return initial_std
    return initial_std * max(0.0, 1.0 - step / anneal_steps)
