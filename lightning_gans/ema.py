"""Exponential moving average of a network's weights (the "EMA generator" of ProGAN, StyleGAN, BigGAN).

The average lives in a frozen copy of the network, registered as a submodule so that it is saved in checkpoints
and moved between devices with the rest of the model.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel


class EMA(nn.Module):
    """A frozen copy of ``model`` whose parameters track ``decay * ema + (1 - decay) * current``.

    Buffers (batch-norm statistics, spectral-norm vectors) are copied, not averaged.

    Args:
        model: the network to average; it is deep-copied once.
        decay: weight of the old average per update, in [0, 1).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float | None = None) -> None:
        """Move the average towards ``model``'s current weights (``model`` may be wrapped in DDP).

        ``decay`` overrides the constant one for this update (StyleGAN's decay follows the images seen).
        """
        decay = self.decay if decay is None else decay
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        if isinstance(model, DistributedDataParallel):
            model = model.module
        ema_params = list(self.module.parameters())
        params = list(model.parameters())
        if len(ema_params) != len(params):
            raise ValueError("EMA.update got a model with a different structure from the one it copies")
        torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1.0 - decay)
        for ema_buf, buf in zip(self.module.buffers(), model.buffers()):
            ema_buf.copy_(buf)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def ema_copy(model: nn.Module, decay: float) -> EMA | None:
    """An :class:`EMA` of ``model`` for ``decay`` in (0, 1), or ``None`` for ``decay`` 0 (off). Call it after the
    network is complete (spectral norm included), so the copy has the same structure."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1) (0 turns EMA off), got {decay}")
    return EMA(model, decay) if decay > 0 else None
