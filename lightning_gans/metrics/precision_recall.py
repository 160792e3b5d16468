"""Improved precision and recall (Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
Generative Models", NeurIPS 2019).

Each set of features is turned into a manifold estimate: the union of balls around its points, each ball's radius
being the distance to the point's k-th nearest neighbour within the same set (k = 3 in the paper). Then

- precision = share of generated samples that fall inside the real manifold (sample quality),
- recall    = share of real samples that fall inside the generated manifold (coverage of the real distribution).

Both lie in [0, 1]; higher is better. The paper uses VGG-16 fc2 features and 50,000 images per set; here the
features are the evaluation's extractor's (Inception pool3 as in StudioGAN, or the MNIST classifier's), and the
numbers depend on k, the sample counts (more samples -> smaller balls) and the features: report them together.
Cost: O(N^2 D) distance computations, done in chunks of rows to bound memory (chunk x N distances at a time).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def knn_radii(x: Tensor, k: int = 3, chunk_size: int = 1024) -> Tensor:
    """Distance from each row of ``x`` to its k-th nearest neighbour among the other rows."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} samples for k-NN radii, got {len(x)}")
    out = []
    for i in range(0, len(x), chunk_size):
        d = torch.cdist(x[i : i + chunk_size], x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # k + 1: the point itself is at distance 0
    return torch.cat(out)


def inside_manifold(query: Tensor, support: Tensor, radii: Tensor, chunk_size: int = 1024) -> Tensor:
    """Boolean per query row: inside at least one ball ``(support[j], radii[j])``."""
    out = []
    for i in range(0, len(query), chunk_size):
        d = torch.cdist(query[i : i + chunk_size], support)
        out.append((d <= radii.unsqueeze(0)).any(dim=1))
    return torch.cat(out)


def knn_precision_recall(real: Tensor, fake: Tensor, k: int = 3, chunk_size: int = 1024) -> tuple[Tensor, Tensor]:
    """``(precision, recall)`` of ``fake`` against ``real`` features (N x D each), Kynkäänniemi et al. 2019."""
    real, fake = real.float(), fake.float()
    precision = inside_manifold(fake, real, knn_radii(real, k, chunk_size), chunk_size).float().mean()
    recall = inside_manifold(real, fake, knn_radii(fake, k, chunk_size), chunk_size).float().mean()
    return precision, recall


class PrecisionRecall(Metric):
    """torchmetrics-style state for :func:`knn_precision_recall`: features gathered across processes on compute.

    Args:
        k: the neighbour that sets each ball's radius (3 in the paper).
        reset_real_features: ``False`` keeps the real features through :meth:`reset` (they rarely change).
        chunk_size: rows per distance block.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    real_features: list[Tensor]
    fake_features: list[Tensor]

    def __init__(self, k: int = 3, reset_real_features: bool = False, chunk_size: int = 1024, **kwargs: Any):
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        self.chunk_size = chunk_size
        self.reset_real_features = reset_real_features
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, features: Tensor, real: bool) -> None:
        (self.real_features if real else self.fake_features).append(features.float())

    def compute(self) -> dict[str, Tensor]:
        real = dim_zero_cat(self.real_features)
        fake = dim_zero_cat(self.fake_features)
        precision, recall = knn_precision_recall(real, fake, self.k, self.chunk_size)
        return {"precision": precision, "recall": recall}

    def reset(self) -> None:
        if self.reset_real_features:
            super().reset()
            return
        kept = list(self.real_features)  # reset() clears the list object in place
        super().reset()
        self.real_features = kept
