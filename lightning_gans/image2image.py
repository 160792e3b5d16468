"""What the image-to-image families (Pix2Pix, CycleGAN, GauGAN) share: plain functions and small modules.

- :func:`translate`: run a generator in ``"eval"`` mode or in the paper's ``"train"`` test mode (batch 1, fixed
  dropout seed, buffers and training RNG untouched);
- :class:`FixedPairs`: the grid's inputs/targets, kept in uint8 buffers so checkpoints hold them;
- :class:`TranslationMetrics`: ``val/l1``, ``val/psnr``, ``val/ssim`` (and ``val/l1_input``) through torchmetrics;
- :func:`linear_decay` and its schedulers: the official constant-then-linear learning-rate rule, resumable;
- :func:`check_datamodule_shapes`: the datamodule must make the shapes the model was built for (at setup);
- :func:`paired_validation_step`, :func:`paired_grid` and :func:`paired_predictions`: validation, grids and predict
  of the paired families (Pix2Pix, GauGAN), through the family's own ``translate``.

The families call these from visible one-line Lightning hooks. Nothing here is a base class or a mixin: each family
file keeps its own networks, losses, training step and hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanAbsoluteError
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from lightning_gans.callbacks.common import log_image, make_grid_uint8, run_dir, save_image
from lightning_gans.core import GANModule

GENERATOR_MODES = ("train", "eval")
# Where the fixed grid batch came from: nothing yet, validation batches (preferred), training batches.
_NONE, _VAL, _TRAIN = 0, 1, 2
_GRID_SEED = 20170701


def check_generator_mode(mode: str) -> str:
    if mode not in GENERATOR_MODES:
        raise ValueError(f"generator_mode must be one of {', '.join(GENERATOR_MODES)}, got {mode!r}")
    return mode


def official_loss_scales(loss: str) -> tuple[float, float]:
    """(D scale, G scale) that turn :mod:`lightning_gans.losses` into the official pix2pix/CycleGAN weights.

    The official code halves D's loss, ``(L(D(real), 1) + L(D(fake), 0)) * 0.5``, and gives G the full term
    ``L(D(G(x)), 1)``, with L = BCE on logits (vanilla) or MSE (lsgan). ``losses.py``'s ``nonsaturating`` is the
    unhalved BCE sum for D and the full BCE for G: scales (0.5, 1). Its ``lsgan`` already carries 1/2 in both
    terms (``1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2`` for D, ``1/2 (D(G(z)) - 1)^2`` for G): scales (1, 2), so that G's
    adversarial term weighs as much against the cycle and identity L1 terms as in the official code. Other losses
    follow the same rule as nonsaturating.
    """
    return (1.0, 2.0) if loss == "lsgan" else (0.5, 1.0)


def linear_decay(n_epochs: int, n_epochs_decay: int) -> Callable[[int], float]:
    """LR factor for the 0-based epoch ``e``: 1 for ``e < n_epochs``, then
    ``1 - (e + 1 - n_epochs) / (n_epochs_decay + 1)``.

    The official ``get_scheduler('linear')`` with ``epoch_count=1``, stepped at the end of each epoch: epochs
    1..n_epochs (1-based) train at the base rate, epoch ``n_epochs + j`` at ``1 - j / (n_epochs_decay + 1)``, the last
    one at ``1 / (n_epochs_decay + 1)`` ("linearly decay the rate to zero over the next n_epochs_decay epochs"). Some
    versions of the official ``train.py`` step at the start of each epoch instead, which starts the decay one epoch
    earlier and spends the last epoch at 0. ``n_epochs_decay=0`` means no decay at all (SPADE's ``niter_decay=0``):
    the rate stays constant however long training runs.
    """
    if n_epochs < 0 or n_epochs_decay < 0:
        raise ValueError(f"n_epochs and n_epochs_decay must be 0 or more, got {n_epochs} and {n_epochs_decay}")

    def factor(epoch: int) -> float:
        if n_epochs_decay == 0:
            return 1.0
        return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))

    return factor


def linear_decay_schedulers(optimizers: Sequence[torch.optim.Optimizer], n_epochs: int, n_epochs_decay: int) -> list:
    """One :class:`LambdaLR` per optimizer with :func:`linear_decay`.

    Returned from ``configure_optimizers``, Lightning saves and restores them with the checkpoint (the lambda itself
    is not saved: the config's ``n_epochs``/``n_epochs_decay`` apply on resume). Manual optimisation does not step
    them: the families call :func:`step_schedulers` in ``on_train_epoch_end``.
    """
    return [LambdaLR(opt, linear_decay(n_epochs, n_epochs_decay)) for opt in optimizers]


def step_schedulers(module: GANModule) -> None:
    """Step every LR scheduler once (end of an epoch) and log the learning rates that the next epoch uses."""
    schedulers = module.lr_schedulers()
    if schedulers is None:
        return
    schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
    for scheduler in schedulers:
        scheduler.step()
    for name, opt in zip(("lr_g", "lr_d"), module.optimizers()):
        module.log(f"train/{name}", float(opt.param_groups[0]["lr"]), on_step=False, on_epoch=True)


def warn_schedule_length(module: GANModule, n_epochs: int, n_epochs_decay: int) -> None:
    """Warn when ``max_epochs`` does not match the schedule (training would stop before or run past the decay)."""
    trainer = module.trainer
    total = n_epochs + n_epochs_decay
    if trainer.fast_dev_run or trainer.max_epochs in (None, -1) or n_epochs_decay == 0:
        return
    if trainer.max_epochs != total:
        rank_zero_warn(
            f"{type(module).__name__}: trainer.max_epochs={trainer.max_epochs} but the LR schedule is n_epochs="
            f"{n_epochs} + n_epochs_decay={n_epochs_decay} = {total} epochs; set max_epochs to {total} or change "
            "the schedule (model.init_args.n_epochs / n_epochs_decay) so the decay ends with training."
        )


@contextmanager
def _train_mode_without_side_effects(module: nn.Module, device: torch.device, seed: int) -> Iterator[None]:
    """Run ``module`` in train mode (dropout, batch statistics) with a fixed seed, leaving no trace.

    Buffers (batch-norm running statistics and counters, spectral-norm vectors) are restored afterwards and the
    global RNG streams are forked, so sampling in the middle of training changes neither the weights' statistics
    nor the random numbers that training draws next.
    """
    saved = [(buf, buf.detach().clone()) for buf in module.buffers()]
    was_training = module.training
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        module.train()
        try:
            yield
        finally:
            module.train(was_training)
            with torch.no_grad():
                for buf, value in saved:
                    buf.copy_(value)


@torch.no_grad()
def translate(generator: nn.Module, x: Tensor, mode: str = "eval", seed: int = _GRID_SEED) -> Tensor:
    """G(x) in [-1, 1] without gradients: ``mode="eval"`` (running statistics, no dropout, whole batch) or
    ``mode="train"`` (the pix2pix test protocol: one image at a time in train mode, fixed dropout seed, no side
    effects; see the module docstring)."""
    if mode == "eval":
        was_training = generator.training
        generator.eval()
        try:
            out = generator(x)
        finally:
            generator.train(was_training)
    elif mode == "train":
        with _train_mode_without_side_effects(generator, x.device, seed):
            out = torch.cat([generator(x[i : i + 1]) for i in range(x.shape[0])])
    else:
        raise ValueError(f"mode must be one of {', '.join(GENERATOR_MODES)}, got {mode!r}")
    return out.clamp(-1.0, 1.0)


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


class TranslationMetrics(nn.Module):
    """Validation metrics of paired translation against the target, through torchmetrics (epoch averages).

    ``l1``: mean absolute error in [-1, 1] (the scale of the L1 training loss); ``psnr`` (per image, then averaged)
    and ``ssim`` on images mapped to [0, 1] (data range 1); ``l1_input``: the L1 of the input itself against the
    target, the do-nothing baseline (only when input and target have the same channels).
    """

    def __init__(self, compare_input: bool) -> None:
        super().__init__()
        self.l1 = MeanAbsoluteError()
        self.psnr = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))
        self.ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
        self.l1_input = MeanAbsoluteError() if compare_input else None

    @torch.no_grad()
    def update(self, output: Tensor, target: Tensor, inputs: Tensor | None = None) -> None:
        output, target = output.float(), target.float()
        self.l1.update(output, target)
        self.psnr.update((output + 1) / 2, (target + 1) / 2)
        self.ssim.update((output + 1) / 2, (target + 1) / 2)
        if self.l1_input is not None and inputs is not None:
            self.l1_input.update(inputs.float(), target)

    def log(self, module: GANModule, batch_size: int, prefix: str = "val") -> None:
        kwargs = dict(on_step=False, on_epoch=True, batch_size=batch_size)
        module.log(f"{prefix}/l1", self.l1, prog_bar=True, **kwargs)
        module.log(f"{prefix}/psnr", self.psnr, **kwargs)
        module.log(f"{prefix}/ssim", self.ssim, **kwargs)
        if self.l1_input is not None:
            module.log(f"{prefix}/l1_input", self.l1_input, **kwargs)


def check_datamodule_shapes(module: GANModule, input_channels: int, family: str) -> None:
    """At setup: the datamodule's image shape and input channels must be the ones the model was built for."""
    dm = getattr(module.trainer, "datamodule", None) if module._trainer is not None else None
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


# ====================================================================== the paired families' validation, grids, predict
def paired_validation_step(module: Any, batch: dict[str, Any]) -> None:
    """Validation of a paired family on ``{"input", "target"}``: keep grid images (not from the sanity check, whose
    batches come again in the first validation), then log L1/PSNR/SSIM of ``module.translate(input)``.

    ``module`` has ``translate``, ``fixed_batch`` (:class:`FixedPairs`) and ``val_metrics``
    (:class:`TranslationMetrics`).
    """
    x, y = batch["input"], batch["target"]
    if not module.trainer.sanity_checking:
        module.fixed_batch.add(x, y, from_validation=True)
    module.val_metrics.update(module.translate(x), y, x)
    module.val_metrics.log(module, batch_size=x.shape[0])


def paired_grid(module: Any) -> Tensor:
    """Three rows of the fixed pairs: inputs (label maps in jet colours) | ``module.translate(inputs)`` | targets."""
    inputs, targets, filled = module.fixed_batch.get()
    outputs = module.translate(inputs[: max(filled, 1)])
    return grid_rows([inputs, outputs, targets], filled, module.fixed_batch.size)


def paired_predictions(module: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """Translated images named like their inputs (as PNG), written at the inputs' sizes by the ImageWriter."""
    return {
        "images": module.translate(batch["input"]),
        "names": [output_name(n) for n in batch["name"]],
        "sizes": predict_sizes(batch),
    }
