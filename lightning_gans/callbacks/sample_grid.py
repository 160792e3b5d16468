"""The sample grid: the fixed noise through the generator every N generator steps, to disk and to the logger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from lightning_gans.callbacks.common import captioned_grid_uint8, log_image, make_grid_uint8, run_dir, save_image


class SampleGrid(L.Callback):
    """Save ``pl_module.grid_images()`` (fixed noise, EMA generator when on) as a PNG grid and log it.

    Files: ``<run dir>/samples/g_step_000500.png`` and ``samples/final.png`` at the end of training. Logged to
    TensorBoard (``add_image``) or W&B (``log_image``) as ``samples``; CSV logs keep only the PNG files.
    Only global rank 0 generates and writes. A model with ``grid_captions()`` (the text-to-image families: one
    prompt per image) gets a grid whose rows carry their captions.

    A family with more to show defines ``extra_grids()`` returning ``{tag: (images, nrow)}`` (StyleGAN: its
    style-mixing grid and truncation sweep); each is written to ``samples/<tag>/<name>.png`` and logged as ``<tag>``
    at the same steps.

    Args:
        every_n_steps: generator steps between grids; 0 only writes the final grid.
        nrow: images per row.
    """

    def __init__(self, every_n_steps: int = 500, nrow: int = 8) -> None:
        if every_n_steps < 0:
            raise ValueError(f"every_n_steps must be 0 or more, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.nrow = nrow
        self._last_g_step = -1
        self.written: list[Path] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        g_steps = int(getattr(pl_module, "g_steps", trainer.global_step))
        if self.every_n_steps and g_steps and g_steps % self.every_n_steps == 0 and g_steps != self._last_g_step:
            self._last_g_step = g_steps
            self.write(trainer, pl_module, f"g_step_{g_steps:06d}")

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.write(trainer, pl_module, "final")

    def write(self, trainer: L.Trainer, pl_module: Any, name: str) -> Path | None:
        if not trainer.is_global_zero or trainer.fast_dev_run:  # a smoke test writes nothing (as Lightning's loggers)
            return None
        images = pl_module.grid_images()
        if images.dim() != 4:  # points, not images: the mixture evaluation draws those
            return None
        captions = pl_module.grid_captions() if callable(getattr(pl_module, "grid_captions", None)) else None
        grid = captioned_grid_uint8(images, captions, self.nrow) if captions else make_grid_uint8(images, self.nrow)
        path = run_dir(trainer) / "samples" / f"{name}.png"
        save_image(grid, path)
        self.written.append(path)
        step = int(getattr(pl_module, "g_steps", trainer.global_step))
        log_image(trainer, "samples", grid, step, caption=f"g_step {step}")
        extra_grids = getattr(pl_module, "extra_grids", None)
        for tag, (extra, nrow) in (extra_grids() if callable(extra_grids) else {}).items():
            extra_grid = make_grid_uint8(extra, nrow)
            extra_path = run_dir(trainer) / "samples" / tag / f"{name}.png"
            save_image(extra_grid, extra_path)
            self.written.append(extra_path)
            log_image(trainer, tag, extra_grid, step, caption=f"g_step {step}")
        return path
