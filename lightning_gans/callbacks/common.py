"""Small helpers the callbacks share: where a run's files go, and tensors to image files."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import numpy as np
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


def captioned_grid_uint8(images: Tensor, captions: list[str], nrow: int = 8, label_chars: int = 36) -> Tensor:
    """[-1, 1] images with one caption each -> one uint8 (H, W, 3) grid whose rows carry their captions.

    Consecutive images with the same caption form a run; each run starts a new row, wraps after ``nrow`` images,
    and its caption is written (wrapped at ``label_chars`` characters) in a column left of its first row.
    """
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    nrow = max(1, int(nrow))
    runs: list[tuple[str, list[int]]] = []
    for i, caption in enumerate(captions):
        if runs and runs[-1][0] == caption:
            runs[-1][1].append(i)
        else:
            runs.append((caption, [i]))
    try:
        font = ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    line_height, margin = 13, 4
    # Pillow's default font (Aileron at size 11) has a 2-pixel space, which runs words together ("slantedto the"):
    # words are drawn one by one with half an "n" between them.
    space = max(font.getlength(" "), font.getlength("n") / 2)

    def line_width(line: str) -> float:
        words = line.split(" ")
        return sum(font.getlength(word) for word in words) + space * (len(words) - 1)

    rows: list[tuple[list[str], Tensor]] = []
    for caption, indices in runs:
        for start in range(0, len(indices), nrow):
            chunk = indices[start : start + nrow]
            lines = (textwrap.wrap(caption, label_chars) or [""]) if start == 0 else []
            tiles = torch.nn.functional.pad(images[chunk].detach().float().cpu().clamp(-1, 1), (2, 2, 2, 2), value=1.0)
            rows.append((lines, to_uint8(torch.cat(list(tiles), dim=-1).unsqueeze(0))[0]))
    text_width = max([line_width(line) for lines, _ in rows for line in lines] or [0.0])
    label_width = int(text_width) + 2 * margin
    width = label_width + max(tile.shape[1] for _, tile in rows)
    heights = [max(tile.shape[0], len(lines) * line_height + 2 * margin) for lines, tile in rows]
    canvas = Image.new("RGB", (width, sum(heights)), "white")
    draw = ImageDraw.Draw(canvas)
    top = 0
    for (lines, tile), height in zip(rows, heights):
        array = tile.numpy()
        tile_image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert("RGB")
        canvas.paste(tile_image, (label_width, top))
        for k, line in enumerate(lines):
            x = float(margin)
            for word in line.split(" "):
                draw.text((x, top + margin + k * line_height), word, fill="black", font=font)
                x += font.getlength(word) + space
        top += height
    return torch.from_numpy(np.asarray(canvas).copy())


def titled_grid_uint8(images: Tensor, titles: list[str], nrow: int = 8, padding: int = 2) -> Tensor:
    """Images (N, C, H, W), [-1, 1] floats or uint8, with a title over each -> one uint8 (H, W, 3) grid.

    A title may have several lines (``"name\\nmetrics"``) and is cut to its image's width. A row whose titles are all
    empty gets no title band, so titles for the first ``nrow`` images only (``""`` or nothing after them) make a
    header that names the columns. The images sit ``padding`` white pixels apart, as in :func:`make_grid_uint8`.
    """
    from PIL import ImageDraw, ImageFont

    if len(titles) > len(images):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    if len(images) == 0:
        raise ValueError("no images for the grid")
    titles = [*titles, *[""] * (len(images) - len(titles))]
    tiles = images.detach().cpu()
    tiles = tiles.permute(0, 2, 3, 1) if tiles.dtype == torch.uint8 else to_uint8(tiles)
    if tiles.shape[-1] == 1:
        tiles = tiles.expand(-1, -1, -1, 3)
    n, h, w = tiles.shape[:3]
    nrow = max(1, min(int(nrow), n))
    try:
        font = ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    line_height, margin = 13, 2

    def fit(line: str) -> str:
        while line and font.getlength(line) > w - margin:
            line = line[:-1]
        return line

    rows = [list(range(start, min(start + nrow, n))) for start in range(0, n, nrow)]
    bands = [max(len(titles[i].split("\n")) if titles[i] else 0 for i in row) * line_height for row in rows]
    bands = [band + margin if band else 0 for band in bands]
    width = nrow * (w + padding) + padding
    canvas = Image.new("RGB", (width, sum(bands) + len(rows) * (h + padding) + padding), "white")
    draw = ImageDraw.Draw(canvas)
    top = padding
    for row, band in zip(rows, bands):
        for k, i in enumerate(row):
            x = padding + k * (w + padding)
            for j, line in enumerate(titles[i].split("\n") if titles[i] else []):
                draw.text((x + margin, top + j * line_height), fit(line), fill="black", font=font)
            canvas.paste(Image.fromarray(tiles[i].numpy()), (x, top + band))
        top += band + h + padding
    return torch.from_numpy(np.asarray(canvas).copy())


def save_grid(
    images: Tensor,
    path: str | os.PathLike,
    nrow: int = 8,
    titles: list[str] | None = None,
    captions: list[str] | None = None,
) -> Path:
    """Write images (N, C, H, W; [-1, 1] floats, or uint8 with ``titles``) as one PNG grid of ``nrow`` per row and
    return its path: plain (:func:`make_grid_uint8`), with a title over each image (:func:`titled_grid_uint8`), or
    with a caption left of each run of images (:func:`captioned_grid_uint8`)."""
    if titles is not None and captions is not None:
        raise ValueError("give titles (over each image) or captions (left of each row), not both")
    if titles is not None:
        grid = titled_grid_uint8(images, titles, nrow)
    elif captions is not None:
        grid = captioned_grid_uint8(images, captions, nrow)
    else:
        grid = make_grid_uint8(images, nrow)
    save_image(grid, path)
    return Path(path)
