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

**SLURM requeue.** Under SLURM with Lightning's auto-requeue on (its default; ``SLURMEnvironment(auto_requeue=...,
requeue_signal=...)``), the requeue signal (SIGUSR1 unless configured) is handled here too, in place of Lightning's own
handler, which would save an ``hpc_ckpt`` in the middle of a step: the step is saved as above and then global rank 0
runs ``scontrol requeue <job id>`` once, as Lightning does. The requeued job runs the same command, and with
``--ckpt_path last`` it continues from that step. With auto-requeue off, the signal saves and stops only.

A second SIGINT stops at once (KeyboardInterrupt), for a user who does not want to wait for the batch. A signal that
arrives during validation ends it at the next validation batch, and one during the evaluation of a validation epoch
(:class:`~lightning_gans.callbacks.evaluation.EvaluationCallback`, which asks :func:`stop_requested` between its
chunks of samples) ends the evaluation, unlogged; then the checkpoint of the last training step is written at once,
within the grace period a scheduler gives (Kubernetes: 30 s), instead of after minutes of evaluation. The resumed run
validates again.

Against what no handler can catch (SIGKILL after the grace period, a node failure), the same ``last`` checkpoint is
also refreshed every ``save_every_minutes`` of training (30 by default), so such a job loses at most that much.
And when training ends (``max_steps``, ``max_time``, an early stop) between two of the ModelCheckpoint's own saves,
``last.ckpt`` is written for the final step: Lightning's ModelCheckpoint refreshes ``last`` only together with a
periodic checkpoint (an epoch end or a validation), so a run stopped by ``max_steps`` mid-epoch, or by ``max_time``,
would otherwise leave a ``last.ckpt`` that is up to an epoch (or ``save_every_minutes``) older than the model it
trained, and ``validate``/``predict --ckpt_path last`` would score the older one.
The checkpoint is written through the ModelCheckpoint (its ``save_last`` naming: ``last.ckpt``, or ``last-v1.ckpt``
beside an earlier run's), so ``--ckpt_path last`` finds the newest.

**Under DDP** every rank must stop (and save) at the same batch, so the ranks agree on "a signal arrived somewhere"
and "rank 0's timer says save". They do so over a host-side (gloo) process group created for it, asynchronously:
each batch end starts the exchange of that batch's flags and reads the previous batch's, already complete, so a
training step never waits for the GPU or the network for it (a device collective and its read would stall every
step). The stop therefore comes one batch later under DDP than on one process. (Lightning's own loop still
broadcasts its SIGTERM flag from the GPU at every step under DDP; that read is Lightning's.)

With a plain ``Trainer``: ``Trainer(callbacks=[Preemption(), ModelCheckpoint(dirpath=..., save_last=True)])``,
and catch :class:`Preempted` if the exit status matters.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException


class Preempted(Exception):
    """Training stopped on a signal after writing a checkpoint of its last step (``path``)."""

    def __init__(self, signum: int, g_steps: int, path: Path | None, requeue: str | None = None) -> None:
        self.signum, self.g_steps, self.path, self.requeue = signum, g_steps, path, requeue
        name = signal.Signals(signum).name
        where = f"saved {path}" if path is not None else "no checkpoint folder is configured, nothing was saved"
        then = requeue or "Continue from that step with the same command and --ckpt_path last."
        super().__init__(f"interrupted by {name} after G step {g_steps}; {where}. {then}")

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


def slurm_job_id() -> str:
    """The id ``scontrol requeue`` takes: ``<array job>_<task>`` for an array task, else ``SLURM_JOB_ID``."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    return f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array_job else os.environ["SLURM_JOB_ID"]


def requeue_slurm_job() -> str:
    """``scontrol requeue <job id>``, as Lightning's own SLURM handler runs it; what happened, for the stop message."""
    job = slurm_job_id()
    if not re.fullmatch(r"[0-9_]+", job):
        return f"SLURM job id {job!r} is not a job id: the job was not requeued; resubmit it with --ckpt_path last."
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"`scontrol requeue {job}` could not run ({err}): resubmit the job with --ckpt_path last."
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return f"`scontrol requeue {job}` failed ({why[0]}): resubmit the job with --ckpt_path last."
    rank_zero_info(f"Requeued SLURM job {job}")
    return (
        f"Requeued SLURM job {job} (`scontrol requeue {job}`): it runs the same command again, which continues from "
        "that step when it has --ckpt_path last."
    )


def stop_requested(trainer: L.Trainer) -> bool:
    """Whether a :class:`Preemption` callback of ``trainer`` received its signal (this process only; no collective),
    for long loops inside hooks to end early."""
    return any(isinstance(cb, Preemption) and cb.received is not None for cb in getattr(trainer, "callbacks", ()))


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
        self.requeue_signal: int | None = None
        self._previous: dict[int, Any] = {}
        self._last_save = time.monotonic()
        self._group: Any = None  # DDP: the host-side (gloo) group the ranks agree through
        self._pending: tuple[torch.Tensor, Any] | None = None  # the exchange of the last batch's flags, in flight
        self._due_sent = False  # rank 0 asked for a periodic save that has not happened yet

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: do not wait for the batch
        self.received = signum
        rank_zero_info(f"{signal.Signals(signum).name} received: saving a checkpoint after this training batch")

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._last_save = time.monotonic()
        self._pending = None
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized() and self._group is None:
            self._group = dist.new_group(backend="gloo")  # collective: every rank runs setup
        # Under SLURM with Lightning's auto-requeue on (its default), the requeue signal (SLURMEnvironment's
        # requeue_signal, SIGUSR1 unless configured) also requeues the job once the step is saved, as Lightning's own
        # handler would; auto-requeue off (SLURMEnvironment(auto_requeue=False)): save and stop only.
        environment = trainer._accelerator_connector.cluster_environment
        self.requeue_signal = None
        if isinstance(environment, SLURMEnvironment) and environment.auto_requeue:
            self.requeue_signal = int(environment.requeue_signal or signal.SIGUSR1)
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        self.received = None
        handled = {int(getattr(signal, name)) for name in self.signals} | {self.requeue_signal} - {None}
        for signum in sorted(handled):
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._pending is not None:
            self._pending[1].wait()  # every rank started the same exchanges: finish the last one
            self._pending = None
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        # Under DDP a signal may reach one rank only: every rank stops at the same batch (and rank 0's clock decides
        # the periodic save, so all ranks enter the checkpoint's collectives together).
        due = 0 < self.save_every_minutes * 60 <= time.monotonic() - self._last_save
        if self._group is None:
            stop = self.received is not None
        else:
            ask = due and trainer.is_global_zero and not self._due_sent
            self._due_sent |= ask
            stop, due = self._agree(self.received is not None, ask)
        if stop or due:
            path = save_last(trainer)
            self._last_save, self._due_sent = time.monotonic(), False
            if stop:
                raise self._stop(trainer, pl_module, path)

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.state.fn == "fit":  # a validation inside fit: stop at this batch, not after the whole loop
            self._stop_in_validation(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":  # the signal came during the epoch-end evaluation, which ended early
            self._stop_in_validation(trainer, pl_module)

    def _agree(self, stop: bool, due: bool) -> tuple[bool, bool]:
        """DDP: start exchanging this batch's flags (any rank signalled, rank 0's save due) on the host-side group and
        return the previous batch's outcome, the same on every rank (no GPU involved, no wait in the common case)."""
        flags = torch.tensor([int(stop), int(due)], dtype=torch.int32)
        previous, self._pending = self._pending, (flags, dist.all_reduce(flags, group=self._group, async_op=True))
        if previous is None:
            return False, False
        done, work = previous
        work.wait()
        agreed = done.tolist()
        return agreed[0] > 0, agreed[1] > 0

    def _any_rank(self, trainer: L.Trainer, flag: bool) -> bool:
        """Whether ``flag`` is set on any rank (a blocking exchange; outside training steps)."""
        if self._group is None:
            return trainer.strategy.reduce_boolean_decision(flag, all=False)
        if self._pending is not None:  # keep the exchanges in the same order on every rank
            self._pending[1].wait()
        value = torch.tensor([int(flag)], dtype=torch.int32)
        dist.all_reduce(value, group=self._group)
        return value.tolist()[0] > 0

    def _stop_in_validation(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Collective like the training check: every rank runs the same validation batches and reaches the end. The
        # checkpoint is of the last training step; a resumed run validates again.
        if not trainer.sanity_checking:
            self._stop_if_signalled(trainer, pl_module)

    def _stop_if_signalled(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Collective: when any rank received a signal, save the last step on every rank and raise the stop."""
        if self._any_rank(trainer, self.received is not None):
            raise self._stop(trainer, pl_module, save_last(trainer))

    def _stop(self, trainer: L.Trainer, pl_module: L.LightningModule, path: Path | None) -> Preempted:
        """Collective: the stop after saving ``path``, requeueing when any rank received the SLURM requeue signal."""
        requeue = self._any_rank(trainer, self._requeue_asked())
        return self._preempted(trainer, pl_module, path, requeue)

    def _requeue_asked(self) -> bool:
        return self.requeue_signal is not None and self.received == self.requeue_signal

    def _preempted(
        self, trainer: L.Trainer, pl_module: L.LightningModule, path: Path | None, requeue: bool = False
    ) -> Preempted:
        """The stop to raise after saving ``path``: the signal received (SIGTERM when another rank got it), and the
        job requeued by global rank 0 when the SLURM requeue signal asked for it."""
        signum = self.received if self.received is not None else signal.SIGTERM
        outcome = requeue_slurm_job() if requeue and trainer.is_global_zero and path is not None else None
        return Preempted(signum, int(getattr(pl_module, "g_steps", trainer.global_step)), path, outcome)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # Lightning's own SIGTERM handling may stop the loop first (SIGTERMException, a SystemExit with status 0):
        # the step is saved and the stop reported as a preemption all the same (exit 128 + 15 through the CLI).
        if isinstance(exception, SIGTERMException):
            raise self._preempted(trainer, pl_module, save_last(trainer), self._requeue_asked())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A signal that arrived after the last batch end this callback saw (Lightning's own SIGTERM handling stops the
        # loop too, and so does the last step): still a preemption, saved and reported as one.
        self._stop_if_signalled(trainer, pl_module)
        # The final step, unless the ModelCheckpoint saved it already (or saves nothing: fast_dev_run, save_last off).
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath and callback.save_last:
                if not callback._should_skip_saving_checkpoint(trainer):
                    callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))
                return

    def state_dict(self) -> dict[str, Any]:
        return {}


__all__ = ["Preempted", "Preemption", "requeue_slurm_job", "save_last", "slurm_job_id", "stop_requested"]
