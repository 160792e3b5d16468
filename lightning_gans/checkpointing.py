"""What checkpoints need beyond Lightning's own handling: whole files, RNG states, and a model that matches.

- :class:`AtomicCheckpointIO`: a checkpoint file is whole or absent (temporary file, then rename).
- :func:`rng_states` / :func:`set_rng_states`: torch, numpy and Python RNG states as ``weights_only``-safe data.
- :func:`check_finite_state`: never write a diverged (NaN/inf) model.
- :func:`check_matches`: a checkpoint of another family or with other network shapes is refused with a message
  naming both, instead of being loaded silently or failing in a long size-mismatch traceback.
- :func:`adopt_optimizer_settings`: learning rates and betas changed on resume take effect (the restored optimizer
  state would otherwise keep the old ones while the saved config shows the new ones).

:class:`~lightning_gans.core.GANModule` calls these from its checkpoint hooks.

**Atomic writes.** Lightning writes a checkpoint through an fsspec transaction: the whole file goes to the system
temp folder first and is then copied to its path, so every save costs two full writes, a small node-local /tmp fails
the save, and a process killed while copying leaves a truncated ``last.ckpt`` in place of the good one it was
replacing. :class:`AtomicCheckpointIO` writes ``.<name>.tmp`` once, in the checkpoint's own folder, syncs it, and
renames it over the old file only when it is complete (``os.replace`` is atomic on one filesystem); a failed write
leaves the previous file untouched and removes its temporary file. A full disk is one error naming the folder, the
bytes the checkpoint needs and the free bytes.

**Readable checkpoints.** Before a checkpoint is loaded (``fit``/``validate``/``test``/``predict --ckpt_path``),
:class:`AtomicCheckpointIO` checks that it is a whole PyTorch archive. A truncated, empty or foreign file is refused
with :class:`CheckpointReadError`, which names the file and the newest readable checkpoint beside it (never loaded in
its place: the user chooses); a checkpoint that ``weights_only`` loading refuses (pickled code) is named with why.

``lightning-gans`` uses it by default (``trainer.plugins`` in ``lightning_gans/defaults.yaml``); with a plain
Trainer: ``Trainer(plugins=[AtomicCheckpointIO()])``.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import random
import re
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import Tensor, nn


class CheckpointReadError(ValueError):
    """A checkpoint file cannot be read (truncated, empty, not a checkpoint, or refused); the message names it, the
    newest readable checkpoint beside it, and the command that resumes from that one."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk); the message names the folder, the bytes needed, and that the
    previous file is intact."""


class _ByteCounter(io.RawIOBase):
    """A file that keeps nothing and counts what is written to it: the size a checkpoint needs."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        self.size += n
        return n


def _disk_full(err: BaseException | None) -> bool:
    """Whether ``err`` or an error it was raised from is ENOSPC (no space left on device)."""
    while err is not None:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        err = err.__cause__ or err.__context__
    return False


def unreadable(path: str | os.PathLike) -> str | None:
    """Why the file at ``path`` is not a whole PyTorch checkpoint archive, or None when it is (a quick check of the
    zip archive's directory, which a truncated copy loses; the tensors are not read)."""
    path = Path(path)
    if not path.is_file():
        return "there is no such file"
    if path.stat().st_size == 0:
        return "it is empty (0 bytes)"
    if not zipfile.is_zipfile(path):
        return f"it is not a whole PyTorch checkpoint archive ({path.stat().st_size} bytes: cut short, or another file)"
    with zipfile.ZipFile(path) as archive:
        if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist()):
            return "it is a zip archive but not a PyTorch checkpoint (no data.pkl)"
    return None


def newest_readable(folder: Path, besides: Path) -> Path | None:
    """The most recently written ``*.ckpt`` in ``folder`` other than ``besides`` that :func:`unreadable` accepts."""
    candidates = [p for p in folder.glob("*.ckpt") if p.resolve() != besides.resolve()]
    for candidate in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        if unreadable(candidate) is None:
            return candidate
    return None


def _read_error(path: Path, why: str) -> CheckpointReadError:
    other = newest_readable(path.parent, path)
    if other is None:
        way_out = f"There is no readable checkpoint beside it in {path.parent}; start again without --ckpt_path."
    else:
        way_out = (
            f"The newest readable checkpoint beside it is {other.name} (written "
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(other.stat().st_mtime))}): run the same command "
            f"with --ckpt_path {other}"
        )
    return CheckpointReadError(f"checkpoint {path} cannot be read: {why}. {way_out}")


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes a checkpoint once, in its own folder, and replaces the old file only with a
    completely written one; and that names a damaged checkpoint, and the newest readable one beside it, on load."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options (local files only)")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except (OSError, RuntimeError) as err:  # torch's writer turns a full disk into a RuntimeError from OSError
            if not _disk_full(err):
                raise
            tmp.unlink(missing_ok=True)  # before measuring what is free
            needed = _ByteCounter()
            torch.save(checkpoint, needed)
            kept = sorted(path.parent.glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
            intact = (
                f"the {len(kept)} checkpoint(s) already there are intact (newest: {kept[-1].name})"
                if kept
                else "no checkpoint was written there before"
            )
            error = CheckpointWriteError(
                f"no space left in {path.parent} for checkpoint {path.name}: it needs {needed.size:,} bytes and "
                f"{shutil.disk_usage(path.parent).free:,} are free; {intact}. Free space there or point "
                "--trainer.default_root_dir at a larger disk, then resume with --ckpt_path last"
            )
            error.errno = errno.ENOSPC
            raise error from None
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(self, path: str | os.PathLike, *args: Any, **kwargs: Any) -> dict[str, Any]:
        path = Path(path)
        if (why := unreadable(path)) is not None:
            raise _read_error(path, why)
        try:
            return super().load_checkpoint(path, *args, **kwargs)
        except pickle.UnpicklingError as err:  # what weights_only loading raises for anything but plain data
            found = re.search(r"GLOBAL ([\w.]+)", str(err))
            what = f" (the first: {found.group(1)})" if found else ""
            raise CheckpointReadError(
                f"checkpoint {path} was refused: it holds pickled Python objects{what}, not only tensors and plain "
                "data, and loading it could run code. Load only checkpoints you trust; this project's own "
                "checkpoints hold plain data"
            ) from None
        except (EOFError, OSError, RuntimeError) as err:
            if isinstance(err, RuntimeError) and "PytorchStreamReader" not in str(err):
                raise  # not the file's fault (a CUDA checkpoint on a CPU machine, ...): torch's own message
            raise _read_error(path, f"{type(err).__name__}: {err}") from None  # damage the quick check let through


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss or weight; the message names the step, the network and the loss."""


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model the config builds; the message names both and the fix."""


def rng_states() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python RNG states as tensors and plain tuples (``weights_only``-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["torch.cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` saved (CUDA states only where CUDA is there)."""
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "torch.cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch.cuda"])


def check_finite_state(state_dict: dict[str, Tensor], g_steps: int) -> None:
    """Raise :class:`DivergenceError` instead of saving weights or buffers that hold NaN or inf."""
    broken = [k for k, v in state_dict.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if broken:
        raise DivergenceError(
            f"refusing to save a checkpoint at G step {g_steps}: {len(broken)} tensors hold NaN or inf "
            f"({', '.join(broken[:3])}{', ...' if len(broken) > 3 else ''}); the run diverged. The checkpoints "
            "already on disk are untouched; resume from one with lower learning rates or more stabilisation."
        )


_FIX = (
    "Give the config the checkpoint was trained with (each run saves it as config.yaml in its log folder) or the "
    "same overrides, or a checkpoint of this model."
)


def check_matches(module: nn.Module, checkpoint: dict[str, Any], family: str | None) -> None:
    """Refuse a checkpoint of another family, or whose weights have other names or shapes than ``module``'s."""
    mine = type(module).__name__
    if family is not None and family != mine:
        raise CheckpointMismatchError(f"the checkpoint holds a {family}, but the config builds a {mine}. {_FIX}")
    theirs, ours = checkpoint.get("state_dict", {}), module.state_dict()
    missing, unexpected = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    reshaped = [k for k in ours.keys() & theirs.keys() if tuple(ours[k].shape) != tuple(theirs[k].shape)]
    if not (missing or unexpected or reshaped):
        return
    hparams = checkpoint.get("hyper_parameters", {})
    changed = [
        f"{k}={hparams[k]!r} (config: {v!r})"
        for k, v in getattr(module, "hparams", {}).items()
        if k in hparams and _plain(hparams[k]) != _plain(v)
    ]
    details = [f"{k}: checkpoint {tuple(theirs[k].shape)}, model {tuple(ours[k].shape)}" for k in sorted(reshaped)[:3]]
    details += [f"missing from the checkpoint: {', '.join(missing[:3])}"] if missing else []
    details += [f"not in the model: {', '.join(unexpected[:3])}"] if unexpected else []
    trained = f" It was trained with {', '.join(changed)}." if changed else ""
    raise CheckpointMismatchError(
        f"the checkpoint's networks do not fit the {mine} the config builds ({'; '.join(details)}).{trained} {_FIX}"
    )


def _plain(value: Any) -> Any:
    """Hyperparameters compared as plain data (tuples as lists, option groups as dicts)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def adopt_optimizer_settings(configured: Any, checkpoint: dict[str, Any]) -> list[str]:
    """Put the configured learning rates and betas into the checkpoint's optimizer (and LR scheduler) states before
    Lightning restores them, so that options changed on resume take effect; the moments (Adam's averages) are kept.

    ``configured`` is what a fresh ``configure_optimizers()`` returns (an optimizer, a tuple of them, or
    ``([optimizers], [schedulers])``), in the order of the checkpoint's optimizers (and schedulers, one per
    optimizer). With an LR schedule the restored rate keeps its place in the schedule: the new base rate times the
    checkpoint's current factor. Returns what changed, e.g. ``["optimizer 0 lr 0.0002 -> 0.0001"]``.
    """
    if isinstance(configured, torch.optim.Optimizer):
        configured = [configured]
    elif configured and isinstance(configured[0], (list, tuple)):
        configured = configured[0]
    changes: list[str] = []
    schedulers = checkpoint.get("lr_schedulers", [])
    for i, (optimizer, state) in enumerate(zip(configured, checkpoint.get("optimizer_states", []))):
        scheduler = schedulers[i] if i < len(schedulers) else None
        base_lrs = scheduler.get("base_lrs") if scheduler else None
        for j, (group, saved) in enumerate(zip(optimizer.param_groups, state["param_groups"])):
            old_base = base_lrs[j] if base_lrs else saved["lr"]
            if group["lr"] != old_base:
                changes.append(f"optimizer {i} lr {old_base:g} -> {group['lr']:g}")
            saved["lr"] = group["lr"] * (saved["lr"] / old_base if old_base else 1.0)
            if "initial_lr" in saved:
                saved["initial_lr"] = group["lr"]
            if base_lrs:
                base_lrs[j] = group["lr"]
            for key in ("betas", "momentum", "weight_decay", "alpha", "eps"):
                if key in group and key in saved and _plain(group[key]) != _plain(saved[key]):
                    changes.append(f"optimizer {i} {key} {_plain(saved[key])} -> {_plain(group[key])}")
                    saved[key] = group[key]
        if scheduler is not None and "_last_lr" in scheduler:
            scheduler["_last_lr"] = [g["lr"] for g in state["param_groups"]]
    return changes


__all__ = [
    "AtomicCheckpointIO",
    "CheckpointMismatchError",
    "CheckpointReadError",
    "CheckpointWriteError",
    "DivergenceError",
    "adopt_optimizer_settings",
    "check_finite_state",
    "check_matches",
    "newest_readable",
    "rng_states",
    "set_rng_states",
    "unreadable",
]
