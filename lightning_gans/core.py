"""The thin base every family shares: step counters, loss logging, RNG state in checkpoints, the sampling contract.

It holds no training step, no optimizer and no stabilisation option. Each family (one file in
``lightning_gans/models``) builds its own networks and optimizers and writes its own ``training_step`` with manual
optimisation, reading top to bottom like its paper's algorithm; it calls ``self.count_d_step(**losses)`` after each
discriminator update and ``self.count_g_step(**losses)`` after each generator update.

**What ``trainer.max_steps`` means here.** With manual optimisation Lightning's ``global_step`` advances on every
``optimizer.step()``, of G and D alike: one batch with one D and one G step counts 2, and with ``n_critic=5`` six
optimizer steps make one G step. The counters ``d_steps`` and ``g_steps`` (logged as ``train/d_steps`` and
``train/g_steps``, saved in checkpoints) count each network's updates on their own; prefer ``max_epochs``.

**The sampling contract.** Families that draw noise (``latent_dim > 0``) get ``sample(n)``: the generator (the EMA
copy ``generator_ema`` when the family keeps one) under ``no_grad`` in *eval* mode, so batch norm uses its running
statistics and the same ``z`` always gives the same image; ``grid_images()`` (the fixed noise through ``sample``) and
``predict`` (noise seeded by the image writer). A family whose generator takes more than ``z`` overrides
``generate``. Image-to-image families draw no noise: they provide ``translate(x)`` and their own ``grid_images`` and
``predict_step``.

**Checkpoints** hold, besides weights, optimizer states and buffers (EMA weights, fixed noise): the step counters and
the RNG states, so ``fit --ckpt_path last`` continues where it stopped. The RNG state is restored when the checkpoint
is loaded for ``fit`` (before Lightning builds the data iterator), so a resumed run draws the same noise and data
order as an uninterrupted one. Under DDP each rank reseeds from the restored state plus its rank. Dataclass
arguments (a family's :class:`~lightning_gans.toolbox.Toolbox`) are stored in the checkpoint as plain dicts, so
``load_from_checkpoint(..., weights_only=True)`` reads them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans.checkpointing import (
    DivergenceError,
    adopt_optimizer_settings,
    check_finite_state,
    check_matches,
    rng_states,
    set_rng_states,
)
from lightning_gans.ema import BN_MODES, batch_statistics, kept_buffers, standing_statistics
from lightning_gans.loss_watch import LossWatch

_CKPT_KEY = "lightning_gans"


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    """What ``predict`` generates, set on the model by :class:`lightning_gans.callbacks.ImageWriter` at setup (its
    ``--writer.*`` options) and read by the families' ``predict_dataloader``.

    Args:
        num_samples: images to make (per prompt with text prompts; keyframes of a StyleGAN interpolation).
        label: the class of every image (class-conditional families); None: labels drawn at random.
        seed: seed of the noise.
        batch_size: images per predict batch.
        text: prompts (text-to-image families); None: none.
        interpolation_steps: with two prompts, images from the first to the second per noise vector (0 = off).
    """

    num_samples: int = 64
    label: int | None = None
    seed: int = 0
    batch_size: int = 64
    text: tuple[str, ...] | None = None
    interpolation_steps: int = 0

    def __post_init__(self) -> None:
        if self.num_samples < 1 or self.batch_size < 1:
            raise ValueError(
                f"num_samples and batch_size must be at least 1, got {self.num_samples}, {self.batch_size}"
            )
        if self.interpolation_steps < 0:
            raise ValueError(f"interpolation_steps must be 0 (off) or more, got {self.interpolation_steps}")
        if self.text is not None:
            object.__setattr__(self, "text", tuple(self.text))


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


class GANModule(L.LightningModule):
    """Base of all families (see the module docstring). Subclasses call ``super().__init__(...)`` first.

    Args:
        image_shape: (C, H, W) of the images the generator makes ((D,) for points); linked from the datamodule.
        num_classes: number of classes of the data (0 when unlabelled); linked from the datamodule.
        latent_dim: size of the noise vector z (0 for families that translate images instead).
        num_grid_samples: images in the fixed-noise sample grid.
    """

    #: True for class-conditional families: ``sample`` then draws labels when none are given.
    conditional: bool = False
    #: True for text-to-image families: ``predict`` takes prompts (the image writer's ``text``/``prompts_file``).
    takes_text: bool = False

    def __init__(
        self, *, image_shape: tuple[int, ...], num_classes: int = 0, latent_dim: int = 0, num_grid_samples: int = 64
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) not in (1, 3) or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) (or (D,) for points), got {image_shape}")
        if latent_dim < 0 or num_classes < 0:
            raise ValueError(f"latent_dim and num_classes must be 0 or more, got {latent_dim} and {num_classes}")
        if self.conditional and num_classes < 1:
            raise ValueError(
                f"{type(self).__name__} is class-conditional and needs num_classes >= 1; use a labelled datamodule "
                "(its num_classes is linked into the model) or set model.init_args.num_classes"
            )
        self.image_shape, self.num_classes, self.latent_dim = image_shape, num_classes, latent_dim
        self.generator_ema: nn.Module | None = None  # a family that keeps an EMA copy of G sets it (lightning_gans.ema)
        self.loss_watch = LossWatch()  # the losses since the last report, on the device (DivergenceGuard sets a bound)
        self.d_steps = 0
        self.g_steps = 0
        self.predict_request = PredictRequest()  # what `predict` makes; the image writer sets it at setup
        if latent_dim > 0:  # fixed noise for sample grids, seeded on its own so grids of two runs compare
            gen = torch.Generator().manual_seed(20140610)
            self.register_buffer("fixed_noise", torch.randn(num_grid_samples, latent_dim, generator=gen))
            labels = torch.arange(num_grid_samples) % max(num_classes, 1)
            self.register_buffer("fixed_labels", labels if self.conditional else labels[:0].clone())  # own storage

    def _set_hparams(self, hp: Any) -> None:
        """Lightning's, with the option groups (frozen dataclasses: ``Toolbox``, ``ContentLoss``, ...) kept as plain
        mappings, as loggers (which rebuild dataclasses field by field) and checkpoints (``weights_only`` loading)
        need them."""
        super()._set_hparams(hp)
        for key, value in self._hparams.items():
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                self._hparams[key] = dataclasses.asdict(value)

    def save_pretrained(self, folder: str, **card: Any) -> Any:
        """Write the pretrained folder of this model (safetensors weights, config.json, model card): see
        :func:`lightning_gans.pretrained.save_pretrained`; ``lightning_gans.from_pretrained(folder)`` loads it."""
        from lightning_gans.pretrained import save_pretrained

        return save_pretrained(self, folder, card=card)

    def attached_datamodule(self) -> Any:
        """The datamodule of the trainer this module is attached to (None without a trainer or a datamodule)."""
        return getattr(self._trainer, "datamodule", None) if self._trainer is not None else None

    # ------------------------------------------------------------------ counters and logging
    def count_d_step(self, **losses: Tensor) -> None:
        """Count one discriminator update; its losses are watched and logged under ``train/`` (see :meth:`report`)."""
        self.d_steps += 1
        self.report("discriminator", losses)

    def count_g_step(self, **losses: Tensor) -> None:
        """Count one generator update; its losses are watched and logged under ``train/`` (see :meth:`report`)."""
        self.g_steps += 1
        self.report("generator", losses)

    def report(self, network: str, losses: dict[str, Tensor]) -> None:
        """Record an update's losses on the device; on reporting batches, read them once, stop on a NaN, inf or
        exploding loss (:class:`DivergenceError`, naming the first such update) and log them.

        No host read on the other batches: a value read on the host waits for every queued GPU kernel. So a NaN can
        go unnoticed for at most ``trainer.log_every_n_steps`` batches (``--trainer.log_every_n_steps 1`` checks
        every batch), and no checkpoint is written in between (:meth:`on_save_checkpoint` reads first).
        """
        epoch = self.current_epoch if self._trainer is not None else 0
        self.loss_watch.record(network, losses, g_steps=self.g_steps, d_steps=self.d_steps, epoch=epoch)
        if not (self.reporting_batch() or self.loss_watch.due):
            return
        newest = self.check_losses()
        if self._trainer is None:
            return
        # Host copies (CPU tensors): Lightning keeps a logged tensor on its device and reads the progress-bar ones
        # after every batch, so logging device tensors would bring the reads back.
        for name, value in newest.items():
            self.log(f"train/{name}", torch.tensor(value), on_step=True, on_epoch=False, prog_bar=name.endswith("loss"))
        for name, count in (("d_steps", self.d_steps), ("g_steps", self.g_steps)):
            self.log(f"train/{name}", torch.tensor(float(count)), on_step=True, on_epoch=False)

    def check_losses(self) -> dict[str, float]:
        """Read the watched losses (one device-to-host copy; a collective under DDP, so every rank stops together):
        raise :class:`DivergenceError` if an update since the last read was NaN, inf or beyond the bound, else
        return the newest value of each loss."""
        try:
            newest, failure = self.loss_watch.read(), None
        except DivergenceError as err:
            newest, failure = {}, err
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            if trainer.strategy.reduce_boolean_decision(failure is not None, all=False) and failure is None:
                failure = DivergenceError(
                    f"training diverged on another process (G step {self.g_steps}, D step {self.d_steps}); "
                    "its error names the update"
                )
        if failure is not None:
            raise failure
        return newest

    def reporting_batch(self) -> bool:
        """True on the batches whose values reach the loggers: every ``log_every_n_steps`` (as Lightning counts them),
        the last batch of an epoch, the step that reaches ``max_steps``, a stopping run, ``fast_dev_run``; and
        always outside a Trainer's fit."""
        trainer = self._trainer
        if trainer is None or not trainer.training:
            return True
        if trainer.fast_dev_run or trainer._logger_connector.should_update_logs:
            return True
        epoch_loop = trainer.fit_loop.epoch_loop
        return bool(epoch_loop.batch_progress.is_last_batch) or 0 < trainer.max_steps <= trainer.global_step + 1

    # ------------------------------------------------------------------ the sampling contract
    def noise(self, n: int) -> Tensor:
        """``n`` latent vectors z ~ N(0, I) on the module's device."""
        return torch.randn(n, self.latent_dim, device=self.device)

    def sampling_generator(self, use_ema: bool = True) -> nn.Module:
        """The network that makes samples: the EMA copy when there is one (and ``use_ema``), else G itself."""
        if use_ema and self.generator_ema is not None:
            return self.generator_ema.module
        return unwrap(self.generator)

    def generate(self, generator: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Map noise (and labels) to images with ``generator``. Families with other inputs override this."""
        return generator(z) if labels is None else generator(z, labels)

    @torch.no_grad()
    def sample(
        self,
        n: int | None = None,
        *,
        z: Tensor | None = None,
        labels: Tensor | None = None,
        use_ema: bool = True,
        bn: str | None = None,
    ) -> Tensor:
        """Generate images in [-1, 1] on the module's device (eval mode, no grad, EMA generator when on).

        Give either ``n`` (fresh noise) or ``z``. Conditional families without ``labels`` draw uniform labels for
        fresh noise, and use the labels 0, 1, ..., K-1, 0, ... for a given ``z`` (so a fixed z is deterministic).
        ``bn`` chooses the batch-norm statistics (:mod:`lightning_gans.ema`): ``"running"`` (the live generator's
        default), ``"standing"`` (recomputed for the sampling weights; the EMA generator's default, refreshed after
        every EMA update) or ``"batch"`` (each sampled batch's own statistics).
        """
        if self.latent_dim == 0:
            raise TypeError(f"{type(self).__name__} draws no noise (latent_dim 0): it translates images, use translate")
        if z is None and n is None:
            raise ValueError("sample() needs n (how many) or z (the noise)")
        ema = use_ema and self.generator_ema is not None
        bn = bn or ("standing" if ema else "running")
        if bn not in BN_MODES:
            raise ValueError(f"bn must be one of {', '.join(BN_MODES)}, got {bn!r}")
        given_z, z = z is not None, (self.noise(n) if z is None else z.to(self.device))
        if self.conditional:
            if labels is None and given_z:  # the same z always gives the same images: labels 0, 1, ..., K-1, 0, ...
                labels = torch.arange(len(z), device=self.device) % self.num_classes
            elif labels is None:
                labels = torch.randint(self.num_classes, (len(z),), device=self.device)
            labels = labels.to(self.device)
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f"labels must be in [0, {self.num_classes}), got {labels.min()}..{labels.max()}")
        generator = self.sampling_generator(use_ema)
        was_training = generator.training
        generator.eval()
        with contextlib.ExitStack() as stack:
            if bn == "standing" and ema:
                self.refresh_ema_statistics()
            elif bn == "standing":  # the live generator's own buffers are left as they are
                stack.enter_context(kept_buffers(generator))
                self.standing_statistics(generator)
            elif bn == "batch":
                stack.enter_context(batch_statistics(generator))
            try:
                images = self.generate(generator, z, labels if self.conditional else None)
            finally:
                generator.train(was_training)
        return images.clamp(-1.0, 1.0)

    def standing_statistics(self, generator: nn.Module, batches: int = 16, batch_size: int = 64) -> None:
        """Batch-norm statistics for ``generator``'s current weights, from ``batches`` batches of noise drawn from a
        fixed seed (the training RNG is not touched, so runs stay reproducible and resumable)."""
        rng = torch.Generator(device=self.device).manual_seed(20190228)

        def forward() -> None:
            z = torch.randn(batch_size, self.latent_dim, generator=rng, device=self.device)
            labels = torch.randint(max(self.num_classes, 1), (batch_size,), generator=rng, device=self.device)
            self.generate(generator, z, labels if self.conditional else None)

        standing_statistics(generator, forward, batches)

    def refresh_ema_statistics(self) -> None:
        """Recompute the EMA generator's batch-norm statistics if an update (or a load) made them stale."""
        if self.generator_ema is not None and self.generator_ema.stale_statistics:
            self.standing_statistics(self.generator_ema.module)
            self.generator_ema.stale_statistics = False

    def grid_images(self) -> Tensor:
        """Images for the sample-grid callback: the fixed noise (and fixed labels) through ``sample``."""
        return self.sample(z=self.fixed_noise, labels=self.fixed_labels if self.conditional else None)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Nothing by default: evaluation (sample grids, FID, ...) lives in callbacks that read the batches."""
        return None

    def on_validation_start(self) -> None:
        if self.trainer.state.fn == "fit":
            self.check_losses()  # evaluate no diverged model: a NaN since the last report stops the run here

    def predict_dataloader(self) -> DataLoader:
        """Noise for ``predict``: ``predict_request`` (set by the image-writer callback) says how many, which label."""
        req, name = self.predict_request, type(self).__name__
        if self.latent_dim == 0:
            raise RuntimeError(
                f"{name} translates images: predict needs input images from a datamodule (e.g. --data "
                "datamodules.paired.PairedImageDataModule with --data.init_args.predict_dir PATH) or dataloaders"
            )
        if req.text:
            raise ValueError(f"{name} does not take text prompts; the text-to-image families do (GANINTCLS, DFGAN)")
        n, gen = req.num_samples, torch.Generator().manual_seed(req.seed)
        z = torch.randn(n, self.latent_dim, generator=gen)
        if req.label is not None:
            if not self.conditional:
                raise ValueError(f"{name} is not class-conditional: it cannot generate a chosen label")
            if not 0 <= req.label < self.num_classes:
                raise ValueError(f"label must be in [0, {self.num_classes}), got {req.label}")
            labels = torch.full((n,), req.label, dtype=torch.long)
        else:
            labels = torch.randint(max(self.num_classes, 1), (n,), generator=gen)
        return DataLoader(TensorDataset(torch.arange(n), z, labels), batch_size=req.batch_size)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Generated images with their file names, for :class:`lightning_gans.callbacks.ImageWriter`."""
        index, z, labels = batch
        images = self.sample(z=z, labels=labels if self.conditional else None)
        return {"images": images, "names": [f"{int(i):06d}.png" for i in index]}

    # ------------------------------------------------------------------ checkpoint & RNG
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.check_losses()  # a NaN since the last report stops here, naming its step, before anything is written
        check_finite_state(checkpoint.get("state_dict", {}), self.g_steps)  # never write a diverged model
        checkpoint[_CKPT_KEY] = {
            "family": type(self).__name__,
            "d_steps": self.d_steps,
            "g_steps": self.g_steps,
            "rng_states": rng_states(),
        }
        trainer = self._trainer
        if trainer is not None:  # the last validation's metrics, for a pretrained folder's model card
            checkpoint[_CKPT_KEY]["metrics"] = {
                k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/") and v.numel() == 1
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(_CKPT_KEY)
        if state is None:
            return
        check_matches(self, checkpoint, state.get("family"))  # another family or other shapes: a clear error
        self.d_steps, self.g_steps = int(state["d_steps"]), int(state["g_steps"])
        trainer = self._trainer
        if trainer is not None and trainer.state.fn == "fit":
            # Resuming a fit: the configured learning rates win over the restored optimizer states, and the RNG is
            # restored here, before Lightning builds the data iterator. Neither in load_from_checkpoint.
            changes = adopt_optimizer_settings(self.configure_optimizers(), checkpoint)
            if changes:
                rank_zero_info(f"{type(self).__name__}: changed on resume: {'; '.join(changes)}")
            if state.get("rng_states") is not None:
                set_rng_states(state["rng_states"])

    def on_train_start(self) -> None:
        if self.trainer.world_size > 1:
            # Ranks seeded alike would draw identical noise: offset each rank's stream by its rank.
            base = int(torch.randint(0, 2**31 - 1, ()).item())
            torch.manual_seed(base + self.trainer.global_rank)
            random.seed(base + self.trainer.global_rank)  # host-side draws (style mixing, image pools)
