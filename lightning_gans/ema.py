"""Exponential moving average of a network's weights (the "EMA generator" of ProGAN, StyleGAN, BigGAN), and the
batch-norm statistics that belong to it.

The average lives in a frozen copy of the network, registered as a submodule so that it is saved in checkpoints
and moved between devices with the rest of the model.

**Batch norm.** Averaged weights need batch-norm statistics of their own: the live generator's running statistics
describe the live weights' activations, not the average's. (Measured on a small MNIST DCGAN, the copied statistics cost
little: what made its 0.999 EMA sample far worse than the live generator at short budgets was the average's horizon,
which the warm-up of :class:`EMA` fixes.) :func:`standing_statistics` recomputes them as BigGAN's "standing statistics"
do: the running mean and variance are reset and re-estimated as a plain average over a number of batches run through the
network with batch-norm layers in training mode (no weight changes, nothing else in training mode). An :class:`EMA`
marks its statistics stale at every update; :class:`~lightning_gans.core.GANModule` recomputes them before the next
sample (grids, evaluation, predict), from its own fixed-seed noise, so training draws no extra random numbers.

Sampling offers the three batch-norm modes (``GANModule.sample(..., bn=...)``): ``"running"`` (eval mode with the
stored running statistics; the live generator's default), ``"standing"`` (statistics recomputed for the weights
that sample; the EMA generator's default) and ``"batch"`` (the statistics of the sampled batch itself, train-mode
batch norm without updating anything; samples then depend on their batch mates).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

BN_MODES = ("running", "standing", "batch")


def batch_norms(net: nn.Module) -> list[_BatchNorm]:
    """The batch-norm layers of ``net`` that keep running statistics."""
    return [m for m in net.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def standing_statistics(net: nn.Module, forward: Callable[[], object], batches: int) -> None:
    """Re-estimate ``net``'s batch-norm running statistics for its current weights: reset them, then average the
    statistics of ``batches`` calls of ``forward()`` (which runs ``net`` on fresh inputs) with batch-norm layers in
    training mode and a cumulative average (momentum None). Every other layer keeps its mode; weights are untouched."""
    norms = batch_norms(net)
    if not norms:
        return
    saved = [(m.momentum, m.training) for m in norms]
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        for _ in range(batches):
            forward()
    finally:
        for m, (momentum, training) in zip(norms, saved):
            m.momentum = momentum
            m.train(training)


@contextlib.contextmanager
def batch_statistics(net: nn.Module) -> Iterator[None]:
    """Batch-norm layers normalise with the statistics of each batch (training mode) while their running statistics
    stay as they are (momentum 0); every other layer keeps its mode."""
    norms = batch_norms(net)
    saved = [(m.momentum, m.training) for m in norms]
    try:
        for m in norms:
            m.momentum = 0.0
            m.train()
        yield
    finally:
        for m, (momentum, training) in zip(norms, saved):
            m.momentum = momentum
            m.train(training)


@contextlib.contextmanager
def kept_buffers(net: nn.Module) -> Iterator[None]:
    """Whatever the block does to ``net``'s batch-norm buffers is undone afterwards."""
    norms = batch_norms(net)
    saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in zip(norms, saved):
                for name, value in buffers.items():
                    getattr(m, name).copy_(value)


class EMA(nn.Module):
    """A frozen copy of ``model`` whose parameters track ``decay * ema + (1 - decay) * current``.

    **Warm-up.** With ``warmup`` (the default) update ``t`` (0-based) uses ``min(decay, (1 + t) / (10 + t))``, the
    ``num_updates`` rule of TensorFlow's ``ExponentialMovingAverage``: a constant 0.999 averages over the last ~1000
    updates, which early in training are mostly the random initialisation (a DCGAN's 0.999 EMA scored far worse than
    the live generator at 1,500 steps on MNIST); the warm-up keeps the average's horizon below the steps taken so far.
    The count is saved with the weights (checkpoints without it resume with the constant decay).

    Buffers other than batch-norm statistics (spectral-norm vectors) are copied. Batch-norm statistics are not: they
    would describe the live weights. After each update they are marked stale (``stale_statistics``) until
    :func:`standing_statistics` recomputes them for the averaged weights (the owner does, before sampling).

    Args:
        model: the network to average; it is deep-copied once.
        decay: weight of the old average per update, in [0, 1).
        warmup: use ``min(decay, (1 + t) / (10 + t))`` at update ``t`` (see above).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))  # saved; mirrored in a Python int
        self._num_updates = 0  # read without a device sync
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.stale_statistics = bool(batch_norms(self.module))

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float | None = None) -> None:
        """Move the average towards ``model``'s current weights (``model`` may be wrapped in DDP).

        ``decay`` overrides the constant one (and the warm-up) for this update (StyleGAN's decay follows the images
        seen).
        """
        if decay is None:
            t = self._num_updates
            decay = min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        if isinstance(model, DistributedDataParallel):
            model = model.module
        ema_params = list(self.module.parameters())
        params = list(model.parameters())
        if len(ema_params) != len(params):
            raise ValueError("EMA.update got a model with a different structure from the one it copies")
        torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1.0 - decay)
        norm_buffers = {id(b) for m in batch_norms(self.module) for b in m.buffers(recurse=False)}
        for ema_buf, buf in zip(self.module.buffers(), model.buffers(), strict=True):
            if id(ema_buf) not in norm_buffers:
                ema_buf.copy_(buf)
        self._num_updates += 1
        self.num_updates.fill_(self._num_updates)
        self.stale_statistics = bool(norm_buffers)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # A checkpoint from before the warm-up existed: its average is past any warm-up, so the constant decay resumes.
        state_dict.setdefault(prefix + "num_updates", torch.tensor(10**9, dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._num_updates = int(self.num_updates)
        self.stale_statistics = bool(batch_norms(self.module))  # recompute for the loaded weights before sampling


def ema_copy(model: nn.Module, decay: float) -> EMA | None:
    """An :class:`EMA` of ``model`` for ``decay`` in (0, 1), or ``None`` for ``decay`` 0 (off). Call it after the
    network is complete (spectral norm included), so the copy has the same structure."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1) (0 turns EMA off), got {decay}")
    return EMA(model, decay) if decay > 0 else None
