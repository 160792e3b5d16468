"""Preemption and checkpoint files: a stop signal (SIGTERM, SIGINT, SLURM's SIGUSR1) saves the step in progress and
exits, SLURM requeues, a slow evaluation is cut short, checkpoints are written atomically and damaged ones are named."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from lightning_gans.models import DCGAN
from tests.conftest import quiet_trainer
from tests.test_reliability import TINY, _data


# ------------------------------------------------------------------------------------------- preemption
@pytest.mark.parametrize("raised_as", ["OSError", "RuntimeError"])  # torch's zip writer: RuntimeError from OSError
def test_atomic_checkpoint_io_keeps_the_old_file_when_a_write_fails(raised_as: str, tmp_path: Path, monkeypatch):
    """A full disk: one error naming the folder, the bytes the checkpoint needs and that the previous file is intact;
    the previous file is untouched and no temporary file is left."""
    import errno
    import io as io_module

    from lightning_gans.checkpointing import AtomicCheckpointIO, CheckpointWriteError

    io, path = AtomicCheckpointIO(), tmp_path / "ckpt" / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}
    real_save = torch.save

    def disk_fills_half_way(obj, f, *args, **kwargs):
        if not isinstance(f, io_module.BufferedWriter):  # counting the bytes needed writes to no disk
            return real_save(obj, f, *args, **kwargs)
        f.write(b"half a checkpoint")
        full = OSError(errno.ENOSPC, "No space left on device")
        if raised_as == "OSError":
            raise full
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 6682944 vs 6682836") from full

    monkeypatch.setattr(torch, "save", disk_fills_half_way)
    checkpoint = {"step": 2, "weights": torch.zeros(1000)}
    with pytest.raises(CheckpointWriteError) as error:
        io.save_checkpoint(checkpoint, path)
    monkeypatch.undo()
    buffer = io_module.BytesIO()
    torch.save(checkpoint, buffer)
    message = str(error.value)
    assert f"no space left in {path.parent} for checkpoint last.ckpt" in message
    assert (
        f"it needs {len(buffer.getvalue()):,} bytes" in message
        and "1 checkpoint(s) already there are intact (newest: last.ckpt)" in message
        and error.value.errno == errno.ENOSPC
    )
    assert torch.load(path, weights_only=True) == {"step": 1}  # the good checkpoint is still there
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no temporary file left behind


def test_a_checkpoint_is_written_once_in_its_own_folder_never_through_the_system_temp_folder(tmp_path, monkeypatch):
    """Lightning's own checkpoint IO writes the whole file to the system temp folder first (an fsspec transaction),
    which fails where /tmp is small; here the temp folder cannot take a single byte and training still saves."""
    import tempfile

    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_gans.checkpointing import AtomicCheckpointIO

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no_room_here"))  # does not exist: nothing fits
    checkpoints = tmp_path / "run" / "checkpoints"
    trainer = quiet_trainer(
        tmp_path / "run",
        max_epochs=1,
        limit_train_batches=2,
        enable_checkpointing=True,
        plugins=[AtomicCheckpointIO()],
        callbacks=[ModelCheckpoint(dirpath=checkpoints, save_last=True)],
    )
    trainer.fit(DCGAN(**TINY), _data())
    names = sorted(p.name for p in checkpoints.iterdir())
    assert names == ["epoch=0-step=4.ckpt", "last.ckpt"], names
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["lightning_gans"]["g_steps"] == 2


def _checkpoints(folder: Path) -> tuple[Path, Path]:
    """Two good checkpoints, the second written later, in ``folder``."""
    from lightning_gans.checkpointing import AtomicCheckpointIO

    older, newer = folder / "epoch=0-step=8.ckpt", folder / "epoch=1-step=16.ckpt"
    for i, path in enumerate((older, newer)):
        AtomicCheckpointIO().save_checkpoint({"step": i, "w": torch.ones(100)}, path)
        os.utime(path, (1_700_000_000 + i * 60, 1_700_000_000 + i * 60))
    return older, newer


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_a_checkpoint"])
def test_a_damaged_checkpoint_is_named_with_the_newest_readable_one_beside_it(damage: str, tmp_path: Path):
    from lightning_gans.checkpointing import AtomicCheckpointIO, CheckpointReadError

    _, newer = _checkpoints(tmp_path)
    last = tmp_path / "last.ckpt"
    good = newer.read_bytes()
    last.write_bytes({"truncated": good[: len(good) // 2], "empty": b"", "not_a_checkpoint": b"step: 16\n"}[damage])
    with pytest.raises(CheckpointReadError) as error:
        AtomicCheckpointIO().load_checkpoint(last)
    message = str(error.value)
    assert message.startswith(f"checkpoint {last} cannot be read: ")
    assert {"truncated": "not a whole PyTorch", "empty": "empty (0 bytes)", "not_a_checkpoint": "not a whole"}[
        damage
    ] in message
    assert f"The newest readable checkpoint beside it is {newer.name}" in message
    assert message.endswith(f"with --ckpt_path {newer}")
    assert AtomicCheckpointIO().load_checkpoint(newer)["step"] == 1  # the named one does load


def test_a_damaged_checkpoint_with_none_readable_beside_it_says_so(tmp_path: Path):
    from lightning_gans.checkpointing import AtomicCheckpointIO, CheckpointReadError

    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04 cut short")
    (tmp_path / "epoch=0-step=8.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointReadError, match="There is no readable checkpoint beside it in .*without --ckpt_path"):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "last.ckpt")


def test_a_checkpoint_with_pickled_objects_is_refused_in_one_line_naming_it(tmp_path: Path):
    import argparse

    from lightning_gans.checkpointing import AtomicCheckpointIO, CheckpointReadError

    path = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(CheckpointReadError) as error:
        AtomicCheckpointIO().load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"checkpoint {path} was refused: it holds pickled Python objects (the first: argparse")
    assert "\n" not in message and "\x1b" not in message  # one line, no terminal escapes


_PREEMPTIBLE = """
import os, sys, time
from pathlib import Path
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from datamodules import GaussianMixtureDataModule
from lightning_gans.callbacks.preemption import Preempted, Preemption
from lightning_gans.checkpointing import AtomicCheckpointIO
from lightning_gans.models import GAN

root = Path(sys.argv[1])

class Slow(L.Callback):
    def on_train_start(self, trainer, pl_module):
        if len(sys.argv) > 2:  # resumed: report where training continues, then stop
            (root / "resumed_at").write_text(str(pl_module.g_steps))
            raise SystemExit(0)

    def on_train_batch_end(self, trainer, pl_module, *args):
        if pl_module.g_steps == 3:
            (root / "ready").touch()
        time.sleep(0.05)

L.seed_everything(0)
data = GaussianMixtureDataModule(num_samples=100_000, num_val_samples=64, batch_size=32, num_workers=0)
model = GAN(image_shape=(2,), latent_dim=4, g_hidden_dims=(16,), d_hidden_dims=(16,))
plugins = [AtomicCheckpointIO()]
if os.environ.get("TEST_AUTO_REQUEUE") == "0":  # SLURM with Lightning's auto-requeue turned off
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    plugins.append(SLURMEnvironment(auto_requeue=False))
trainer = L.Trainer(
    accelerator="cpu", max_epochs=1, limit_val_batches=0, logger=False, enable_progress_bar=False,
    enable_model_summary=False, default_root_dir=root, plugins=plugins,
    callbacks=[Slow(), Preemption(), ModelCheckpoint(dirpath=root / "checkpoints", save_last=True)],
)
try:
    trainer.fit(model, datamodule=data, ckpt_path="last" if len(sys.argv) > 2 else None)
except Preempted as stop:
    print(stop, file=sys.stderr)
    sys.exit(stop.exit_code)
"""


# All three are `slow`: the default run covers SIGUSR1 through the SLURM tests below (the same script, with and
# without requeue) and SIGTERM end to end through the CLI (test_cli_errors.py).
@pytest.mark.parametrize(
    "signame",
    [pytest.param(name, marks=pytest.mark.slow) for name in ("SIGTERM", "SIGINT", "SIGUSR1")],
)
def test_a_signal_saves_the_current_step_and_exits_non_zero(signame: str, tmp_path: Path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "train.py"
    script.write_text(_PREEMPTIBLE)
    repo = Path(__file__).resolve().parents[1]
    env = {**__import__("os").environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "ready").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signame))
    _, stderr = proc.communicate(timeout=120)
    signum = int(getattr(signal, signame))
    assert proc.returncode == 128 + signum, stderr
    assert f"interrupted by {signame} after G step" in stderr and "--ckpt_path last" in stderr
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    steps = ckpt["lightning_gans"]["g_steps"]
    assert 3 <= steps < 3125  # the step it was at, in the middle of the (3,125-batch) epoch
    assert ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["processed"] == steps  # mid-epoch
    resumed = subprocess.run([sys.executable, str(script), str(tmp_path), "resume"], env=env, capture_output=True)
    assert resumed.returncode == 0, resumed.stderr
    assert int((tmp_path / "resumed_at").read_text()) == steps  # fit --ckpt_path last continues from that step


def _recording_scontrol(folder: Path) -> Path:
    """An `scontrol` in ``folder/bin`` (put it first on PATH) that appends its arguments to the file it returns."""
    calls = folder / "scontrol_calls"
    (folder / "bin").mkdir()
    scontrol = folder / "bin" / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    scontrol.chmod(0o755)
    return calls


@pytest.mark.parametrize("auto_requeue", [True, False])
def test_slurm_requeue_signal_saves_the_step_requeues_the_job_and_the_requeued_job_resumes(auto_requeue, tmp_path):
    """Under SLURM (its environment, and a recording `scontrol` first on PATH), SIGUSR1 saves the step and, with
    Lightning's auto-requeue on (its default), runs `scontrol requeue <job id>` once; with it off, save and stop only.
    The same command with --ckpt_path last continues from the saved step."""
    import signal
    import subprocess
    import sys
    import time

    script, calls = tmp_path / "train.py", _recording_scontrol(tmp_path)
    script.write_text(_PREEMPTIBLE)
    slurm = dict(SLURM_JOB_ID="4242", SLURM_NTASKS="1", SLURM_JOB_NAME="lightning-gans", SLURM_PROCID="0")
    slurm.update(SLURM_LOCALID="0", SLURM_NODEID="0", SLURM_NODELIST="localhost", SLURM_NTASKS_PER_NODE="1")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLURM_")},
        **slurm,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "TEST_AUTO_REQUEUE": "1" if auto_requeue else "0",
    }
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "ready").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGUSR1)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + int(signal.SIGUSR1), stderr
    assert "interrupted by SIGUSR1 after G step" in stderr, stderr
    if auto_requeue:
        assert calls.read_text().splitlines() == ["requeue 4242"]
        assert "Requeued SLURM job 4242 (`scontrol requeue 4242`)" in stderr
    else:
        assert not calls.exists() and "Requeued" not in stderr and "--ckpt_path last" in stderr
    steps = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["lightning_gans"]["g_steps"]
    assert steps >= 3
    if auto_requeue:  # the requeued job: the same command continues from that step (without requeue: as before)
        resumed = subprocess.run([sys.executable, str(script), str(tmp_path), "resume"], env=env, capture_output=True)
        assert resumed.returncode == 0, resumed.stderr
        assert int((tmp_path / "resumed_at").read_text()) == steps


_SLOW_EVALUATION = """
import json, os, sys, time
from pathlib import Path
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from datamodules import GaussianMixtureDataModule
from lightning_gans.callbacks.evaluation import EvaluationCallback
from lightning_gans.callbacks.preemption import Preempted, Preemption
from lightning_gans.checkpointing import AtomicCheckpointIO
from lightning_gans.models import GAN

root = Path(sys.argv[1])

class SlowEvaluation(EvaluationCallback):
    def generate(self, pl_module, n, start):  # 100 chunks of 0.3 s: a 30-second evaluation
        (root / "evaluating").touch()
        time.sleep(0.3)
        return super().generate(pl_module, n, start)

class Resumed(L.Callback):
    def on_train_start(self, trainer, pl_module):
        if len(sys.argv) > 2:
            (root / "resumed_at").write_text(str(pl_module.g_steps))
            raise SystemExit(0)

L.seed_everything(0)
data = GaussianMixtureDataModule(num_samples=4096, num_val_samples=960, batch_size=32, num_workers=0)
model = GAN(image_shape=(2,), latent_dim=4, g_hidden_dims=(16,), d_hidden_dims=(16,))
class SlowBatches(L.Callback):  # the other long loop: 30 validation batches of 0.5 s
    def on_validation_batch_end(self, *args):
        (root / "evaluating").touch()
        time.sleep(0.5)

evaluation = SlowEvaluation(metrics=["modes"], num_samples=1000, batch_size=10, scatter_points=0)
slow = [evaluation] if os.environ["SLOW"] == "evaluation" else [evaluation, SlowBatches()]
evaluation.num_samples = 1000 if os.environ["SLOW"] == "evaluation" else 10
trainer = L.Trainer(
    accelerator="cpu", max_epochs=1, val_check_interval=5, num_sanity_val_steps=0, logger=False,
    limit_val_batches=1 if os.environ["SLOW"] == "evaluation" else 30, enable_progress_bar=False,
    enable_model_summary=False, default_root_dir=root, plugins=[AtomicCheckpointIO()],
    callbacks=[Resumed(), *slow, Preemption(), ModelCheckpoint(dirpath=root / "checkpoints", save_last=True)],
)
try:
    trainer.fit(model, datamodule=data, ckpt_path="last" if len(sys.argv) > 2 else None)
except Preempted as stop:
    (root / "results.json").write_text(json.dumps(evaluation.last_results))
    print(stop, file=sys.stderr)
    sys.exit(stop.exit_code)
"""


@pytest.mark.parametrize("slow", ["evaluation", pytest.param("validation_batches", marks=pytest.mark.slow)])
def test_a_signal_during_a_slow_evaluation_ends_it_and_saves_within_seconds(slow: str, tmp_path: Path):
    """SIGTERM in the middle of a 30-second evaluation (validation after 5 steps), or SIGUSR1 (Lightning stops
    validation batches on SIGTERM itself) in the middle of 30 slow validation batches:
    the loop stops at its next chunk or batch, nothing of the evaluation is logged, the checkpoint of step 5 is written
    and the process exits in seconds; the same command with --ckpt_path last continues from step 5."""
    import json
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "train.py"
    script.write_text(_SLOW_EVALUATION)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "SLOW": slow}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "evaluating").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.05)
    signalled, signum = time.monotonic(), signal.SIGTERM if slow == "evaluation" else signal.SIGUSR1
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    took = time.monotonic() - signalled
    assert proc.returncode == 128 + int(signum), stderr
    assert took < 10, f"{took:.1f} s after {signum.name} (the {slow} alone take 15-30 s)"
    assert f"interrupted by {signum.name} after G step 5" in stderr, stderr
    assert json.loads((tmp_path / "results.json").read_text()) == {}  # the partial evaluation is not logged
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["lightning_gans"]["g_steps"] == 5
    resumed = subprocess.run([sys.executable, str(script), str(tmp_path), "resume"], env=env, capture_output=True)
    assert resumed.returncode == 0, resumed.stderr
    assert int((tmp_path / "resumed_at").read_text()) == 5


_SLURM_DDP = """
import sys, time
from pathlib import Path
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from datamodules import GaussianMixtureDataModule
from lightning_gans import GANDDPStrategy
from lightning_gans.callbacks.preemption import Preempted, Preemption
from lightning_gans.checkpointing import AtomicCheckpointIO
from lightning_gans.models import GAN

root = Path(sys.argv[1])

class Slow(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, *args):
        if pl_module.g_steps == 3:
            (root / f"ready{trainer.global_rank}").touch()
        time.sleep(0.05)

L.seed_everything(0)
data = GaussianMixtureDataModule(num_samples=100_000, num_val_samples=64, batch_size=32, num_workers=0)
model = GAN(image_shape=(2,), latent_dim=4, g_hidden_dims=(16,), d_hidden_dims=(16,))
trainer = L.Trainer(
    accelerator="cpu", devices=2, strategy=GANDDPStrategy(), max_epochs=1, limit_val_batches=0, logger=False,
    enable_progress_bar=False, enable_model_summary=False, default_root_dir=root, plugins=[AtomicCheckpointIO()],
    callbacks=[Slow(), Preemption(), ModelCheckpoint(dirpath=root / "checkpoints", save_last=True)],
)
try:
    trainer.fit(model, datamodule=data)
except Preempted as stop:
    print(f"rank {trainer.global_rank}: {stop}", file=sys.stderr)
    sys.exit(stop.exit_code)
"""


@pytest.mark.ddp
@pytest.mark.parametrize("signalled", [(0, 1), (1,)], ids=["both", "rank1-only"])
def test_slurm_requeue_under_two_process_ddp_is_called_once_from_rank_zero(signalled: tuple[int, ...], tmp_path: Path):
    """Two SLURM tasks (as srun starts them) in one DDP run, both sent SIGUSR1 or only rank 1: both save the same step
    and stop, and `scontrol requeue` runs once, from global rank 0 (the ranks agree over a host-side group)."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    script, calls = tmp_path / "train.py", _recording_scontrol(tmp_path)
    script.write_text(_SLURM_DDP)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    base.update(SLURM_JOB_ID="4242", SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="2", SLURM_JOB_NAME="lightning-gans")
    base.update(SLURM_NODEID="0", SLURM_NODELIST="localhost", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    base.update(PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")
    base.update(PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path)],
            env={**base, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    deadline = time.time() + 180
    while not all((tmp_path / f"ready{rank}").exists() for rank in (0, 1)):
        dead = [p for p in procs if p.poll() is not None]
        assert not dead and time.time() < deadline, dead[0].stderr.read() if dead else "timed out"
        time.sleep(0.05)
    for rank in signalled:
        procs[rank].send_signal(signal.SIGUSR1)
    errors = [proc.communicate(timeout=180)[1] for proc in procs]
    # a rank that did not receive the signal itself reports SIGTERM (128 + 15)
    expected = [128 + int(signal.SIGUSR1 if rank in signalled else signal.SIGTERM) for rank in (0, 1)]
    assert [proc.returncode for proc in procs] == expected, errors
    assert calls.read_text().splitlines() == ["requeue 4242"]  # once, from rank 0
    assert "Requeued SLURM job 4242" in errors[0] and "Requeued" not in errors[1]
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["lightning_gans"]["g_steps"] >= 3
    steps = [re.search(r"after G step (\d+)", error).group(1) for error in errors]
    assert steps[0] == steps[1], errors  # the same step on both ranks
