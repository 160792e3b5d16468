"""Optimizers by name, so each network's optimizer is a config value (TTUR, RMSprop for WGAN, ...)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "rmsprop", "sgd")


def make_optimizer(
    params: Iterable[nn.Parameter],
    name: str = "adam",
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` over ``params``.

    ``betas`` are Adam's; SGD uses ``betas[0]`` as its momentum, RMSprop ignores them (WGAN's RMSprop has none).
    """
    if lr <= 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=betas[0], weight_decay=weight_decay)
    raise ValueError(f"Unknown optimizer {name!r}. Valid optimizers: {', '.join(OPTIMIZERS)}.")
