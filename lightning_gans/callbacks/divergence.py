"""A loss explosion guard: stop a run whose losses grow past a bound, before its weights reach 1e22.

Non-finite losses already stop every family (:class:`~lightning_gans.loss_watch.LossWatch`, read by
:meth:`lightning_gans.core.GANModule.report` on every reporting batch). A run can also blow up while staying finite
(Adam at a learning rate of 1e4 drives the weights towards 1e22 with large but finite losses); :class:`DivergenceGuard`
stops it when a training loss (a logged ``train/*loss*`` value) exceeds ``max_abs_loss`` in absolute value, with
the same :class:`~lightning_gans.checkpointing.DivergenceError` message naming the first such update. It sets the
bound of the family's loss watch, which tracks the largest loss on the device, so the guard adds no host read to a
step; the bound is checked with the NaN check, at most ``log_every_n_steps`` batches after the update. (For a
LightningModule without a loss watch it reads the logged losses on the logging batches.)

The bound is generous (1e6 by default: the largest losses of the shipped families, a VAE's per-image sums, stay
below 1e3); ``lightning-gans`` adds it to every run (``--divergence.max_abs_loss``, 0 turns it off).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L

from lightning_gans.checkpointing import DivergenceError


class DivergenceGuard(L.Callback):
    """Stop when a training loss exceeds ``max_abs_loss`` in absolute value.

    Args:
        max_abs_loss: the bound (0 = off).
    """

    def __init__(self, max_abs_loss: float = 1e6) -> None:
        if max_abs_loss < 0:
            raise ValueError(f"max_abs_loss must be 0 (off) or positive, got {max_abs_loss}")
        self.max_abs_loss = max_abs_loss

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        watch = getattr(pl_module, "loss_watch", None)
        if watch is not None:
            watch.max_abs_loss = self.max_abs_loss

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        watch = getattr(pl_module, "loss_watch", None)
        if watch is not None:
            watch.max_abs_loss = 0.0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if not self.max_abs_loss or hasattr(pl_module, "loss_watch"):
            return
        if not (trainer._logger_connector.should_update_logs or trainer.fast_dev_run):
            return
        losses = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/") and "loss" in k}
        exploded = {k: v for k, v in losses.items() if math.isfinite(v) and abs(v) > self.max_abs_loss}
        if exploded:
            listed = ", ".join(f"{k}={v:.3g}" for k, v in exploded.items())
            raise DivergenceError(
                f"training is exploding at step {trainer.global_step} (epoch {trainer.current_epoch}): {listed}, "
                f"beyond max_abs_loss={self.max_abs_loss:g}. Lower the learning rates or stabilise the model; raise "
                "--divergence.max_abs_loss if such losses are expected (0 turns the guard off)."
            )


__all__ = ["DivergenceGuard"]
