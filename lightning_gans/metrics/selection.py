"""Which metrics an evaluation computes, and the configuration errors found before anything is generated.

Two moments. At construction only names and counts are known: :func:`requested_metrics` refuses unknown metric
names and IS or class coverage with a features-only extractor; :func:`check_request` a missing extractor file and,
for extractors of fixed width, FID sample counts below the feature dimension. At setup the data is known:
:func:`choose_metrics` resolves ``"auto"`` and refuses image extractors on 2-D points, :func:`mixture_modes` needs
a mixture datamodule, :func:`load_extractor` sizes the identity extractor from the data shape, and
:func:`check_fid_counts` checks the counts again against the loaded extractor (and the real count the datamodule
will give). Each error message says how to fix the configuration.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn

from lightning_gans.metrics.coverage import MixtureModes
from lightning_gans.metrics.evaluator import FEATURE_METRICS, check_metrics, check_sample_count
from lightning_gans.metrics.extractor_base import FeatureExtractor
from lightning_gans.metrics.extractors import build_extractor, extractor_spec, resolve_extractor_file

MIXTURE_METRICS = ("modes",)
ALL_METRICS = FEATURE_METRICS + MIXTURE_METRICS
REAL_METRICS = ("fid", "kid", "precision_recall", "class_coverage")  # the metrics that compare with real features


def requested_metrics(metrics: str | Sequence[str], extractor: str) -> tuple[str, ...] | None:
    """The metrics asked for, in order and without repeats; ``None`` for ``"auto"`` (see :func:`choose_metrics`).

    Refuses an unknown extractor, unknown metric names, and IS or class coverage from an extractor without logits.
    """
    spec = extractor_spec(extractor)
    if isinstance(metrics, str):
        if metrics == "auto":
            return None
        metrics = [metrics]
    metrics = tuple(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; choose from {list(ALL_METRICS)} or 'auto'.")
    check_metrics([m for m in metrics if m in FEATURE_METRICS], extractor, spec.num_classes)
    return metrics


def check_request(
    requested: tuple[str, ...] | None,
    extractor: str,
    extractor_path: str | os.PathLike | None,
    num_samples: int | None,
    num_real_samples: int | None,
) -> None:
    """What the names alone tell: the extractor's file is missing (when a metric needs the extractor), or FID is
    requested from an extractor of known width with fewer samples than features (``None``: a count not given)."""
    if requested is None or any(m in FEATURE_METRICS for m in requested):
        resolve_extractor_file(extractor, extractor_path)  # a missing file fails here, not after training
    num_features = extractor_spec(extractor).num_features
    if requested is not None and "fid" in requested and num_features:
        check_fid_counts({"num_samples": num_samples, "num_real_samples": num_real_samples}, num_features, extractor)


def check_fid_counts(counts: Mapping[str, int | None], num_features: int, extractor: str) -> None:
    """:func:`~lightning_gans.metrics.evaluator.check_sample_count` for each known count (``None``: unknown)."""
    for what, count in counts.items():
        if count is not None:
            check_sample_count(what, count, num_features, extractor)


def check_counts(
    metrics: Sequence[str], real: int | None, generated: int | None, kid_subset_size: int, pr_k: int
) -> None:
    """What the counts the data will give (``None``: unknown) mean for the metrics: an error where a metric cannot be
    computed (fewer than 2 real images, an empty validation split; precision/recall with no more samples than its
    k), a warning where KID runs on smaller subsets than ``kid_subset_size`` (training goes on). The messages name the
    evaluation callback's options (``metric_options.pr_k``, ``metric_options.kid_subset_size``)."""
    compared = [m for m in metrics if m in ("fid", "kid", "precision_recall")]
    if compared and real is not None and real < 2:
        raise ValueError(
            f"the validation data gives {real} real image(s), but {', '.join(compared)} compare the generated images "
            "with at least 2 real ones: give the datamodule a validation split (its val_size or val_fraction), or "
            "remove the evaluation from trainer.callbacks"
        )
    counts = {"real images (the validation set, num_real_samples)": real, "generated samples (num_samples)": generated}
    if "precision_recall" in metrics:
        for what, n in counts.items():
            if n is not None and n <= pr_k:
                raise ValueError(
                    f"precision/recall with metric_options.pr_k={pr_k} needs more than {pr_k} {what}, got {n}: lower "
                    "metric_options.pr_k, use more, or drop 'precision_recall' from metrics"
                )
    known = {what: n for what, n in counts.items() if n is not None}
    if "kid" in metrics and known and min(known.values()) < kid_subset_size:
        what, n = min(known.items(), key=lambda item: item[1])
        rank_zero_warn(
            f"KID's subsets shrink from metric_options.kid_subset_size={kid_subset_size} to the {n} {what}: its values "
            f"are noisy at that size and not comparable with runs at {kid_subset_size}, and every evaluation still "
            f"generates {generated if generated is not None else 'as many'} samples. Training goes on; give more "
            f"images, set metric_options.kid_subset_size to at most {n} to make it explicit, or lower num_samples"
        )


def choose_metrics(requested: tuple[str, ...] | None, shape: Sequence[int] | None, extractor: str) -> tuple[str, ...]:
    """The metrics of a run on data of ``shape`` (``None``: unknown).

    ``requested`` when given; for ``"auto"`` (``None``) ``modes`` on 2-D points, and on images FID, KID and
    precision/recall, plus IS and class coverage when the extractor has logits. Feature metrics on points need the
    ``identity`` extractor.
    """
    points = shape is not None and len(tuple(shape)) == 1
    if requested is None:
        if points:
            metrics: tuple[str, ...] = MIXTURE_METRICS
        else:
            metrics = ("fid", "kid", "precision_recall")
            if extractor_spec(extractor).num_classes:
                metrics += ("is", "class_coverage")
    else:
        metrics = requested
    if points and any(m in FEATURE_METRICS for m in metrics) and extractor != "identity":
        raise ValueError(
            f"The data are {tuple(shape)} points, not images: extractor {extractor!r} cannot take them. "
            "Use feature_extractor.name 'identity' for fid/kid/precision_recall on points, or metrics ['modes']."
        )
    return metrics


def mixture_modes(datamodule: Any, num_std: float, threshold: float) -> MixtureModes:
    """Metric ``modes`` for the mixture of ``datamodule``, which must give ``mode_centers`` and ``mode_std``."""
    if datamodule is None or not hasattr(datamodule, "mode_centers") or not hasattr(datamodule, "mode_std"):
        raise ValueError(
            "metric 'modes' needs a datamodule with `mode_centers` and `mode_std` (such as "
            "datamodules.GaussianMixtureDataModule); remove 'modes' from `metrics` for other data."
        )
    centers, std = torch.as_tensor(datamodule.mode_centers), float(datamodule.mode_std)
    return MixtureModes(centers, std, num_std=num_std, threshold=threshold)


def load_extractor(
    name: str, path: str | os.PathLike | None, resize: str, shape: Sequence[int] | None
) -> FeatureExtractor:
    """The named extractor (see :func:`~lightning_gans.metrics.extractors.build_extractor`); ``identity`` takes its
    width from the data ``shape``."""
    extractor = build_extractor(name, path, resize)
    if name == "identity":
        if shape is None:
            raise ValueError("extractor 'identity' needs the data shape (pl_module.image_shape)")
        extractor.num_features = math.prod(tuple(shape))
    return extractor


__all__ = [
    "ALL_METRICS",
    "MIXTURE_METRICS",
    "REAL_METRICS",
    "check_fid_counts",
    "check_request",
    "choose_metrics",
    "load_extractor",
    "mixture_modes",
    "requested_metrics",
]
