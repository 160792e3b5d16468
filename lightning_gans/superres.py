"""What the super-resolution families (SRResNet, SRGAN, ESRGAN) share: plain functions, called from one-line hooks.

- :func:`upscale`: a generator applied to LR images in eval mode, without gradients, tile by tile when they are
  large (outputs exactly ``scale`` x the input size);
- :func:`interpolated`: the bicubic and nearest-neighbour baselines every model is compared with;
- :func:`check_superres_datamodule`: at setup, the datamodule must make the HR size and the scale the model was
  built for;
- :func:`sr_validation_step`, :func:`sr_grid`, :func:`sr_predictions`: validation (PSNR/SSIM on Y and RGB, of the
  model and of bicubic upscaling), the grid (LR | bicubic | SR | HR) and ``predict``;
- :func:`init_generator`: a generator started from another run's checkpoint (``init_from``), e.g. SRGAN from the
  PSNR-oriented SRResNet, as the papers do;
- :class:`Tiling`: the typed option group of tiled upscaling (``tiling: {size: 128, overlap: 16}``).

What these functions use of a family is :class:`SuperResolutionFamily` (checked over the families by
tests/test_contracts.py); the grid pairs and output names are :mod:`lightning_gans.pairs`'.

Nothing here is a base class or a mixin: each family file keeps its networks, losses, training step and hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from lightning_gans.checkpointing import CheckpointMismatchError
from lightning_gans.core import unwrap
from lightning_gans.metrics.superres import SRMetrics
from lightning_gans.networks.srresnet import interpolate
from lightning_gans.options import OptionGroup
from lightning_gans.pairs import FixedPairs, check_datamodule_shapes, grid_rows, output_name

BASELINES: tuple[str, ...] = ("bicubic", "nearest")


@dataclass(frozen=True)
class Tiling(OptionGroup):
    """How validation and ``predict`` upscale large LR images: tile by tile, so memory stays bounded (see
    :func:`upscale`). Set as ``tiling: {size: 256}`` in a config or ``--model.init_args.tiling.size 256``.

    Args:
        size: LR images larger than this (either side) are upscaled tile by tile (0 = never).
        overlap: LR pixels of context around each tile.
    """

    size: int = 128
    overlap: int = 16

    _group = "tiling"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size < 0 or self.overlap < 0:
            raise ValueError(f"tiling.size and tiling.overlap must be 0 or more, got {self.size} and {self.overlap}")


@runtime_checkable
class SuperResolutionFamily(Protocol):
    """What this module's functions use of a super-resolution family (SRResNet, SRGAN, ESRGAN): its scale, HR image
    shape, grid pairs, metrics, generator (and EMA copy), hyperparameters, ``translate``, and Lightning's ``trainer``,
    ``device`` and ``log``."""

    scale: int
    image_shape: tuple[int, ...]
    fixed_batch: FixedPairs
    val_metrics: SRMetrics
    generator: nn.Module
    generator_ema: nn.Module | None
    hparams: Any
    trainer: Any
    device: torch.device

    def translate(self, x: Tensor) -> Tensor: ...

    def attached_datamodule(self) -> Any: ...

    def log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None: ...


def check_image_shape(image_shape: tuple[int, ...], scale: int, family: str) -> None:
    """At construction: (C, H, W) HR images whose sides are multiples of ``scale``."""
    if len(image_shape) != 3 or image_shape[1] % scale or image_shape[2] % scale:
        raise ValueError(
            f"{family} makes HR images (C, H, W) whose sides are multiples of scale={scale}, got image_shape "
            f"{tuple(image_shape)}: set the datamodule's hr_size to a multiple of the scale"
        )


@torch.no_grad()
def upscale(generator: nn.Module, x: Tensor, scale: int, tile_size: int = 0, tile_overlap: int = 16) -> Tensor:
    """``generator(x)`` clamped to [-1, 1], in eval mode and without gradients, for LR images ``x`` [N, C, h, w].

    Inputs larger than ``tile_size`` (LR pixels, either side; 0 = never tile) are cut into tiles of ``tile_size``;
    each is upscaled with ``tile_overlap`` LR pixels of context on every side that has them, and only its own part of
    the output is kept, so memory stays bounded and the seams see context (the result equals the whole-image output
    wherever the network's receptive field fits in the overlap). The output is exactly ``scale`` x the input size.
    """
    was_training = generator.training
    generator.eval()
    try:
        n, _, h, w = x.shape
        if tile_size <= 0 or (h <= tile_size and w <= tile_size):
            out = generator(x)
            _check_output(out, x, scale)
            return out.clamp(-1.0, 1.0)
        out = None
        for top in range(0, h, tile_size):
            for left in range(0, w, tile_size):
                bottom, right = min(top + tile_size, h), min(left + tile_size, w)
                t0, l0 = max(top - tile_overlap, 0), max(left - tile_overlap, 0)
                b0, r0 = min(bottom + tile_overlap, h), min(right + tile_overlap, w)
                patch = x[:, :, t0:b0, l0:r0]
                tile = generator(patch)
                _check_output(tile, patch, scale)
                if out is None:
                    out = tile.new_empty(n, tile.shape[1], h * scale, w * scale)
                out[:, :, top * scale : bottom * scale, left * scale : right * scale] = tile[
                    :, :, (top - t0) * scale : (bottom - t0) * scale, (left - l0) * scale : (right - l0) * scale
                ]
        return out.clamp(-1.0, 1.0)
    finally:
        generator.train(was_training)


def _check_output(out: Tensor, x: Tensor, scale: int) -> None:
    if tuple(out.shape[-2:]) != (x.shape[-2] * scale, x.shape[-1] * scale):
        raise RuntimeError(f"the generator made {tuple(out.shape[-2:])} from {tuple(x.shape[-2:])}, not x{scale}")


def interpolated(x: Tensor, scale: int, mode: str = "bicubic") -> Tensor:
    """The interpolation baselines: ``x`` enlarged ``scale`` times by ``"bicubic"`` (MATLAB's kernel) or
    ``"nearest"`` interpolation, clamped to [-1, 1]."""
    if mode not in BASELINES:
        raise ValueError(f"unknown baseline {mode!r}; valid: {', '.join(BASELINES)}")
    return interpolate(x.float(), scale, mode).clamp(-1.0, 1.0)


def check_loss_weights(family: str, **weights: float) -> None:
    """At construction: refuse negative loss weights, and a G loss whose every term is off."""
    for name, value in weights.items():
        if value < 0:
            raise ValueError(f"{family}: {name} must be 0 (off) or positive, got {value}")
    if not any(weights.values()):
        raise ValueError(f"{family}: every term of G's loss is off ({', '.join(weights)} are all 0): set one of them")


def check_superres_datamodule(module: SuperResolutionFamily, family: str) -> None:
    """At setup: the datamodule's HR size, channels and scale are the ones the model was built for."""
    check_datamodule_shapes(module, module.image_shape[0], family)
    scale = getattr(module.attached_datamodule(), "scale", None)
    if scale is not None and int(scale) != module.scale:
        raise ValueError(
            f"{family} was built to upscale x{module.scale} but the datamodule makes x{scale} pairs: set "
            f"model.init_args.scale: {scale} (or the datamodule's scale: {module.scale})"
        )


def sr_validation_step(module: SuperResolutionFamily, batch: dict[str, Any]) -> None:
    """Validation on ``{"input": LR, "target": HR}``: keep grid images (not from the sanity check, whose batches come
    again in the first validation), then log PSNR/SSIM (Y and RGB) of ``module.translate(LR)`` and of bicubic
    upscaling (``val/psnr_y``, ``val/psnr_y_bicubic``, ...)."""
    lr, hr = batch["input"], batch["target"]
    if not module.trainer.sanity_checking:
        module.fixed_batch.add(lr, hr, from_validation=True)
    module.val_metrics.update(module.translate(lr), hr)
    module.val_metrics.update(interpolated(lr, module.scale, "bicubic"), hr, "bicubic")
    module.val_metrics.log(module, batch_size=lr.shape[0])


def sr_grid(module: SuperResolutionFamily) -> Tensor:
    """Four rows of the fixed pairs: LR (nearest-neighbour enlarged) | bicubic | ``module.translate(LR)`` | HR."""
    lr, hr, filled = module.fixed_batch.get()
    k = max(filled, 1)
    rows = [
        interpolated(lr, module.scale, "nearest"),
        interpolated(lr, module.scale, "bicubic"),
        module.translate(lr[:k].to(module.device)).cpu(),
        hr,
    ]
    return grid_rows([r.cpu() for r in rows], filled, module.fixed_batch.size)


def sr_predictions(module: SuperResolutionFamily, batch: dict[str, Any]) -> dict[str, Any]:
    """Each LR image upscaled at its own size (``module.translate``, tiled when large), named like it as PNG; the
    sizes given to the image writer are the outputs' own (``scale`` x the input's), so nothing is resized."""
    x = batch["input"]
    images = module.translate(x)
    return {
        "images": images,
        "names": [output_name(n) for n in batch["name"]],
        "sizes": [tuple(images.shape[-2:])] * images.shape[0],
    }


def init_generator(module: SuperResolutionFamily, path: str | None, families: tuple[str, ...]) -> None:
    """Start ``module.generator`` (and its EMA copy) from the generator of the checkpoint at ``path``, at the start of a
    fresh fit (a resumed fit keeps its own weights). The checkpoint's EMA generator is taken when it has one (the one
    its validation scored). Refuses a missing file, another family, or other generator shapes, naming the fix."""
    if path is None:
        return
    mine = type(module).__name__
    if module.trainer.ckpt_path is not None:
        rank_zero_info(f"{mine}: resuming from {module.trainer.ckpt_path}; init_from={path} is not applied")
        return
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"{mine}: init_from={path!r}: no such checkpoint file (resolved to {file.resolve()}). Give the .ckpt of a "
            f"{' or '.join(families)} run (e.g. its checkpoints/last.ckpt), or init_from: null to start from scratch."
        )
    ckpt = torch.load(file, map_location="cpu", weights_only=True)
    family = (ckpt.get("lightning_gans") or {}).get("family")
    if family not in families:
        raise CheckpointMismatchError(
            f"{mine}: init_from={path!r} holds a {family or 'checkpoint without a lightning-gans family'}, but {mine} "
            f"starts from a {' or '.join(families)} checkpoint (its generator)."
        )
    state = ckpt.get("state_dict", {})
    prefix = "generator_ema.module." if any(k.startswith("generator_ema.module.") for k in state) else "generator."
    weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    generator = unwrap(module.generator)
    ours = generator.state_dict()
    missing, unexpected = sorted(set(ours) - set(weights)), sorted(set(weights) - set(ours))
    reshaped = sorted(k for k in ours.keys() & weights.keys() if ours[k].shape != weights[k].shape)
    if missing or unexpected or reshaped:
        theirs = ckpt.get("hyper_parameters", {})
        differ = [
            f"{k}={theirs[k]!r} (here {v!r})"
            for k, v in module.hparams.items()
            if k in _GENERATOR_ARGS and k in theirs and theirs[k] != v
        ]
        details = [f"{k}: checkpoint {tuple(weights[k].shape)}, here {tuple(ours[k].shape)}" for k in reshaped[:3]]
        details += [f"missing: {', '.join(missing[:3])}"] if missing else []
        details += [f"not in this generator: {', '.join(unexpected[:3])}"] if unexpected else []
        raise CheckpointMismatchError(
            f"{mine}: the generator of init_from={path!r} ({family}) does not fit this one ({'; '.join(details)})."
            + (f" It was built with {', '.join(differ)}." if differ else "")
            + " Build the same generator (scale, g_channels, num_blocks, batch_norm, kernel_size, skip) as that run."
        )
    generator.load_state_dict(weights)
    if module.generator_ema is not None:
        module.generator_ema.module.load_state_dict(weights)
    steps = (ckpt.get("lightning_gans") or {}).get("g_steps")
    rank_zero_info(f"{mine}: generator initialised from {path} ({family}, {prefix[:-1]}, {steps} G steps)")


_GENERATOR_ARGS = ("scale", "g_channels", "num_blocks", "batch_norm", "kernel_size", "skip", "growth")

__all__ = [
    "BASELINES",
    "SuperResolutionFamily",
    "Tiling",
    "check_image_shape",
    "check_loss_weights",
    "check_superres_datamodule",
    "init_generator",
    "interpolated",
    "sr_grid",
    "sr_predictions",
    "sr_validation_step",
    "upscale",
]
