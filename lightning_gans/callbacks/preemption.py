"""Preemption: a checkpoint of the current step on SIGTERM, SIGINT or SLURM's requeue signal, then a clean stop.

Clusters end jobs with SIGTERM (Kubernetes, SLURM at its time limit or on preemption), SLURM can be told to send
SIGUSR1 ahead of time (``#SBATCH --signal=USR1@120``), and a user presses Ctrl-C (SIGINT). Lightning's own handling
stops such a run with exit status 0 and no checkpoint. With :class:`Preemption` the signal is noted, the training
batch in progress finishes, a checkpoint of that step is written where ``fit --ckpt_path last`` finds it (the
ModelCheckpoint folder's ``last.ckpt``), and :class:`Preempted` is raised. ``lightning-gans`` turns it into one line
on stderr and the exit status ``128 + signal number`` (143 for SIGTERM, 130 for SIGINT), so a scheduler sees an
interrupted job and a requeued one continues from that step: the checkpoint holds the loop position and the data
loader's place in its epoch (see ``datamodules.base.ResumableDataLoader``), so the resumed run equals an
uninterrupted one.

A second SIGINT stops at once (KeyboardInterrupt), for a user who does not want to wait for the batch. A signal that
arrives during validation takes effect at the next training batch; the epoch's validation finishes first.

Against what no handler can catch (SIGKILL after the grace period, a node failure), the same ``last`` checkpoint is
also refreshed every ``save_every_minutes`` of training (30 by default), so such a job loses at most that much.
And when training ends (``max_steps``, ``max_time``, an early stop) between two of the ModelCheckpoint's own saves,
``last.ckpt`` is written for the final step: Lightning's ModelCheckpoint refreshes ``last`` only together with a
periodic checkpoint (an epoch end or a validation), so a run stopped by ``max_steps`` mid-epoch, or by ``max_time``,
would otherwise leave a ``last.ckpt`` that is up to an epoch (or ``save_every_minutes``) older than the model it
trained, and ``validate``/``predict --ckpt_path last`` would score the older one.
The checkpoint is written through the ModelCheckpoint (its ``save_last`` naming: ``last.ckpt``, or ``last-v1.ckpt``
beside an earlier run's), so ``--ckpt_path last`` finds the newest.

With a plain ``Trainer``: ``Trainer(callbacks=[Preemption(), ModelCheckpoint(dirpath=..., save_last=True)])``,
and catch :class:`Preempted` if the exit status matters.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException


class Preempted(Exception):
    """Training stopped on a signal after writing a checkpoint of its last step (``path``)."""

    def __init__(self, signum: int, g_steps: int, path: Path | None) -> None:
        self.signum, self.g_steps, self.path = signum, g_steps, path
        name = signal.Signals(signum).name
        where = f"saved {path}" if path is not None else "no checkpoint folder is configured, nothing was saved"
        super().__init__(
            f"interrupted by {name} after G step {g_steps}; {where}. Continue from that step with the same command "
            "and --ckpt_path last."
        )

    @property
    def exit_code(self) -> int:
        """The status a shell gives a process ended by this signal: 128 + its number."""
        return 128 + int(self.signum)


def save_last(trainer: L.Trainer) -> Path | None:
    """Write the ``last`` checkpoint of the current step through the first ModelCheckpoint (its naming and version
    counter, so an earlier run's ``last.ckpt`` is not replaced); returns its path, or None without a ModelCheckpoint."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            if not callback.save_last:
                path = Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
                trainer.save_checkpoint(path)
                return path
            callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))
            return Path(callback.last_model_path)
    return None


class Preemption(L.Callback):
    """Save the current step and stop cleanly on a signal, and refresh the ``last`` checkpoint on a timer (see the
    module docstring).

    Args:
        signals: names of the signals to handle.
        save_every_minutes: minutes of training between two refreshes of the ``last`` checkpoint (0: never).
    """

    def __init__(self, signals: tuple[str, ...] = ("SIGTERM", "SIGINT", "SIGUSR1"), save_every_minutes: float = 30.0):
        unknown = [name for name in signals if not hasattr(signal, name)]
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; use names like SIGTERM, SIGINT, SIGUSR1")
        if save_every_minutes < 0:
            raise ValueError(f"save_every_minutes must be 0 (never) or positive, got {save_every_minutes}")
        self.signals = tuple(signals)
        self.save_every_minutes = save_every_minutes
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._last_save = time.monotonic()

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: do not wait for the batch
        self.received = signum
        rank_zero_info(f"{signal.Signals(signum).name} received: saving a checkpoint after this training batch")

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._last_save = time.monotonic()
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        self.received = None
        for name in self.signals:
            signum = getattr(signal, name)
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        # Under DDP a signal may reach one rank only: every rank stops at the same batch (and rank 0's clock decides
        # the periodic save, so all ranks enter the checkpoint's collectives together).
        stop = trainer.strategy.reduce_boolean_decision(self.received is not None, all=False)
        due = 0 < self.save_every_minutes * 60 <= time.monotonic() - self._last_save
        if stop or trainer.strategy.broadcast(due):
            path = save_last(trainer)
            self._last_save = time.monotonic()
            if stop:
                raise self._preempted(trainer, pl_module, path)

    def _preempted(self, trainer: L.Trainer, pl_module: L.LightningModule, path: Path | None) -> Preempted:
        """The stop to raise after saving ``path``: the signal received (SIGTERM when another rank got it)."""
        signum = self.received if self.received is not None else signal.SIGTERM
        return Preempted(signum, int(getattr(pl_module, "g_steps", trainer.global_step)), path)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # Lightning's own SIGTERM handling may stop the loop first (SIGTERMException, a SystemExit with status 0):
        # the step is saved and the stop reported as a preemption all the same (exit 128 + 15 through the CLI).
        if isinstance(exception, SIGTERMException):
            raise self._preempted(trainer, pl_module, save_last(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A signal that arrived after the last batch end this callback saw (Lightning's own SIGTERM handling stops the
        # loop too, and so does the last step): still a preemption, saved and reported as one.
        if trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            raise self._preempted(trainer, pl_module, save_last(trainer))
        # The final step, unless the ModelCheckpoint saved it already (or saves nothing: fast_dev_run, save_last off).
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath and callback.save_last:
                if not callback._should_skip_saving_checkpoint(trainer):
                    callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))
                return

    def state_dict(self) -> dict[str, Any]:
        return {}


__all__ = ["Preempted", "Preemption", "save_last"]
