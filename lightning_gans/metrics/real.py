"""The real half of the feature metrics: which real images, their features, and where those come from.

Real features depend only on the validation data and the extractor, so a run computes them once -- or loads them
from the disk cache (:mod:`.cache`) -- and keeps them in the metrics for all its evaluations. :class:`RealFeatures`
does that for the evaluation callback, in three steps of a validation epoch:

1. :meth:`RealFeatures.start`: the cache key names the data (:func:`describe_validation_data`: datamodule class and
   settings, dataset classes and transforms, length, the validation limit, digests of the first and last image),
   the real count and the extractor. Rank 0 looks the key up and every process learns whether it hit; on a hit rank
   0 feeds the cached features into the metrics and that is all.
2. On a miss, :meth:`RealFeatures.add` runs each validation batch's real images (``batch[image_key]``, the first
   ``num_real_samples``; default all) through the extractor. Under DDP each process sees its shard.
3. :meth:`RealFeatures.finish` gathers the shards in the sampler's order (:func:`gather_in_sampler_order`), so the
   real set equals the single-process one with DistributedSampler's padding removed; rank 0 feeds it into the
   metrics and saves it in the cache.

:func:`expected_real_count` predicts the real count from the datamodule before validation runs, so that a set too
small for FID fails at setup instead of after the first epoch.

The ``trainer`` arguments are Lightning Trainers, used only for their attributes (``datamodule``,
``val_dataloaders``, ``limit_val_batches``, ``world_size``, ``is_global_zero``, ``strategy.broadcast``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchmetrics.utilities.distributed import gather_all_tensors

from lightning_gans.metrics.cache import RealFeatureCache, _jsonable, cache_key, tensor_digest
from lightning_gans.metrics.evaluator import GenerativeMetrics
from lightning_gans.metrics.extractor_base import FeatureExtractor

_LOADER_SETTINGS = {
    "batch_size",
    "num_workers",
    "pin_memory",
    "persistent_workers",
    "prepare_data_per_node",
    "allow_zero_length_dataloader_with_multiple_devices",
    "trainer",
}


def pick_from_batch(batch: Any, key: int | str) -> Any:
    """``batch[key]`` for tuples/lists/dicts, the batch itself when it is a tensor."""
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, dict):
        return batch[key]
    if isinstance(batch, (tuple, list)):
        return batch[int(key)]
    raise TypeError(f"cannot take images from a batch of type {type(batch).__name__}; set `image_key`")


# ------------------------------------------------------------------------------------------- naming the real data


def _settings(obj: Any) -> dict[str, Any]:
    """The public, plain settings of a datamodule or dataset (for cache keys), transforms by their repr."""
    out: dict[str, Any] = {}
    hparams = getattr(obj, "hparams", None)
    if hparams:
        out.update({k: v for k, v in dict(hparams).items() if k not in _LOADER_SETTINGS})
    for name, value in vars(obj).items():
        if name.startswith("_") or name in _LOADER_SETTINGS or value is None:
            continue  # None: also datasets not set up yet (``test_set``), which must not change the key
        if "transform" in name.lower():
            out[name] = repr(value)
        elif value is None or isinstance(value, (bool, int, float, str, Path, tuple, list)):
            if isinstance(value, (tuple, list)) and len(value) > 32:
                continue
            out[name] = value
    return _jsonable(out)


def _dataset_chain(dataset: Any, depth: int = 4) -> list[Any]:
    """The dataset and the ones it wraps (``Subset.dataset`` ...), outermost first, at most ``depth``."""
    chain = []
    while dataset is not None and depth > 0:
        chain.append(dataset)
        dataset = getattr(dataset, "dataset", None)
        depth -= 1
    return chain


def describe_validation_data(trainer: Any, image_key: int | str = 0) -> tuple[dict[str, Any], int | None]:
    """The parts of a real-feature cache key for the validation data, and the dataset length (``None``: unknown).

    Datamodule class and settings, dataset classes and transforms, length, the validation limit when one is set,
    and digests of the first and last image (so changed content under an unchanged configuration is noticed).
    """
    parts: dict[str, Any] = {"split": "val"}
    dm = getattr(trainer, "datamodule", None)
    if dm is not None:
        parts["datamodule"] = f"{type(dm).__module__}.{type(dm).__qualname__}"
        parts["datamodule_settings"] = _settings(dm)
    loaders = trainer.val_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    dataset = getattr(loader, "dataset", None)
    length = None
    if dataset is not None:
        keep = lambda k: "transform" in k or k in ("root", "split", "train")  # noqa: E731
        parts["datasets"] = [
            {
                "class": f"{type(d).__module__}.{type(d).__qualname__}",
                **{k: v for k, v in _settings(d).items() if keep(k)},
            }
            for d in _dataset_chain(dataset)
        ]
        try:
            length = len(dataset)
        except TypeError:
            length = None
        parts["length"] = length
        if length:
            try:
                parts["probe"] = [
                    tensor_digest(pick_from_batch(dataset[i], image_key)) for i in sorted({0, length - 1})
                ]
            except Exception as err:  # an unusual dataset: the settings alone key it
                parts["probe"] = f"unavailable ({type(err).__name__})"
    limit = trainer.limit_val_batches
    if limit not in (1.0, None):
        parts["limit_val_batches"] = [limit, trainer.world_size]
    return parts, length


def expected_real_count(trainer: Any, num_real_samples: int | None) -> int | None:
    """How many real images validation will give, from the datamodule's set-up validation dataset (``None`` when it
    cannot be known before the loader runs)."""
    limit = trainer.limit_val_batches
    if not limit or trainer.fast_dev_run:  # no validation, or no evaluation (the callback skips fast_dev_run)
        return None
    datasets = getattr(trainer.datamodule, "datasets", None)
    try:
        count = len(datasets["val"])
    except (TypeError, KeyError):  # no datamodule, no datasets dict, no "val", or a dataset without a length
        return None
    if isinstance(limit, float) and limit < 1.0:
        count = int(count * limit)
    elif isinstance(limit, int):
        batch_size = getattr(trainer.datamodule, "batch_size", None)
        if not isinstance(batch_size, int):
            return None
        count = min(count, limit * batch_size)
    return count if num_real_samples is None else min(count, num_real_samples)


# ----------------------------------------------------------------------------------------- features across ranks


def gather_in_sampler_order(t: Tensor, device: torch.device) -> Tensor:
    """Every process's rows of ``t`` (collective), in dataset order when DistributedSampler dealt the items.

    DistributedSampler gives rank ``r`` of ``W`` the items ``r, r + W, r + 2W, ...`` (shards of equal length), so
    interleaving the shards restores the order; shards of unequal length (another sampler) are concatenated.
    """
    parts = [p.cpu() for p in gather_all_tensors(t.to(device))]
    if len({len(p) for p in parts}) == 1:
        return torch.stack(parts, dim=1).reshape(-1, t.shape[1])
    return torch.cat(parts)


def feed_real(
    metrics: GenerativeMetrics, feats: Tensor, logits: Tensor | None, device: torch.device, chunk: int = 4096
) -> int:
    """Add real features (and logits) to ``metrics`` on ``device``, ``chunk`` rows at a time; returns the count."""
    for i in range(0, len(feats), chunk):
        part = None if logits is None else logits[i : i + chunk].to(device)
        metrics.update_real(feats[i : i + chunk].to(device), part)
    return len(feats)


class RealFeatures:
    """The real features of the metrics, once per run: from the disk cache or the validation batches (see above).

    Args:
        cache: the disk cache; ``None``: no caching.
        num_real_samples: real images used (the first ones of the validation loader); ``None``: all of them.
        image_key: where the images are in a validation batch (index of a tuple, key of a dict).
        cache_key: an extra string in the cache key (e.g. a dataset version the settings do not show).

    Each run calls :meth:`reset`; each validation epoch :meth:`start`, then, while :attr:`collecting`, :meth:`add`
    for every validation batch and :meth:`finish` at its end. ``count`` is the real count in the metrics (all
    processes); ``extracted`` (real images this process ran through the extractor), ``cache_hits`` and
    ``cache_saves`` add up over the object's life, for tests and benchmarks.
    """

    def __init__(
        self,
        cache: RealFeatureCache | None,
        num_real_samples: int | None = None,
        image_key: int | str = 0,
        cache_key: str | None = None,
    ) -> None:
        self.cache = cache
        self.num_real_samples = num_real_samples
        self.image_key = image_key
        self.cache_key = cache_key
        self.ready = False  # the metrics hold the real features (computed or loaded), or need none
        self.collecting = False
        self.count = 0
        self.extracted = 0
        self.cache_hits = 0
        self.cache_saves = 0
        self._parts: dict[str, Any] | None = None  # this run's cache key parts
        self._length: int | None = None  # the validation dataset's length (None: unknown)
        self._features: list[Tensor] = []
        self._logits: list[Tensor] = []
        self._seen = 0  # real images this process took in this epoch

    def reset(self, needed: bool) -> None:
        """A new run: the features come again, from the disk cache or the data, when the metrics need them.

        Never from another run's features in memory: the same callback object may meet other data.
        """
        self.ready = not needed
        self.count = 0

    def cache_parts(self, trainer: Any, extractor: FeatureExtractor) -> dict[str, Any]:
        """The cache key parts of this run's real features (and, as a side effect, the dataset length)."""
        parts, self._length = describe_validation_data(trainer, self.image_key)
        parts["num_real_samples"] = self.num_real_samples
        parts["image_key"] = self.image_key
        parts["extractor"] = extractor.cache_id()
        if self.cache_key:
            parts["user_key"] = self.cache_key
        return parts

    def start(self, trainer: Any, metrics: GenerativeMetrics, device: torch.device) -> None:
        """Epoch start: nothing when the features are in; else load them from the cache, or start collecting."""
        self.collecting = False
        if self.ready:
            return
        self._parts = self.cache_parts(trainer, metrics.extractor)
        entry = None
        if self.cache is not None and trainer.is_global_zero:
            entry = self.cache.load(cache_key(self._parts))
        hit = bool(trainer.strategy.broadcast(entry is not None, src=0))
        if hit:
            count = 0
            if trainer.is_global_zero:
                count = feed_real(metrics, entry["features"], entry["logits"], device)
                self.cache_hits += 1
            self.count = int(trainer.strategy.broadcast(count, src=0))
            self.ready = True
        else:
            self.collecting = True
            self._features, self._logits, self._seen = [], [], 0

    def add(self, batch: Any, metrics: GenerativeMetrics, world_size: int) -> None:
        """Run this process's real images of a validation batch through the extractor, up to its share of
        ``num_real_samples`` (``ceil(num_real_samples / world_size)``; the excess is cut after gathering)."""
        cap = None if self.num_real_samples is None else math.ceil(self.num_real_samples / world_size)
        images = pick_from_batch(batch, self.image_key)
        if cap is not None:
            images = images[: max(0, cap - self._seen)]
        if len(images):
            feats, logits = metrics.features(images)
            self._features.append(feats.cpu())
            if logits is not None:
                self._logits.append(logits.cpu())
            self._seen += len(images)
            self.extracted += len(images)

    def finish(self, trainer: Any, metrics: GenerativeMetrics, device: torch.device) -> None:
        """Epoch end: gather the collected features of all processes, feed them in on rank 0 and cache them."""
        feats, logits = self._gather(trainer, metrics.extractor, device)
        if trainer.is_global_zero:
            feed_real(metrics, feats, logits, device)
            if self.cache is not None and self._parts is not None and len(feats) >= 2:
                self.cache.save(cache_key(self._parts), feats, logits, self._parts)
                self.cache_saves += 1
        self.count = len(feats)
        self.collecting = False
        self.ready = True

    def _gather(self, trainer: Any, extractor: FeatureExtractor, device: torch.device) -> tuple[Tensor, Tensor | None]:
        """All processes' real features in the sampler's global order, DDP padding removed, capped."""
        d, k = extractor.num_features, extractor.num_classes
        feats = torch.cat(self._features) if self._features else torch.zeros(0, d)
        logits = (torch.cat(self._logits) if self._logits else torch.zeros(0, k)) if k else None
        self._features, self._logits = [], []
        if trainer.world_size > 1:
            feats = gather_in_sampler_order(feats, device)
            logits = gather_in_sampler_order(logits, device) if logits is not None else None
            if self._length is not None and trainer.limit_val_batches in (1.0, None) and len(feats) > self._length:
                feats = feats[: self._length]  # the sampler pads with repeats to equal shards
                logits = logits[: self._length] if logits is not None else None
        if self.num_real_samples is not None:
            feats = feats[: self.num_real_samples]
            logits = logits[: self.num_real_samples] if logits is not None else None
        return feats, logits


__all__ = [
    "RealFeatures",
    "describe_validation_data",
    "expected_real_count",
    "feed_real",
    "gather_in_sampler_order",
    "pick_from_batch",
]
