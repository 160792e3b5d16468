"""Evaluation metrics for generative models: FID, KID, IS (torchmetrics), precision/recall, mode coverage.

- :mod:`.extractors` -- feature extractors by name (``inception``, ``inception_local``, ``mnist_classifier``,
  ``identity``), their input conversion and resize conventions; :mod:`.extractor_base` -- their interface.
- :mod:`.evaluator` -- :class:`GenerativeMetrics`: all feature metrics from one extractor pass, DDP-synchronised.
- :mod:`.precision_recall` -- Kynkäänniemi et al. 2019.
- :mod:`.coverage` -- class coverage, 2-D mixture modes, scatter plots without matplotlib.
- :mod:`.cache` -- the on-disk cache of real features.
- :mod:`.real` -- the real features of a run: the cache key of the validation data, extraction, DDP gathering.
- :mod:`.selection` -- which metrics a configuration computes, and its errors before anything is generated.
- :mod:`.mnist_classifier` -- the MNIST classifier: network, checkpoint and the ``mnist_classifier`` extractor.
- :mod:`.classifier` -- trains it (``python -m lightning_gans.metrics.classifier``); imported lazily.
- :mod:`.text2image` -- R-precision and caption faithfulness of text-to-image models
  (``benchmarks/text2image_eval.py``); imported on use.

The Lightning side is :class:`lightning_gans.callbacks.evaluation.EvaluationCallback`.
"""

from lightning_gans.metrics.cache import CACHE_ENV, RealFeatureCache, cache_key, default_cache_dir
from lightning_gans.metrics.coverage import ClassCoverage, MixtureModes, grid25_centers, ring8_centers, scatter_image
from lightning_gans.metrics.evaluator import FEATURE_METRICS, GenerativeMetrics
from lightning_gans.metrics.extractor_base import ExtractorError, FeatureExtractor
from lightning_gans.metrics.extractors import (
    EXTRACTORS,
    IdentityExtractor,
    LocalInception,
    TorchmetricsInception,
    build_extractor,
    default_local_inception_path,
    local_inception_to_torch_fidelity,
    resize_bilinear_tf1,
)
from lightning_gans.metrics.mnist_classifier import (
    ClassifierExtractor,
    MNISTClassifier,
    default_classifier_path,
    load_classifier,
)
from lightning_gans.metrics.precision_recall import PrecisionRecall, knn_precision_recall


def __getattr__(name: str):
    # The training module runs as `python -m lightning_gans.metrics.classifier`; importing it here eagerly
    # would make that command warn that the module was imported twice.
    if name == "train_classifier":
        from lightning_gans.metrics.classifier import train_classifier

        return train_classifier
    raise AttributeError(f"module 'lightning_gans.metrics' has no attribute {name!r}")


__all__ = [
    "CACHE_ENV",
    "EXTRACTORS",
    "FEATURE_METRICS",
    "ClassCoverage",
    "ClassifierExtractor",
    "ExtractorError",
    "FeatureExtractor",
    "GenerativeMetrics",
    "IdentityExtractor",
    "LocalInception",
    "MNISTClassifier",
    "MixtureModes",
    "PrecisionRecall",
    "RealFeatureCache",
    "TorchmetricsInception",
    "build_extractor",
    "cache_key",
    "default_cache_dir",
    "default_classifier_path",
    "default_local_inception_path",
    "grid25_centers",
    "knn_precision_recall",
    "load_classifier",
    "local_inception_to_torch_fidelity",
    "resize_bilinear_tf1",
    "ring8_centers",
    "scatter_image",
    "train_classifier",
]
