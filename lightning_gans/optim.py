"""Optimizers by name, so each network's optimizer is a config value (TTUR, RMSprop for WGAN, ...)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from lightning_gans.losses import check_loss_name, check_real_label

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "rmsprop", "sgd")


def check_optimizer(name: str, lr: float, what: str = "") -> None:
    """Refuse an unknown optimizer name or a non-positive learning rate at construction, before any training."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}{what}. Valid optimizers: {', '.join(OPTIMIZERS)}.")
    if lr <= 0:
        raise ValueError(f"learning rate{what} must be positive, got {lr}")


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
    check_optimizer(name, lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=betas[0], weight_decay=weight_decay)
    raise ValueError(f"Unknown optimizer {name!r}. Valid optimizers: {', '.join(OPTIMIZERS)}.")


def make_optimizers(generator: nn.Module, discriminator: nn.Module, hparams: Any) -> tuple[torch.optim.Optimizer, ...]:
    """G's and D's optimizers from a family's ``optimizer_g``/``lr_g``, ``optimizer_d``/``lr_d`` and ``betas``
    (its hyperparameters), G first."""
    return (
        make_optimizer(generator.parameters(), hparams.optimizer_g, hparams.lr_g, hparams.betas),
        make_optimizer(discriminator.parameters(), hparams.optimizer_d, hparams.lr_d, hparams.betas),
    )


def check_adversarial_options(hparams: Any, real_label: float = 1.0) -> None:
    """Check a two-player family's options at construction: ``loss`` (when it has one) and ``real_label`` against
    it, ``n_critic`` (when it has one), and both optimizers with their learning rates."""
    if "loss" in hparams:
        check_real_label(check_loss_name(hparams.loss), real_label)
    if hparams.get("n_critic", 1) < 1:
        raise ValueError(f"n_critic must be at least 1, got {hparams.n_critic}")
    check_optimizer(hparams.optimizer_g, hparams.lr_g, " (G)")
    check_optimizer(hparams.optimizer_d, hparams.lr_d, " (D)")
