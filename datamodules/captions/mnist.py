"""MNIST digits captioned by rule: the measured properties, the grammar and :class:`MNISTCaptionsDataModule`.

This module never imports ``lightning_gans``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from datamodules.captions.base import CaptionDataModule, _article, _join, _Uint8Images
from datamodules.mnist import MNISTDataModule, resize_uint8

# ============================================================================================ MNIST captions
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SLANT_PHRASES = {
    "right": ("slanted to the right", "leaning to the right"),
    "left": ("slanted to the left", "leaning to the left"),
    "upright": ("written upright", "standing upright"),
}
#: Shears (x shift per row, positive leaning right) beyond which a digit is slanted; within UPRIGHT of 0 it is upright.
SLANT_RIGHT, SLANT_LEFT, UPRIGHT = 0.25, -0.1, 0.05
_MENTION = 0.8


def measure_digits(images: Tensor) -> dict[str, Tensor]:
    """Stroke thickness, slant and size of grey digits (uint8 [N, H, W] or [N, 1, H, W], ink bright).

    - ``thickness``: 2 x ink area / ink perimeter (pixels above 127; perimeter = ink/background edges), about the
      stroke width in pixels;
    - ``slant``: ``-cov(x, y) / var(y)`` of the intensity-weighted ink (image y runs down): the shear, positive when
      the top leans right;
    - ``size``: the area of the ink's bounding box as a fraction of the image.
    Vectorised: MNIST's 60,000 digits take about a second.
    """
    x = images.squeeze(1) if images.dim() == 4 else images
    _, h, w = x.shape
    ink = x > 127
    area = ink.count_nonzero((1, 2)).float()
    padded = torch.nn.functional.pad(ink, (1, 1, 1, 1))
    perimeter = (padded[:, 1:, :] != padded[:, :-1, :]).count_nonzero((1, 2)) + (
        padded[:, :, 1:] != padded[:, :, :-1]
    ).count_nonzero((1, 2))
    thickness = 2 * area / perimeter.float().clamp_min(1)
    # Intensity-weighted moments as contractions with the coordinate vectors (no N x H x W temporaries).
    weight = x.float() / 255
    ys, xs = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    rows, cols = weight.sum(2), weight.sum(1)  # [N, H], [N, W]
    mass = rows.sum(1).clamp_min(1e-6)
    cy, cx = rows @ ys / mass, cols @ xs / mass
    var_y = rows @ (ys * ys) / mass - cy * cy
    cov = torch.einsum("nhw,h,w->n", weight, ys, xs) / mass - cx * cy
    slant = -cov / var_y.clamp_min(1e-6)

    def extent(occupied: Tensor) -> Tensor:
        idx = torch.arange(occupied.shape[1], dtype=torch.float32)
        first = torch.where(occupied, idx, torch.full_like(idx, float(occupied.shape[1]))).min(1).values
        last = torch.where(occupied, idx, torch.full_like(idx, -1.0)).max(1).values
        return (last - first + 1).clamp_min(0)

    size = extent(ink.any(2)) * extent(ink.any(1)) / (h * w)
    return {"thickness": thickness, "slant": slant, "size": size}


@dataclasses.dataclass
class MNISTCaptionRules:
    """Where MNIST captions split each measured property into words, fitted on the training digits.

    ``thickness[d] = (thin below, thick above)``, ``size[d] = (small below, large above)`` per digit d; slant at
    the module's fixed shears.
    """

    thickness: list[tuple[float, float]]
    size: list[tuple[float, float]]
    thickness_median: list[float]

    @classmethod
    def fit(cls, measures: dict[str, Tensor], digits: Tensor) -> MNISTCaptionRules:
        thickness, size, median = [], [], []
        for d in range(10):
            mine = digits == d
            if not bool(mine.any()):
                mine = torch.ones_like(digits, dtype=torch.bool)
            t = measures["thickness"][mine].float()
            s = measures["size"][mine].float()
            q = torch.tensor([1 / 3, 2 / 3, 0.5])
            tq, sq = torch.quantile(t, q), torch.quantile(s, torch.tensor([0.25, 0.75]))
            thickness.append((float(tq[0]), float(tq[1])))
            median.append(float(tq[2]))
            size.append((float(sq[0]), float(sq[1])))
        return cls(thickness, size, median)

    def words(self, digit: int, thickness: float, slant: float, size: float) -> dict[str, str | None]:
        """The property words one digit earns (None: in the neutral middle, never mentioned)."""
        thin, thick = self.thickness[digit]
        small, large = self.size[digit]
        return {
            "thickness": "thin" if thickness < thin else "thick" if thickness > thick else None,
            "slant": "right"
            if slant > SLANT_RIGHT
            else "left"
            if slant < SLANT_LEFT
            else "upright"
            if abs(slant) < UPRIGHT
            else None,
            "size": "small" if size < small else "large" if size > large else None,
        }


def mnist_caption(digit: int, words: dict[str, str | None], rng: np.random.Generator) -> tuple[str, dict]:
    """One caption of a digit with the property ``words`` it earns (see :meth:`MNISTCaptionRules.words`), and its
    facts (the digit and each property it mentions)."""
    return _mnist_caption(digit, words, rng.random(_MNIST_DRAWS))


_MNIST_DRAWS = 5  # uniforms one MNIST caption uses: three mentions, the slant phrase, the template


def _mnist_caption(digit: int, words: dict[str, str | None], u: Sequence[float]) -> tuple[str, dict]:
    facts: dict[str, Any] = {"digit": int(digit)}
    mentioned = {k: v for (k, v), x in zip(words.items(), u) if v is not None and x < _MENTION}
    facts.update(mentioned)
    adjectives = [mentioned[k] for k in ("size", "thickness") if k in mentioned]
    slant = SLANT_PHRASES[mentioned["slant"]][int(u[3] < 0.5)] if "slant" in mentioned else None
    name = DIGIT_WORDS[digit]
    if u[4] < 0.5:  # "a small thick seven slanted to the right"
        head = " ".join([*adjectives, name])
        text = f"{_article(head)} {head}" + (f" {slant}" if slant else "")
    else:  # "the digit seven, small, thick and slanted to the right"
        items = adjectives + ([slant] if slant else [])
        text = f"the digit {name}" + (f", {_join(items)}" if items else "")
    return text, facts


class MNISTCaptionsDataModule(CaptionDataModule):
    """MNIST digits captioned with their digit and measured thickness, slant and size (module docstring).

    ``image_shape`` is ``(1, image_size, image_size)``; batches ``(images, tokens, texts)``. After setup,
    ``rules`` holds the thresholds fitted on the training digits (the faithfulness metric measures generated
    digits with them).

    Args:
        data_dir: root that holds ``MNIST/raw`` (as :class:`~datamodules.MNISTDataModule`).
        download: fetch MNIST through torchvision when missing (needs internet).
        image_size: side of the images (28 native; 32, 64 resized). Properties are measured at 28x28.
        val_size: training digits held out for validation (and the test split is MNIST's 10,000).
        captions_per_image: captions drawn per digit (each mentions a random subset of its properties).
        caption_seed: seed of the captions.
        seed: seed of the train/validation split.
        max_length, min_word_count: see :class:`CaptionDataModule`.
        batch_size, num_workers, pin_memory: the loaders'.
        max_train_images: train on a fixed subset of this many training digits (None: all of them; e.g. 1000 for a
            small-data run), the first N of a permutation seeded with ``subset_seed``, drawn after the ``val_size``
            validation digits are held out, so validation and test are unchanged and never enter it: the digits
            :class:`~datamodules.MNISTDataModule` keeps with the same options. Each kept digit keeps all its captions,
            and the vocabulary is built from theirs; ``rules`` are still fitted on the whole training split. Larger
            than the training split: an error at setup.
        subset_seed: seed of that subset: the same seed and ``max_train_images`` always keep the same digits (a larger
            ``max_train_images`` keeps a superset), whatever the run's seed or the worker count.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        download: bool = True,
        image_size: int = 28,
        val_size: int = 5000,
        captions_per_image: int = 3,
        caption_seed: int = 0,
        seed: int = 42,
        max_length: int = 16,
        min_word_count: int = 1,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        max_train_images: int | None = None,
        subset_seed: int = 0,
    ) -> None:
        super().__init__(
            max_length=max_length,
            min_word_count=min_word_count,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            max_train_images=max_train_images,
            subset_seed=subset_seed,
        )
        if captions_per_image < 1:
            raise ValueError(f"captions_per_image must be at least 1, got {captions_per_image}")
        self.mnist = MNISTDataModule(data_dir=data_dir, download=download, image_size=28, val_size=val_size, seed=seed)
        self.image_size = image_size
        self.image_shape = (1, image_size, image_size)
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8 (28, 32 or 64 are usual), got {image_size}")
        self.captions_per_image, self.caption_seed = captions_per_image, caption_seed
        self.rules: MNISTCaptionRules | None = None

    def prepare_data(self) -> None:
        self.mnist.prepare_data()

    def _digits(self, split: str) -> tuple[Tensor, Tensor]:
        """uint8 28x28 digits [N, 28, 28] and labels of a split."""
        if split == "test":
            self.mnist.setup("test")
            ds = self.mnist.test_set
        else:
            self.mnist.setup("fit")
            ds = self.mnist.train_set if split == "train" else self.mnist.val_set
        return ds.images.squeeze(1), ds.labels

    def _build(self, split: str) -> tuple[Any, list[list[str]], list[list[dict]]]:
        images, labels = self._digits(split)
        measures = measure_digits(images)
        if self.rules is None:
            if split == "train":
                self.rules = MNISTCaptionRules.fit(measures, labels)
            else:
                self.rules = MNISTCaptionRules.fit(measure_digits(self._digits("train")[0]), self._digits("train")[1])
        if split == "train" and self.max_train_images is not None:
            kept = self._limit_train(torch.arange(len(labels)), "training digits")
            images, labels, measures = images[kept], labels[kept], {k: v[kept] for k, v in measures.items()}
        offset = {"train": 0, "val": 1, "test": 2}[split]
        uniforms = (
            np.random.default_rng([self.caption_seed, offset])
            .random((len(labels), self.captions_per_image, _MNIST_DRAWS))
            .tolist()
        )
        captions, facts = [], []
        digits, values = labels.tolist(), torch.stack([measures[k] for k in ("thickness", "slant", "size")], 1).tolist()
        for i, d in enumerate(digits):
            words = self.rules.words(d, *values[i])
            made = [_mnist_caption(d, words, u) for u in uniforms[i]]
            captions.append([t for t, _ in made])
            facts.append([f for _, f in made])
        resized = resize_uint8(images, self.image_size).unsqueeze(1)
        return _Uint8Images(resized), captions, facts
