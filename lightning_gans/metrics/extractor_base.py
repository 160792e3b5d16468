"""What every feature extractor shares: the :class:`FeatureExtractor` interface, its error, and the 8-bit quantisation.

Kept apart from the registry (:mod:`.extractors`) so that the extractors defined elsewhere -- the MNIST classifier's
(:mod:`.mnist_classifier`) -- build on it without importing the registry that names them: imports go one way only,
``extractor_base <- mnist_classifier <- extractors``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ExtractorError(RuntimeError):
    """An extractor cannot be built (missing file, missing package, no weights offline); the message says the fix."""


def quantize_to_255(x: Tensor) -> Tensor:
    """Images in [-1, 1] -> float values in {0, 1, ..., 255}, as if written to an 8-bit PNG and read back."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round()


class FeatureExtractor(nn.Module):
    """Base: images in [-1, 1] -> ``(features [N, D], logits [N, K] or None)``; frozen and always in eval mode.

    Subclasses set ``name``, ``num_features``, ``num_classes`` (0 = no logits) and implement :meth:`extract`.
    """

    name: str = "base"
    num_features: int
    num_classes: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0  # images seen; tests use it to check the real-feature cache
        self.train(False)

    def train(self, mode: bool = True) -> FeatureExtractor:  # never leaves eval mode
        return super().train(False)

    def cache_id(self) -> dict:
        """What identifies this extractor's features in cache keys."""
        return {"name": self.name}

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        self.calls += int(x.shape[0])
        feats, logits = self.extract(x)
        return feats.float(), None if logits is None else logits.float()


__all__ = ["ExtractorError", "FeatureExtractor", "quantize_to_255"]
