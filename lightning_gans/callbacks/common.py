"""Small helpers the callbacks share: where a run's files go, and tensors to image files."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from PIL import Image
from torch import Tensor


def run_dir(trainer: L.Trainer) -> Path:
    """The folder of this run: the logger's versioned folder (``lightning_logs/version_3``, for W&B
    ``<save_dir>/<project>/<run id>`` like Lightning's checkpoints), or ``default_root_dir`` without a logger."""
    logger = trainer.logger
    if logger is None:
        return Path(trainer.default_root_dir)
    if isinstance(logger, (TensorBoardLogger, CSVLogger)):
        return Path(logger.log_dir)
    save_dir = logger.save_dir or trainer.default_root_dir
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    return Path(save_dir) / str(logger.name or "") / version


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] float images (N, C, H, W) -> uint8 (N, H, W, C) on the CPU."""
    x = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu()


def save_image(image_hwc: Tensor, path: str | os.PathLike) -> None:
    """Write one uint8 (H, W, C) image as PNG (grey for one channel)."""
    array = image_hwc.numpy()
    if array.shape[-1] == 1:
        array = array[..., 0]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_grid_uint8(images: Tensor, nrow: int = 8) -> Tensor:
    """[-1, 1] images (N, C, H, W) -> one uint8 (H, W, C) grid image."""
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=2, pad_value=1.0)
    return to_uint8(grid.unsqueeze(0))[0]


def log_image(trainer: L.Trainer, tag: str, image_hwc: Tensor, step: int, caption: str | None = None) -> None:
    """Send one uint8 (H, W, C) image to the run's TensorBoard and W&B loggers (CSV keeps none: files only)."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, image_hwc.permute(2, 0, 1), step)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=tag, images=[image_hwc.numpy()], caption=[caption or f"step {step}"])
