"""What the image-to-image families (Pix2Pix, CycleGAN, GauGAN) share: plain functions and small modules.

- :func:`translate`: run a generator in ``"eval"`` mode or in the paper's ``"train"`` test mode (batch 1, fixed
  dropout seed, buffers and training RNG untouched);
- :class:`TranslationMetrics`: ``val/l1``, ``val/psnr``, ``val/ssim`` (and ``val/l1_input``) through torchmetrics;
- :func:`linear_decay` and its schedulers: the official constant-then-linear learning-rate rule, resumable;
- :func:`paired_validation_step`, :func:`paired_grid` and :func:`paired_predictions`: validation, grids and predict
  of the paired families (Pix2Pix, GauGAN), through the family's own ``translate``; what they need from a family is
  :class:`PairedFamily` (checked over the families by tests/test_contracts.py).

What every input-to-output family shares (the grid's :class:`~lightning_gans.pairs.FixedPairs`, grid rows, output
names, the datamodule check) is in :mod:`lightning_gans.pairs`, which the super-resolution families use too.

The families call these from visible one-line Lightning hooks. Nothing here is a base class or a mixin: each family
file keeps its own networks, losses, training step and hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanAbsoluteError
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from lightning_gans.core import GANModule
from lightning_gans.pairs import FixedPairs, grid_rows, output_name, predict_sizes

GENERATOR_MODES = ("train", "eval")
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

    def log(self, module: Any, batch_size: int, prefix: str = "val") -> None:
        kwargs = dict(on_step=False, on_epoch=True, batch_size=batch_size)
        module.log(f"{prefix}/l1", self.l1, prog_bar=True, **kwargs)
        module.log(f"{prefix}/psnr", self.psnr, **kwargs)
        module.log(f"{prefix}/ssim", self.ssim, **kwargs)
        if self.l1_input is not None:
            module.log(f"{prefix}/l1_input", self.l1_input, **kwargs)


# ====================================================================== the paired families' validation, grids, predict
@runtime_checkable
class PairedFamily(Protocol):
    """What :func:`paired_validation_step`, :func:`paired_grid` and :func:`paired_predictions` use of a family (Pix2Pix,
    GauGAN): its grid pairs, its validation metrics, its ``translate``, and Lightning's ``trainer`` and ``log``."""

    fixed_batch: FixedPairs
    val_metrics: TranslationMetrics
    trainer: Any

    def translate(self, x: Tensor) -> Tensor: ...

    def log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None: ...


def paired_validation_step(module: PairedFamily, batch: dict[str, Any]) -> None:
    """Validation of a paired family on ``{"input", "target"}``: keep grid images (not from the sanity check, whose
    batches come again in the first validation), then log L1/PSNR/SSIM of ``module.translate(input)``."""
    x, y = batch["input"], batch["target"]
    if not module.trainer.sanity_checking:
        module.fixed_batch.add(x, y, from_validation=True)
    module.val_metrics.update(module.translate(x), y, x)
    module.val_metrics.log(module, batch_size=x.shape[0])


def paired_grid(module: PairedFamily) -> Tensor:
    """Three rows of the fixed pairs: inputs (label maps in jet colours) | ``module.translate(inputs)`` | targets."""
    inputs, targets, filled = module.fixed_batch.get()
    outputs = module.translate(inputs[: max(filled, 1)])
    return grid_rows([inputs, outputs, targets], filled, module.fixed_batch.size)


def paired_predictions(module: PairedFamily, batch: dict[str, Any]) -> dict[str, Any]:
    """Translated images named like their inputs (as PNG), written at the inputs' sizes by the ImageWriter."""
    return {
        "images": module.translate(batch["input"]),
        "names": [output_name(n) for n in batch["name"]],
        "sizes": predict_sizes(batch),
    }
