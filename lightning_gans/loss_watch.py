"""The training losses watched on the device, read once per report: NaN, inf and explosions caught without stalls.

Checking each update's losses on the host (``bool(loss.isfinite())``) makes the CPU wait for the GPU at every step.
:class:`LossWatch` instead keeps, on the device, the largest magnitude of any value recorded since its last read
(NaN or inf as soon as one value was, since ``maximum`` propagates NaN), and on the host the list of updates since
then (their step counters and value tensors, no copy). :meth:`LossWatch.read` copies that one number and the newest
value of each loss to the host in one transfer, and raises :class:`~lightning_gans.checkpointing.DivergenceError`
naming the *first* offending update (its G and D step, network and values) when:

- a value was NaN or infinite, or
- ``max_abs_loss`` is set (> 0) and a finite loss (a name containing ``loss``) exceeded it in absolute value.

:class:`~lightning_gans.core.GANModule` reads it on the batches whose values reach the loggers (every
``log_every_n_steps``, the last batch of an epoch, the last step of the run), before every checkpoint and before
validation; it also reads after ``MAX_PENDING`` updates without one, so that the list stays short.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lightning_gans.checkpointing import DivergenceError

#: read at least this often (in updates), whatever the logging interval
MAX_PENDING = 10_000


@dataclass
class _Update:
    network: str
    g_steps: int
    d_steps: int
    epoch: int
    names: tuple[str, ...]
    values: Tensor  # float32, one per name, on the device


class LossWatch:
    """Device-side record of the losses between two reads (see the module docstring).

    Args:
        max_abs_loss: the explosion bound for finite losses (0 = off); NaN and inf are always caught.
    """

    def __init__(self, max_abs_loss: float = 0.0) -> None:
        self.max_abs_loss = max_abs_loss
        self.pending: list[_Update] = []
        self.latest: dict[str, Tensor] = {}  # newest value of each name (device), what the next read reports
        self._peak: Tensor | None = None  # max |value| (only loss names count) since the last read; NaN/inf if any
        self._loss_weights: dict[tuple[str, ...], Tensor] = {}

    def record(self, network: str, losses: dict[str, Tensor], *, g_steps: int, d_steps: int, epoch: int) -> None:
        """Remember one update's values; a few small device kernels, no host read."""
        if not losses:
            return
        names = tuple(losses)
        values = torch.stack([v.detach().float().sum() if v.dim() else v.detach().float() for v in losses.values()])
        magnitude = values.abs()
        if not all("loss" in name for name in names):
            # Only losses count against the bound; the other values (logits, penalties) still count when they are
            # NaN or inf: 0 * inf and 0 * NaN are NaN.
            weights = self._loss_weights.get(names)
            if weights is None or weights.device != values.device:
                weights = torch.tensor([float("loss" in n) for n in names]).to(values.device)
                self._loss_weights[names] = weights
            magnitude = magnitude * weights
        peak = magnitude.amax()
        self._peak = peak if self._peak is None else torch.maximum(self._peak, peak)
        self.pending.append(_Update(network, g_steps, d_steps, epoch, names, values))
        for i, name in enumerate(names):
            self.latest[name] = values[i]

    @property
    def due(self) -> bool:
        """True when so many updates went unread that the next record should be followed by a read."""
        return len(self.pending) >= MAX_PENDING

    def read(self) -> dict[str, float]:
        """One device-to-host copy: raise :class:`DivergenceError` for a non-finite or exploding update since the last
        read, else forget the updates and return the newest value of each name (as host floats)."""
        if self._peak is None:
            return {}
        names = list(self.latest)
        host = torch.stack([self._peak, *(self.latest[n] for n in names)]).cpu().tolist()
        peak, newest = host[0], dict(zip(names, host[1:]))
        bound = self.max_abs_loss or float("inf")
        if not peak <= bound:  # NaN compares false
            self._raise_for_first_offence(bound)
        self.pending.clear()
        self._peak = None
        return newest

    def _raise_for_first_offence(self, bound: float) -> None:
        for update in self.pending:  # the failure path: reading each update is fine here
            values = update.values.tolist()
            nonfinite = [v for v in values if v != v or abs(v) == float("inf")]
            exploded = [(n, v) for n, v in zip(update.names, values) if "loss" in n and abs(v) > bound]
            if not nonfinite and not exploded:
                continue
            steps = f"G step {update.g_steps}, D step {update.d_steps} (epoch {update.epoch})"
            if nonfinite:
                listed = ", ".join(f"{n}={v}" for n, v in zip(update.names, values))
                raise DivergenceError(
                    f"training diverged at {steps}: the {update.network} update gave {listed}. The last good "
                    "checkpoint is the one saved before this step. Lower the learning rates (lr_g, lr_d), or "
                    "stabilise D (toolbox: gradient_penalty, r1_gamma, spectral_norm_d)."
                )
            listed = ", ".join(f"train/{n}={v:.3g}" for n, v in exploded)
            raise DivergenceError(
                f"training is exploding at {steps}: {listed}, beyond max_abs_loss={self.max_abs_loss:g} (the "
                f"{update.network} update). Lower the learning rates (lr_g, lr_d) or stabilise D; raise "
                "--divergence.max_abs_loss if such losses are expected (0 turns the guard off)."
            )
        raise DivergenceError(f"training diverged: a recorded loss was non-finite or beyond {bound:g}")


__all__ = ["MAX_PENDING", "LossWatch"]
