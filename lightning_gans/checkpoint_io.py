"""Checkpoint files that are whole or absent: written to a temporary file in the same folder, then renamed.

Lightning writes a checkpoint straight into its final path, so a process killed while writing (SIGKILL after a
preemption grace period, a full disk) leaves a truncated ``last.ckpt`` in place of the good one it was replacing, and
``fit --ckpt_path last`` then fails. :class:`AtomicCheckpointIO` writes ``.<name>.tmp`` first and renames it over the
old file only when it is complete (``os.replace`` is atomic on one filesystem); a failed write leaves the previous
file untouched and removes its temporary file.

``lightning-gans`` uses it by default (``trainer.plugins`` in ``lightning_gans/defaults.yaml``); with a plain
Trainer: ``Trainer(plugins=[AtomicCheckpointIO()])``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that replaces a checkpoint file only with a completely written one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


__all__ = ["AtomicCheckpointIO"]
