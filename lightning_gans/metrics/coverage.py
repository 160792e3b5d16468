"""Mode coverage: which classes (labelled data) or mixture components (2-D toy data) the generator produces.

Class coverage (labelled data, e.g. MNIST with the project's classifier): the histogram of predicted classes of the
generated samples is compared with that of the real images (predicted by the same classifier, so its errors cancel).

- ``classes_covered``: classes whose generated count is at least ``threshold`` x the count they would get under the
  real class distribution (default 0.1: for MNIST, a digit needs ~1% of the samples). ``threshold=0`` gives the
  count used with stacked MNIST (Metz et al. 2017; Srivastava et al. 2017): classes with at least one sample.
  A sample counts for its predicted class only when the classifier is confident (softmax at least
  ``min_confidence``, 0.5 by default), and the needed count is taken of *all* generated samples: images that look
  like no digit (a grey background, noise: the project's classifier is trained to be unsure of those) cover nothing.
- ``confident_share``: the share of generated samples the classifier is confident about.
- ``class_kl``: KL(p_generated || p_real) of the two class histograms (0 when they agree; log K when all samples fall
  in one of K equally likely classes).

2-D Gaussian mixtures (8 on a ring, 25 on a grid: Metz et al. 2017, "Unrolled GANs"; Srivastava et al. 2017,
"VEEGAN"): each sample is assigned to its nearest mode centre.

- ``high_quality``: share of samples within ``num_std`` (3) standard deviations of their nearest centre.
- ``modes_covered``: modes whose high-quality count reaches ``threshold`` x the share a uniform mixture would give
  them (``threshold=0``: at least one high-quality sample, the literature's count).
- ``mode_kl``: KL(p_assigned || uniform) of the nearest-mode histogram of all samples.

:func:`scatter_image` draws samples and mode centres into an RGB uint8 tensor (no matplotlib needed) for loggers.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric


def _kl(p_counts: Tensor, q: Tensor, eps: float = 1e-12) -> Tensor:
    p = p_counts.double() / p_counts.sum().clamp_min(1)
    q = q.double() / q.sum().clamp_min(eps)
    terms = torch.where(p > 0, p * (torch.log(p.clamp_min(eps)) - torch.log(q.clamp_min(eps))), torch.zeros_like(p))
    return terms.sum()


def covered(counts: Tensor, expected_share: Tensor, threshold: float, total: Tensor | None = None) -> Tensor:
    """Number of bins with ``count >= threshold * expected_share * total`` and at least one sample (``total``:
    the number of samples, by default the sum of ``counts``)."""
    total = counts.sum() if total is None else total
    needed = threshold * expected_share.double() * total
    return ((counts > 0) & (counts.double() >= needed)).sum()


class ClassCoverage(Metric):
    """Histograms of confidently predicted classes of real and generated samples; see the module docstring.

    Args:
        num_classes: length of the logits.
        threshold: fraction of a class's expected count that makes it covered.
        min_confidence: softmax probability a prediction needs to count (0: every argmax counts).
        reset_real_features: ``False`` keeps the real histogram through :meth:`reset`.
    """

    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        threshold: float = 0.1,
        min_confidence: float = 0.5,
        reset_real_features: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"class coverage needs at least 2 classes, got {num_classes}")
        if not 0.0 <= min_confidence < 1.0:
            raise ValueError(f"min_confidence must be in [0, 1), got {min_confidence}")
        self.num_classes = num_classes
        self.threshold = threshold
        self.min_confidence = min_confidence
        self.reset_real_features = reset_real_features
        self.add_state("real_counts", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("fake_counts", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("fake_total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor, real: bool) -> None:
        confidence, predicted = logits.float().softmax(dim=1).max(dim=1)
        counts = torch.bincount(predicted[confidence >= self.min_confidence], minlength=self.num_classes)
        if real:
            self.real_counts += counts
        else:
            self.fake_counts += counts
            self.fake_total += len(logits)

    def compute(self) -> dict[str, Tensor]:
        real_share = self.real_counts.double() / self.real_counts.sum().clamp_min(1)
        if self.real_counts.sum() == 0:  # no real histogram: compare with uniform
            real_share = torch.full_like(real_share, 1.0 / self.num_classes)
        return {
            "classes_covered": covered(self.fake_counts, real_share, self.threshold, self.fake_total).float(),
            "class_kl": _kl(self.fake_counts, real_share).float(),
            "confident_share": (self.fake_counts.sum().double() / self.fake_total.clamp_min(1)).float(),
        }

    def reset(self) -> None:
        kept = self.real_counts.clone()
        super().reset()
        if not self.reset_real_features:
            self.real_counts = kept


def ring8_centers(radius: float = 1.0) -> Tensor:
    """8 centres evenly spaced on a circle (angles 0, 45, ... 315 degrees)."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([radius * angles.cos(), radius * angles.sin()], dim=1).float()


def grid25_centers(spacing: float = 1.0) -> Tensor:
    """25 centres on a 5 x 5 grid at (-2, -1, 0, 1, 2) x spacing."""
    ticks = torch.arange(-2, 3, dtype=torch.float64) * spacing
    ys, xs = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1).float()


class MixtureModes(Metric):
    """Modes covered, share of high-quality samples and mode KL for a 2-D Gaussian mixture (module docstring).

    Args:
        centers: ``M x 2`` mode centres (in the same scaled units as the samples).
        std: the components' standard deviation (same units).
        num_std: a sample is high quality within ``num_std * std`` of its nearest centre (3 in the literature).
        threshold: fraction of the uniform share of high-quality samples that makes a mode covered.
    """

    higher_is_better = True
    full_state_update = False

    def __init__(
        self, centers: Tensor, std: float, num_std: float = 3.0, threshold: float = 0.1, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        centers = torch.as_tensor(centers, dtype=torch.float32)
        if centers.dim() != 2 or centers.shape[1] != 2:
            raise ValueError(f"centers must be M x 2, got shape {tuple(centers.shape)}")
        self.register_buffer("centers", centers)
        self.std = float(std)
        self.num_std = float(num_std)
        self.threshold = threshold
        m = len(centers)
        self.add_state("hq_counts", torch.zeros(m, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("assigned_counts", torch.zeros(m, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, points: Tensor) -> None:
        points = points.reshape(points.shape[0], -1).float()
        if points.shape[1] != 2:
            raise ValueError(f"mixture modes need 2-D points, got shape {tuple(points.shape)}")
        dist, nearest = torch.cdist(points, self.centers.to(points.device)).min(dim=1)
        m = len(self.centers)
        self.assigned_counts += torch.bincount(nearest, minlength=m)
        self.hq_counts += torch.bincount(nearest[dist <= self.num_std * self.std], minlength=m)

    def compute(self) -> dict[str, Tensor]:
        m = len(self.centers)
        total = self.assigned_counts.sum().clamp_min(1)
        uniform = torch.full((m,), 1.0 / m, dtype=torch.float64, device=self.hq_counts.device)
        return {
            "modes_covered": covered(self.hq_counts, uniform, self.threshold).float(),
            "high_quality": (self.hq_counts.sum().double() / total).float(),
            "mode_kl": _kl(self.assigned_counts, uniform).float(),
        }


def scatter_image(
    points: Tensor,
    centers: Tensor | None = None,
    radius: float | None = None,
    size: int = 256,
    limit: float = 1.0,
) -> Tensor:
    """A ``3 x size x size`` uint8 scatter plot of 2-D ``points`` over ``[-limit, limit]^2`` (y upwards).

    Samples are blue dots, mode centres red crosses, and with ``radius`` (e.g. 3 std) each centre gets a green
    circle. A grey frame marks the [-1, 1] box.
    """
    img = torch.full((3, size, size), 255, dtype=torch.uint8)

    def to_pixels(xy: Tensor) -> tuple[Tensor, Tensor]:
        xy = xy.detach().float().cpu()
        col = ((xy[:, 0] + limit) / (2 * limit) * (size - 1)).round().long()
        row = ((limit - xy[:, 1]) / (2 * limit) * (size - 1)).round().long()
        keep = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        return row[keep], col[keep]

    def paint(rows: Tensor, cols: Tensor, rgb: tuple[int, int, int]) -> None:
        for c, v in enumerate(rgb):
            img[c, rows, cols] = v

    frame = torch.arange(size)
    edge = torch.zeros(size, dtype=torch.long)
    last = edge + size - 1
    paint(torch.cat([edge, last, frame, frame]), torch.cat([frame, frame, edge, last]), (160, 160, 160))
    if centers is not None and radius is not None:
        angles = torch.linspace(0, 2 * math.pi, 180)
        ring = torch.stack([angles.cos(), angles.sin()], dim=1) * radius
        paint(*to_pixels((centers[:, None, :].cpu() + ring[None]).reshape(-1, 2)), (0, 170, 0))
    pts = points.reshape(points.shape[0], -1)[:, :2]
    r, c = to_pixels(pts)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):  # 2x2 dots
        paint((r + dr).clamp(max=size - 1), (c + dc).clamp(max=size - 1), (30, 90, 220))
    if centers is not None:
        r, c = to_pixels(centers)
        for d in range(-3, 4):
            paint((r + d).clamp(0, size - 1), c, (220, 30, 30))
            paint(r, (c + d).clamp(0, size - 1), (220, 30, 30))
    return img
