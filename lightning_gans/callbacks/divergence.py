"""A loss explosion guard: stop a run whose losses grow past a bound, before its weights reach 1e22.

Non-finite losses already stop every family within the step (:meth:`lightning_gans.core.GANModule.check_finite`).
A run can also blow up while staying finite (Adam at a learning rate of 1e4 drives the weights towards 1e22 with
large but finite losses); :class:`DivergenceGuard` stops it when a logged training loss (``train/*loss*``) exceeds
``max_abs_loss`` in absolute value, with the same :class:`~lightning_gans.checkpointing.DivergenceError` message.
The bound is generous (1e6 by default: the largest losses of the shipped families, a VAE's per-image sums, stay
below 1e3); ``lightning-gans`` adds it to every run (``--divergence.max_abs_loss``, 0 turns it off).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L

from lightning_gans.checkpointing import DivergenceError


class DivergenceGuard(L.Callback):
    """Stop when a logged training loss exceeds ``max_abs_loss`` in absolute value.

    Args:
        max_abs_loss: the bound (0 = off).
    """

    def __init__(self, max_abs_loss: float = 1e6) -> None:
        if max_abs_loss < 0:
            raise ValueError(f"max_abs_loss must be 0 (off) or positive, got {max_abs_loss}")
        self.max_abs_loss = max_abs_loss

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if not self.max_abs_loss:
            return
        losses = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/") and "loss" in k}
        exploded = {k: v for k, v in losses.items() if math.isfinite(v) and abs(v) > self.max_abs_loss}
        if exploded:
            listed = ", ".join(f"{k}={v:.3g}" for k, v in exploded.items())
            steps = f"G step {getattr(pl_module, 'g_steps', '?')}, D step {getattr(pl_module, 'd_steps', '?')}"
            raise DivergenceError(
                f"training is exploding at {steps} (epoch {trainer.current_epoch}): {listed}, beyond "
                f"max_abs_loss={self.max_abs_loss:g}. Lower the learning rates (lr_g, lr_d) or stabilise D; raise "
                "--divergence.max_abs_loss if such losses are expected (0 turns the guard off)."
            )


__all__ = ["DivergenceGuard"]
