"""What every family that maps an input image to an output image shares (image-to-image and super-resolution).

- :class:`FixedPairs`: the grid's inputs/targets, kept in uint8 buffers so checkpoints hold them;
- :func:`grid_rows`, :func:`to_rgb`, :func:`label_colours`: rows of a validation grid (label maps in colour);
- :func:`write_validation_grid`: the grid of a validation, saved under the run folder and logged;
- :func:`output_name`, :func:`predict_sizes`: the names and sizes ``predict`` writes outputs with;
- :func:`check_datamodule_shapes`: the datamodule must make the shapes the model was built for (at setup).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gans.callbacks.common import log_image, make_grid_uint8, run_dir, save_image
from lightning_gans.core import GANModule

# Where the fixed grid batch came from: nothing yet, validation batches (preferred), training batches.
_NONE, _VAL, _TRAIN = 0, 1, 2


def label_colours(k: int, device: torch.device | None = None) -> Tensor:
    """k colours [k, 3] in [-1, 1] along the jet colour map (dark blue ... dark red), for one-hot label maps.

    The facades palette of the paired datamodule runs along the same map, so its label maps look familiar.
    """
    t = torch.linspace(0.0, 1.0, k, device=device).unsqueeze(1)
    centres = torch.tensor([3.0, 2.0, 1.0], device=device)  # r, g, b
    return ((1.5 - (4 * t - centres).abs()).clamp(0, 1)) * 2 - 1


def to_rgb(x: Tensor) -> Tensor:
    """Images for display: 3 channels kept, 1 channel repeated, any other count read as a one-hot label map and
    coloured with :func:`label_colours`."""
    channels = x.shape[1]
    if channels == 3:
        return x
    if channels == 1:
        return x.expand(-1, 3, -1, -1)
    labels = x.argmax(1)
    return label_colours(channels, x.device)[labels].permute(0, 3, 1, 2)


def output_name(name: str, folder: str = "") -> str:
    """File name of an output: the input's name as PNG (lossless, like the official test's outputs), optionally in a
    sub-folder (``AtoB/12.png``)."""
    path = Path(name).with_suffix(".png").name
    return f"{folder}/{path}" if folder else path


def predict_sizes(batch: dict[str, Any]) -> list[tuple[int, int]] | None:
    """(H, W) of each input of a predict batch, for the image writer (None when the batch has no ``size``)."""
    sizes = batch.get("size")
    if sizes is None:
        return None
    return [(int(s[0]), int(s[1])) for s in sizes]


class FixedPairs(nn.Module):
    """A fixed set of (input, target) images for the grids, kept in uint8 buffers so it is saved in checkpoints.

    Buffers are registered at ``__init__`` with their final shapes (so ``load_state_dict`` and
    ``load_from_checkpoint`` work before any data is seen) and filled from the first batches: from validation batches
    when there are any (a validation batch replaces a grid filled from training batches, at most once), else from
    training batches. The families skip the sanity-check batches, which the first validation repeats. Images in
    [-1, 1] that came from 8-bit files are stored losslessly; a one-hot input is stored as its class indices
    (K <= 256).

    Args:
        size: number of (input, target) pairs.
        input_shape: (C, H, W) of the inputs.
        target_shape: (C, H, W) of the targets (or, for CycleGAN, of the B images).
        one_hot_input: the inputs are one-hot label maps.
    """

    def __init__(self, size: int, input_shape: Sequence[int], target_shape: Sequence[int], one_hot_input: bool = False):
        super().__init__()
        if one_hot_input and input_shape[0] > 256:
            raise ValueError(f"a one-hot input with {input_shape[0]} classes cannot be kept as uint8 indices")
        self.size = size
        self.one_hot_input = one_hot_input
        self.input_channels = int(input_shape[0])
        stored = (1, *input_shape[1:]) if one_hot_input else tuple(input_shape)
        self.register_buffer("inputs", torch.zeros(size, *stored, dtype=torch.uint8))
        self.register_buffer("targets", torch.zeros(size, *target_shape, dtype=torch.uint8))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("source", torch.zeros((), dtype=torch.long))
        self._mirror: tuple[int, int] | None = None  # (count, source) on the host: no device sync per step

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._mirror = None

    @staticmethod
    def _encode(x: Tensor) -> Tensor:
        return x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)

    @staticmethod
    def _decode(x: Tensor) -> Tensor:
        return x.float().div(127.5).sub(1)

    @torch.no_grad()
    def add(self, inputs: Tensor, targets: Tensor, from_validation: bool) -> None:
        """Keep images of this batch while there is room (see the class docstring for which batches count)."""
        if self._mirror is None:
            self._mirror = (int(self.count), int(self.source))
        count, current = self._mirror
        source = _VAL if from_validation else _TRAIN
        if current == _TRAIN and source == _VAL:
            count = 0  # validation images are better for grids: they replace the training crops, once
        elif current not in (_NONE, source) or count >= self.size:
            return
        input_shape = (1, *inputs.shape[2:]) if self.one_hot_input else tuple(inputs.shape[1:])
        if input_shape != tuple(self.inputs.shape[1:]) or tuple(targets.shape[1:]) != tuple(self.targets.shape[1:]):
            return  # another size (e.g. a validation set at another resolution): not for this grid
        take = min(self.size - count, inputs.shape[0])
        if self.one_hot_input:
            encoded = inputs[:take].argmax(1, keepdim=True).to(torch.uint8)
        else:
            encoded = self._encode(inputs[:take])
        self.inputs[count : count + take] = encoded
        self.targets[count : count + take] = self._encode(targets[:take])
        self.count.fill_(count + take)
        self.source.fill_(source)
        self._mirror = (count + take, source)

    def get(self) -> tuple[Tensor, Tensor, int]:
        """(inputs, targets) as float tensors in [-1, 1] (one-hot maps for one-hot inputs), all ``size`` slots, and
        how many of them are filled."""
        if self.one_hot_input:
            inputs = F.one_hot(self.inputs[:, 0].long(), self.input_channels).permute(0, 3, 1, 2).float()
        else:
            inputs = self._decode(self.inputs)
        return inputs, self._decode(self.targets), int(self.count)


def grid_rows(rows: Sequence[Tensor], filled: int, size: int) -> Tensor:
    """Stack rows of images (each [size or filled, C, H, W]) into one batch for a grid with ``nrow=size``: the first
    ``filled`` images of each row, padded with black tiles so that every row keeps ``size`` images."""
    out = []
    for row in rows:
        row = to_rgb(row[:filled])
        if filled < size:
            pad = torch.full((size - filled, *row.shape[1:]), -1.0, device=row.device, dtype=row.dtype)
            row = torch.cat([row, pad])
        out.append(row)
    return torch.cat(out).clamp(-1, 1)


def write_validation_grid(module: GANModule, images: Tensor, nrow: int) -> Path | None:
    """Save ``images`` as ``<run dir>/val/epoch_XXXX_g_step_YYYYYYY.png`` and log them to TensorBoard/W&B as
    ``val/grid`` (global rank 0, not during the sanity check; several validations per epoch keep their own files)."""
    trainer = module.trainer
    if trainer.sanity_checking or trainer.fast_dev_run or not trainer.is_global_zero:
        return None  # (a smoke test writes nothing, as Lightning's loggers)
    grid = make_grid_uint8(images, nrow=nrow)
    path = run_dir(trainer) / "val" / f"epoch_{module.current_epoch:04d}_g_step_{module.g_steps:07d}.png"
    save_image(grid, path)
    log_image(trainer, "val/grid", grid, module.current_epoch, caption=f"epoch {module.current_epoch}")
    return path


def check_datamodule_shapes(module: GANModule, input_channels: int, family: str) -> None:
    """At setup: the datamodule's image shape and input channels must be the ones the model was built for."""
    dm = module.attached_datamodule()
    if dm is None:
        return
    shape = getattr(dm, "image_shape", None)
    if shape is not None and tuple(shape) != tuple(module.image_shape):
        raise ValueError(
            f"{family} was built for images {tuple(module.image_shape)} (C, H, W) but the datamodule makes "
            f"{tuple(shape)}: build the model from the datamodule (the CLI links data.image_shape into the model) or "
            f"set image_shape={list(shape)}"
        )
    channels = getattr(dm, "input_channels", None)
    if channels is not None and int(channels) != input_channels:
        raise ValueError(
            f"{family} was built for inputs with {input_channels} channels but the datamodule's inputs have "
            f"{channels} (input_nc, or the number of label_palette classes): set model.init_args.input_channels: "
            f"{channels}"
        )
