"""The project's MNIST classifier as a feature extractor: the network, its checkpoint, extractor ``mnist_classifier``.

Inception at 299x299 costs ~6 GFLOPs an image; this CNN costs ~6 MFLOPs, so 10,000 samples take seconds. Its
penultimate layer (128 features, before the ReLU) gives an "MNIST FID" in the manner of FID (same formula, other
features: the numbers are not comparable with Inception FIDs or with other papers' domain classifiers), its 10 logits
give an Inception-Score analogue (between 1 and 10) and the histogram of predicted digits gives class coverage.

The checkpoint: ``$LIGHTNING_GANS_CACHE/mnist_classifier.pt`` (else ``~/.cache/lightning_gans/mnist_classifier.pt``)
when it exists, else the one shipped with the package (99.40% test accuracy, trained with Outlier Exposure). Training it
is :mod:`lightning_gans.metrics.classifier` (``python -m lightning_gans.metrics.classifier``), which imports this
module, never the other way round.

Input convention: images in [-1, 1], 1 x 28 x 28; the extractor quantises to 8 bits, averages RGB to grey and
resizes other sizes to 28x28 (bilinear, antialiased).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gans.metrics.cache import default_cache_dir, file_digest
from lightning_gans.metrics.extractor_base import ExtractorError, FeatureExtractor, quantize_to_255

CHECKPOINT_FORMAT = "lightning_gans.mnist_classifier/1"
DEFAULT_FILE = "mnist_classifier.pt"
TRAIN_COMMAND = "python -m lightning_gans.metrics.classifier --data_dir DATA_DIR --out {out}"


#: The classifier this project trained with TRAIN_COMMAND (99.40% test accuracy), shipped so evaluation works
#: offline and in CI without a training step; a checkpoint in the cache folder takes precedence.
BUNDLED_PATH = Path(__file__).resolve().parent / "weights" / DEFAULT_FILE


def default_classifier_path() -> Path:
    """``$LIGHTNING_GANS_CACHE/mnist_classifier.pt`` (else ``~/.cache/lightning_gans/...``) when it exists, else the
    classifier shipped with the package."""
    cached = default_cache_dir() / DEFAULT_FILE
    return cached if cached.is_file() or not BUNDLED_PATH.is_file() else BUNDLED_PATH


def resolve_classifier_path(path: str | os.PathLike | None = None) -> Path:
    """The classifier checkpoint to use, or an :class:`ExtractorError` that gives the command to train one."""
    p = Path(path).expanduser() if path is not None else default_classifier_path()
    if not p.is_file():
        raise ExtractorError(
            f"MNIST classifier checkpoint '{p}' does not exist. Train it once (a few minutes on a CPU) with\n"
            f"    {TRAIN_COMMAND.format(out=p)}\n"
            "or point `extractor_path` at an existing checkpoint (default location: $LIGHTNING_GANS_CACHE or "
            "~/.cache/lightning_gans)."
        )
    return p


# --------------------------------------------------------------------------------------------------------- the net


class MNISTClassifier(nn.Module):
    """Three 3x3 conv blocks (BN, ReLU, 2x2 max-pool: 28 -> 14 -> 7 -> 3), a 128-wide layer, a 10-way head.

    ``forward`` returns ``(features, logits)``; features are the 128 pre-activation outputs of the penultimate layer.
    """

    def __init__(self, channels: tuple[int, int, int] = (32, 64, 64), num_features: int = 128, num_classes: int = 10):
        super().__init__()
        c1, c2, c3 = channels
        self.config = {"channels": list(channels), "num_features": num_features, "num_classes": num_classes}

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

        self.body = nn.Sequential(
            *block(1, c1), *block(c1, c2), *block(c2, c3), nn.Flatten(), nn.Linear(c3 * 9, num_features)
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(num_features, num_classes))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.body(x)
        return feats, self.head(feats)


def load_classifier(path: str | os.PathLike | None = None) -> tuple[MNISTClassifier, dict]:
    """The trained classifier (eval mode) and its record (accuracy, training settings)."""
    p = resolve_classifier_path(path)
    record = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise ExtractorError(f"'{p}' is not an MNIST classifier checkpoint of lightning-gans ({CHECKPOINT_FORMAT}).")
    cfg = record["config"]
    model = MNISTClassifier(tuple(cfg["channels"]), cfg["num_features"], cfg["num_classes"])
    model.load_state_dict(record["state_dict"])
    model.eval().requires_grad_(False)
    return model, record


class ClassifierExtractor(FeatureExtractor):
    """Extractor ``"mnist_classifier"``: 128 penultimate features and 10 logits of :class:`MNISTClassifier`.

    Conversion: [-1, 1] -> 8-bit levels (as if saved to PNG) -> grey (channel mean) -> 28x28 (bilinear, antialiased,
    only when the size differs) -> [-1, 1].
    """

    name = "mnist_classifier"

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.path = resolve_classifier_path(path)
        self.net, self.record = load_classifier(self.path)
        self.num_features = self.net.config["num_features"]
        self.num_classes = self.net.config["num_classes"]

    def cache_id(self) -> dict:
        return {"name": self.name, "sha1": file_digest(self.path), "quantize": 8, "size": 28}

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"mnist_classifier expects N x 1|3 x H x W images, got shape {tuple(x.shape)}")
        x = quantize_to_255(x) / 127.5 - 1
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        if tuple(x.shape[-2:]) != (28, 28):
            x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False, antialias=True)
        return self.net(x)


__all__ = [
    "BUNDLED_PATH",
    "CHECKPOINT_FORMAT",
    "ClassifierExtractor",
    "MNISTClassifier",
    "default_classifier_path",
    "load_classifier",
    "resolve_classifier_path",
]
