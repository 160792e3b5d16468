"""Images with captions for text-to-image GANs: MNIST and CelebA captioned by rule, and a folder layout for real
caption datasets (CUB, Oxford-102 or your own).

Every caption datamodule yields ``(image, tokens, text)`` batches: images Float[B, C, S, S] in [-1, 1], tokens
Long[B, max_length] (word ids of :class:`~datamodules.vocabulary.Vocabulary`, 0-padded) and the caption texts
(a list of B strings). Its ``vocabulary`` is built from the *training* captions (the CLI links it into the model,
which saves it in its checkpoints), and ``example_captions`` (eight validation captions) become the model's
fixed sample-grid prompts.

**Training pairs.** An image has several captions. The training set holds every (image, caption) pair once, so an
epoch sees each caption of each image once, in an order fixed by the resumable loader's seed: no random draw in
``__getitem__``, hence exact resume with or without worker processes (AttnGAN/DF-GAN draw one random caption per
image per visit instead; in expectation the same). Validation and test hold each image once with its first caption.

**Captions by rule** (seeded, so the same data always gives the same captions and vocabulary):

- :class:`MNISTCaptionsDataModule`: the digit and properties measured from the 28x28 image (:func:`measure_digits`):
  stroke thickness (twice the ink area over its perimeter), slant (the shear of the ink's second moments: positive
  leans right) and size (the area of the ink's bounding box). Thickness and size are split at per-digit tertiles
  (quartiles for size) of the training digits, so "thick" means thick for that digit; slant at fixed shears (right
  above 0.25, left below -0.1, upright within 0.05 of 0). A property in the neutral middle is never mentioned; an
  extreme one is mentioned with probability 0.8 per caption: ``"a small thick seven slanted to the right"``,
  ``"the digit seven, thin and written upright"``, ``"an eight"``.
- :class:`CelebACaptionsDataModule`: CelebA's 40 attributes through a small grammar (:func:`celeba_caption`): a
  subject from ``Male`` ("a man" / "a woman"), adjectives in front ("is": smiling, young / older, attractive,
  chubby, pale, bald), a ``with`` group ("has": hair colour and texture as one phrase, bangs, a big nose, a beard
  from ``No_Beard``, ...) and a ``wearing`` group (glasses, a hat, earrings, lipstick, ...), each a random subset of
  the face's attributes (at most 2, 3 and 2 items), lists joined as "x", "x and y", "x, y and z", the article
  agreeing with the next word. A face with no attribute set is still "a man" or "a woman": never empty (the
  MM-CelebA-HQ template script breaks there). ``Blurry`` is never mentioned.
- Each caption carries its *facts* (``dataset.facts[i]``: ``{"digit": 7, "thickness": "thick", ...}`` or
  ``{"Male": 1, "Smiling": 1, ...}``), which the faithfulness metrics check generated images against.

**Folder layout** (:class:`CaptionFolderDataModule`), as the CUB and Oxford-102 caption releases use: an image folder
(sub-folders allowed) and a text folder with one ``.txt`` per image, one caption per line, at the same relative path
(``images/001.Black_footed_Albatross/x.jpg`` <-> ``text/001.Black_footed_Albatross/x.txt``) or, failing that, a
unique file of the same name anywhere under the text folder (Oxford-102: ``jpg/image_00001.jpg`` <->
``text_c10/class_00001/image_00001.txt``).

This module never imports ``lightning_gans``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from datamodules.base import DatasetNotFoundError, ImageDataModule, missing_data_message, resolve_data_dir
from datamodules.celeba import CelebADataModule
from datamodules.mnist import MNISTDataModule, resize_uint8
from datamodules.transforms import IMG_EXTENSIONS, load_image, to_signed_tensor
from datamodules.vocabulary import Vocabulary

__all__ = [
    "CELEBA_ATTRIBUTES",
    "CaptionDataModule",
    "CaptionDataset",
    "CaptionFolderDataModule",
    "CelebACaptionsDataModule",
    "MNISTCaptionRules",
    "MNISTCaptionsDataModule",
    "celeba_caption",
    "measure_digits",
    "mnist_caption",
]


# ============================================================================================ the dataset
class CaptionDataset(Dataset):
    """Images and their captions as ``(image, tokens, text)`` items.

    Args:
        images: ``images[i]`` is image i as Float[C, S, S] in [-1, 1] (a dataset, or anything indexable).
        captions: the captions of each image (at least one each).
        tokens: Long[total captions, max_length], the captions' ids in the order of ``captions`` flattened.
        pairs: True: one item per (image, caption) pair (training); False: one item per image, its first caption.
        facts: optional, what each caption says (same nesting as ``captions``), for the faithfulness metrics.
    """

    def __init__(
        self,
        images: Any,
        captions: Sequence[Sequence[str]],
        tokens: Tensor,
        pairs: bool,
        facts: Sequence[Sequence[dict]] | None = None,
    ) -> None:
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but captions for {len(captions)}")
        if any(len(c) == 0 for c in captions):
            raise ValueError("every image needs at least one caption")
        counts = torch.tensor([len(c) for c in captions], dtype=torch.long)
        self.start = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        if len(tokens) != int(self.start[-1]):
            raise ValueError(f"{int(self.start[-1])} captions but {len(tokens)} rows of tokens")
        self.images, self.captions, self.tokens, self.pairs = images, [list(c) for c in captions], tokens, pairs
        self.facts = [list(f) for f in facts] if facts is not None else None
        self.image_of_pair = torch.repeat_interleave(torch.arange(len(captions)), counts)

    def __len__(self) -> int:
        return len(self.image_of_pair) if self.pairs else len(self.captions)

    def locate(self, index: int) -> tuple[int, int]:
        """(image, caption number) of item ``index``."""
        if self.pairs:
            image = int(self.image_of_pair[index])
            return image, index - int(self.start[image])
        return index, 0

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, str]:
        image, k = self.locate(index)
        return self.images[image], self.tokens[int(self.start[image]) + k], self.captions[image][k]


class _Indexed(Dataset):
    """``source[i][0]``: the image of a (image, target) dataset."""

    def __init__(self, source: Dataset) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Tensor:
        return self.source[index][0]


class _Uint8Images(Dataset):
    """uint8 images [N, C, S, S] kept in memory -> Float[C, S, S] in [-1, 1]."""

    def __init__(self, images: Tensor) -> None:
        self.data = images

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Tensor:
        return self.data[index].float().div_(127.5).sub_(1.0)


def _to_uint8(images: Dataset) -> _Uint8Images:
    """Decode every image once (the ``in_memory`` option)."""
    out = torch.stack([images[i].add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8) for i in range(len(images))])
    return _Uint8Images(out)


class _CaptionRecords(Dataset):
    """The records ``lightning-gans optimize`` writes for a caption split: one per image, with all its captions."""

    def __init__(self, files: list[Path], captions: list[list[str]], facts: list[list[dict]] | None) -> None:
        self.files, self.captions, self.facts = files, captions, facts

    def __len__(self) -> int:
        return len(self.files)

    def record(self, index: int) -> dict:
        return {
            "image": self.files[index].read_bytes(),
            "name": self.files[index].name,
            "captions": "\n".join(self.captions[index]),
            "facts": json.dumps(self.facts[index]) if self.facts is not None else "",
        }


class _CaptionDecoder:
    """A streamed caption record -> ``(image, tokens, text)`` as :class:`CaptionDataset` makes it: the image through
    the folder's transform; in training one of the image's captions drawn at random (the sampler's RNG is seeded
    per sample, see datamodules.streaming), else its first caption."""

    def __init__(self, images: _ImageFiles, vocabulary: Vocabulary, max_length: int, train: bool) -> None:
        self.images, self.vocabulary, self.max_length, self.train = images, vocabulary, max_length, train
        self.random = train

    def decode(self, record: dict) -> tuple[Tensor, Tensor, str]:
        image = self.images.transform(load_image(io.BytesIO(record["image"]), self.images.mode, name=record["name"]))
        captions = record["captions"].split("\n")
        text = captions[int(torch.randint(len(captions), ())) if self.train else 0]
        with warnings.catch_warnings():  # unknown or cut words were counted once when the chunks' split was built
            warnings.simplefilter("ignore")
            tokens = self.vocabulary.encode_batch([text], self.max_length)[0]
        return image, tokens, text


# ============================================================================================ the base module
class CaptionDataModule(ImageDataModule):
    """Base of the caption datamodules: vocabulary, example captions, the three splits and their loaders.

    Subclasses implement :meth:`_build` (``split -> (images, captions, facts or None)`` for ``"train"``, ``"val"``
    and ``"test"``); everything else is here.

    Args:
        max_length: words per caption kept in ``tokens`` (longer captions are cut, with a warning that counts them).
        min_word_count: a training word enters the vocabulary when it occurs at least this often (others map to
            ``<unk>``).
        batch_size, num_workers, pin_memory: the loaders'.
    """

    def __init__(self, *, max_length: int = 24, min_word_count: int = 1, **loader_kwargs: Any) -> None:
        super().__init__(**loader_kwargs)
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        if min_word_count < 1:
            raise ValueError(f"min_word_count must be at least 1, got {min_word_count}")
        self.max_length, self.min_word_count = max_length, min_word_count
        self.num_classes = 0
        self.datasets: dict[str, CaptionDataset] = {}
        self._raw: dict[str, tuple[Any, list[list[str]], list[list[dict]] | None]] = {}
        self._vocabulary: Vocabulary | None = None
        self._files: dict[str, list[Path]] = {}  # each split's image files (for optimize)
        self._example_captions: list[str] = []  # from a streaming manifest

    # -- what subclasses provide
    def _build(self, split: str) -> tuple[Any, list[list[str]], list[list[dict]] | None]:
        raise NotImplementedError

    # -- captions, vocabulary and datasets
    def _raw_split(self, split: str) -> tuple[Any, list[list[str]], list[list[dict]] | None]:
        if split not in self._raw:
            self._raw[split] = self._build(split)
        return self._raw[split]

    # -- streaming (datamodules.streaming): subclasses with a streaming_dir option set it; one record per image
    def _image_files(self, split: str) -> list[Path]:
        """The image file of each image of ``split`` (kept by :meth:`_build`), for the records."""
        if split not in self._files:
            raise NotImplementedError(f"{type(self).__name__} cannot be optimized into streaming chunks")
        return self._files[split]

    def streaming_datasets(self, splits: tuple[str, ...]) -> dict[str, Dataset]:
        out = {}
        for split in splits:
            _, captions, facts = self._raw_split(split)
            out[split] = _CaptionRecords(self._image_files(split), captions, facts)
        return out

    def streaming_meta(self) -> dict:
        return {"vocabulary": self.vocabulary, "example_captions": self.example_captions}

    def load_streaming_meta(self, manifest: dict) -> None:
        if self._vocabulary is None:
            self._vocabulary = Vocabulary(manifest["meta"]["vocabulary"])
            self._example_captions = list(manifest["meta"]["example_captions"])

    def _streaming_manifest(self) -> None:
        if self._vocabulary is None:
            from datamodules.streaming import check_written_by, read_manifest

            manifest = read_manifest(str(self.streaming_dir), self.streaming_cache_dir)
            check_written_by(manifest, str(self.streaming_dir), self)
            self.load_streaming_meta(manifest)

    def _decoder(self, split: str) -> _CaptionDecoder:
        mode = "L" if self.image_shape[0] == 1 else "RGB"
        images = _ImageFiles([], self.image_shape[-1], getattr(self, "crop_fraction", 1.0), mode)
        return _CaptionDecoder(images, self._vocabulary, self.max_length, train=split == "train")

    @property
    def vocabulary(self) -> list[str]:
        """The vocabulary of the training captions, as the list of words checkpoints store (builds them once)."""
        if self.streaming_dir is not None:
            self._streaming_manifest()
        if self._vocabulary is None:
            _, captions, _ = self._raw_split("train")
            self._vocabulary = Vocabulary.build((c for cs in captions for c in cs), self.min_word_count)
        return list(self._vocabulary.words)

    @property
    def example_captions(self) -> list[str]:
        """Eight distinct captions of the validation images (of the training images when there is no validation
        set), first captions first: the model's fixed sample-grid prompts."""
        if self.streaming_dir is not None:
            self._streaming_manifest()
            return list(self._example_captions)
        _, captions, _ = self._raw_split("val")
        if not captions:
            _, captions, _ = self._raw_split("train")
        seen: list[str] = []
        for rank in range(max(len(c) for c in captions)):
            for cs in captions:
                if rank < len(cs) and cs[rank] not in seen:
                    seen.append(cs[rank])
                    if len(seen) == 8:
                        return seen
        return seen

    def dataset(self, split: str) -> CaptionDataset:
        """The split as a :class:`CaptionDataset` (built on first use)."""
        if split not in self.datasets:
            self.vocabulary  # noqa: B018 - built from the training captions first
            images, captions, facts = self._raw_split(split)
            flat = [c for cs in captions for c in cs]
            tokens = self._vocabulary.encode_batch(flat, self.max_length, what=f"{split} captions")
            self.datasets[split] = CaptionDataset(images, captions, tokens, pairs=split == "train", facts=facts)
        return self.datasets[split]

    def setup(self, stage: str | None = None) -> None:
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ()}.get(
            stage or "fit", ("train", "val")
        )
        if self.streaming_dir is not None:
            self._streaming_manifest()
            self.datasets.update(self._streaming_splits(splits))
            return
        for split in splits:
            self.dataset(split)
        if stage in (None, "fit") and not len(self.datasets["train"]):
            raise DatasetNotFoundError(f"{type(self).__name__}: the training split is empty")

    def _split_loader(self, split: str) -> DataLoader:
        if self.streaming_dir is not None:
            if split not in self.datasets:
                self.setup("fit" if split == "train" else {"val": "validate"}.get(split, split))
            return self._streaming_loader(self.datasets[split], train=split == "train")
        dataset = self.dataset(split)
        if split == "train":
            return self._train_loader(dataset, drop_last=len(dataset) >= self.batch_size)
        return DataLoader(dataset, shuffle=False, **self._loader_kwargs())

    def train_dataloader(self) -> DataLoader:
        return self._split_loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._split_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._split_loader("test")


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


def _article(next_word: str) -> str:
    """ "a" or "an" by the sound of the next word ("an eight", "a one", "an older man")."""
    if next_word.startswith(("one", "uni", "use", "eu")):
        return "a"
    return "an" if next_word[:1] in "aeiou" else "a"


def _join(items: Sequence[str]) -> str:
    """``x`` / ``x and y`` / ``x, y and z``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


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
    ) -> None:
        super().__init__(
            max_length=max_length,
            min_word_count=min_word_count,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
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


# ============================================================================================ CelebA captions
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)

#: "is": adjectives before the noun. (attribute, value that earns the word, word)
_ADJECTIVES = [
    ("Smiling", 1, "smiling"),
    ("Young", 1, "young"),
    ("Young", 0, "older"),
    ("Attractive", 1, "attractive"),
    ("Chubby", 1, "chubby"),
    ("Pale_Skin", 1, "pale"),
    ("Bald", 1, "bald"),
]
_HAIR_COLOURS = [("Black_Hair", "black"), ("Blond_Hair", "blond"), ("Brown_Hair", "brown"), ("Gray_Hair", "gray")]
_HAIR_TEXTURES = [("Wavy_Hair", "wavy"), ("Straight_Hair", "straight")]
#: "has": the ``with`` group.
_FEATURES = [
    ("Bangs", 1, "bangs"),
    ("Receding_Hairline", 1, "a receding hairline"),
    ("Big_Lips", 1, "big lips"),
    ("Big_Nose", 1, "a big nose"),
    ("Pointy_Nose", 1, "a pointy nose"),
    ("Narrow_Eyes", 1, "narrow eyes"),
    ("Bushy_Eyebrows", 1, "bushy eyebrows"),
    ("Arched_Eyebrows", 1, "arched eyebrows"),
    ("High_Cheekbones", 1, "high cheekbones"),
    ("Oval_Face", 1, "an oval face"),
    ("Double_Chin", 1, "a double chin"),
    ("Rosy_Cheeks", 1, "rosy cheeks"),
    ("Bags_Under_Eyes", 1, "bags under the eyes"),
    ("5_o_Clock_Shadow", 1, "stubble"),
    ("Goatee", 1, "a goatee"),
    ("Mustache", 1, "a mustache"),
    ("Sideburns", 1, "sideburns"),
    ("Mouth_Slightly_Open", 1, "an open mouth"),
    ("No_Beard", 0, "a beard"),
]
#: "wears": the ``wearing`` group.
_WEARING = [
    ("Eyeglasses", "glasses"),
    ("Wearing_Hat", "a hat"),
    ("Wearing_Earrings", "earrings"),
    ("Wearing_Lipstick", "lipstick"),
    ("Wearing_Necklace", "a necklace"),
    ("Wearing_Necktie", "a tie"),
    ("Heavy_Makeup", "heavy makeup"),
]
_MAX_ADJECTIVES, _MAX_FEATURES, _MAX_WEARING = 2, 3, 2
_CELEBA_MENTION = 0.6


def _pick(rng: np.random.Generator, items: list, most: int) -> list:
    """A random subset of ``items`` (each kept with probability 0.6, at most ``most``), in a random order."""
    order = [items[i] for i in rng.permutation(len(items))]
    return [x for x in order if rng.random() < _CELEBA_MENTION][:most]


def celeba_caption(attributes: dict[str, int], rng: np.random.Generator) -> tuple[str, dict[str, int]]:
    """One caption of a face from its attributes (``{"Male": 1, "Smiling": 0, ...}``, 0/1), and its facts: the
    value of every attribute the caption mentions (``Male`` always).

    ``"a smiling young woman with wavy blond hair, bangs and high cheekbones, wearing earrings"``; a face with no
    attribute set: ``"a woman"``.
    """
    male = int(attributes.get("Male", 0))
    facts: dict[str, int] = {"Male": male}
    adjectives = _pick(rng, [(a, v, w) for a, v, w in _ADJECTIVES if attributes.get(a, 0) == v], _MAX_ADJECTIVES)
    # The with group: one hair phrase ("wavy blond hair") counts as one item; never hair on a bald head.
    features = [(a, v, w) for a, v, w in _FEATURES if attributes.get(a, 0) == v]
    colours = [c for c in _HAIR_COLOURS if attributes.get(c[0], 0) == 1]
    textures = [t for t in _HAIR_TEXTURES if attributes.get(t[0], 0) == 1]
    if (colours or textures) and not attributes.get("Bald", 0):
        hair_parts = []
        if textures:
            hair_parts.append(textures[int(rng.integers(len(textures)))])
        if colours:
            hair_parts.append(colours[int(rng.integers(len(colours)))])
        features.append(("hair", hair_parts, " ".join(w for _, w in hair_parts) + " hair"))
    chosen = _pick(rng, features, _MAX_FEATURES)
    wearing = _pick(rng, [(a, 1, w) for a, w in _WEARING if attributes.get(a, 0) == 1], _MAX_WEARING)

    for a, v, _ in adjectives + wearing:
        facts[a] = v
    for a, v, _ in chosen:
        if a == "hair":
            facts.update({name: 1 for name, _ in v})
        else:
            facts[a] = v
    head = " ".join([w for _, _, w in adjectives] + ["man" if male else "woman"])
    text = f"{_article(head)} {head}"
    if chosen:
        text += " with " + _join([w for _, _, w in chosen])
    if wearing:
        text += (", " if chosen else " ") + "wearing " + _join([w for _, _, w in wearing])
    return text, facts


class CelebACaptionsDataModule(CaptionDataModule):
    """CelebA faces captioned from their 40 attributes by a small seeded grammar (module docstring).

    Reads CelebA like :class:`~datamodules.CelebADataModule` (torchvision's layout or a plain folder, the official
    partition file or a seeded hold-out). The attribute file must use CelebA's attribute names. Faces without an
    attribute row are left out (with the warning of the CelebA datamodule). ``image_shape`` is
    ``(3, image_size, image_size)``.

    Args:
        data_dir: the CelebA folder (default ``<root>/celeba``).
        image_folder: folder of aligned face images inside ``data_dir``.
        attr_file: attribute file inside ``data_dir``.
        partition_file: train/val/test partition file inside ``data_dir`` (else ``val_fraction`` is held out).
        image_size: side of the square images (32, 64, ...).
        crop_fraction: side of the centre square crop as a fraction of the shorter image side.
        val_fraction: share of images held out for validation when there is no partition file.
        seed: seed of that hold-out.
        captions_per_image: captions per face (each a different random subset of its attributes).
        caption_seed: seed of the captions.
        in_memory: decode and resize every image once at setup and keep them as uint8 (fast epochs on a CPU;
            10,000 faces at 64x64 take 120 MB).
        max_length, min_word_count: see :class:`CaptionDataModule`.
        batch_size, num_workers, pin_memory: the loaders'.
        streaming_dir: read the splits from LitData chunks written by ``lightning-gans optimize`` from this
            datamodule (a local folder or an s3://, gs://, azure:// URI) instead of the folders: sharded across ranks
            and nodes, resumable mid-epoch; the vocabulary comes with the chunks. A streamed training epoch is one
            pass over the images, each with one of its captions drawn at random (DF-GAN's sampling), where the
            folder's is every (image, caption) pair.
        streaming_cache_dir: where chunks of a remote ``streaming_dir`` are cached (default: a folder in the temp dir).
    """

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        image_folder: str = "img_align_celeba",
        attr_file: str = "list_attr_celeba.txt",
        partition_file: str | None = "list_eval_partition.txt",
        image_size: int = 64,
        crop_fraction: float = 1.0,
        val_fraction: float = 0.05,
        seed: int = 0,
        captions_per_image: int = 5,
        caption_seed: int = 0,
        in_memory: bool = False,
        max_length: int = 24,
        min_word_count: int = 1,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        streaming_dir: str | None = None,
        streaming_cache_dir: str | None = None,
    ) -> None:
        super().__init__(
            max_length=max_length,
            min_word_count=min_word_count,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
        )
        if captions_per_image < 1:
            raise ValueError(f"captions_per_image must be at least 1, got {captions_per_image}")
        self.faces = CelebADataModule(
            data_dir=data_dir,
            image_folder=image_folder,
            attr_file=attr_file,
            partition_file=partition_file,
            image_size=image_size,
            crop_fraction=crop_fraction,
            attribute=None,
            val_fraction=val_fraction,
            seed=seed,
        )
        self.image_size, self.image_shape = image_size, (3, image_size, image_size)
        self.captions_per_image, self.caption_seed, self.in_memory = captions_per_image, caption_seed, in_memory
        self.crop_fraction = crop_fraction
        self.streaming_dir, self.streaming_cache_dir = streaming_dir, streaming_cache_dir

    @property
    def attribute_names(self) -> list[str]:
        return self.faces.attribute_names

    def _build(self, split: str) -> tuple[Any, list[list[str]], list[list[dict]]]:
        if not self.faces.datasets:
            self.faces.setup()
            missing = sorted(set(CELEBA_ATTRIBUTES) - set(self.faces.attribute_names))
            if missing:
                raise DatasetNotFoundError(
                    f"the attribute file of '{self.faces.data_dir}' lacks CelebA's attributes {', '.join(missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''}: captions are made from CelebA's 40 attribute names "
                    "(list_attr_celeba.txt or Kaggle's CSV). Point attr_file at that file."
                )
        faces = self.faces.datasets[split]
        keep = [i for i in range(len(faces)) if int(faces.targets[i][0]) >= 0]  # rows of -1: no attributes
        names = self.faces.attribute_names
        rng = np.random.default_rng([self.caption_seed, {"train": 0, "val": 1, "test": 2}[split]])
        captions, facts = [], []
        for i in keep:
            attributes = dict(zip(names, (int(v) for v in faces.targets[i])))
            made = [celeba_caption(attributes, rng) for _ in range(self.captions_per_image)]
            captions.append([t for t, _ in made])
            facts.append([f for _, f in made])
        self._files[split] = [faces.folder / faces.names[i] for i in keep]
        images: Dataset = torch.utils.data.Subset(_Indexed(faces), keep)
        if self.in_memory:
            images = _to_uint8(images)
        return images, captions, facts

    def streaming_meta(self) -> dict:
        return super().streaming_meta() | {"attribute_names": self.attribute_names}

    def load_streaming_meta(self, manifest: dict) -> None:
        super().load_streaming_meta(manifest)
        self.faces.attribute_names = list(manifest["meta"]["attribute_names"])

    def attributes(self, split: str) -> Tensor:
        """Long[N, 40]: the 0/1 attributes of the split's captioned faces (CelebA's order, ``attribute_names``)."""
        self._raw_split(split)
        faces = self.faces.datasets[split]
        return torch.stack([faces.targets[i] for i in range(len(faces)) if int(faces.targets[i][0]) >= 0])


# ============================================================================================ your own captions
class _ImageFiles(Dataset):
    """Image files -> centre square crop, resize, Float[C, S, S] in [-1, 1]."""

    def __init__(self, files: list[Path], image_size: int, crop_fraction: float, mode: str) -> None:
        self.files, self.image_size, self.crop_fraction, self.mode = files, image_size, crop_fraction, mode

    def __len__(self) -> int:
        return len(self.files)

    def transform(self, img: Image.Image) -> Tensor:
        side = max(1, round(self.crop_fraction * min(img.size)))
        img = TF.center_crop(img, [side, side])
        img = TF.resize(img, [self.image_size, self.image_size], InterpolationMode.BICUBIC, antialias=True)
        return to_signed_tensor(img)

    def __getitem__(self, index: int) -> Tensor:
        return self.transform(load_image(self.files[index], self.mode))


class CaptionFolderDataModule(CaptionDataModule):
    """Your own captioned images: an image folder and a text folder with one ``.txt`` of captions per image.

    Layout (CUB-200-2011 and Oxford-102 caption releases; module docstring for the matching rule)::

        <data_dir>/<image_folder>/<sub>/<name>.jpg
        <data_dir>/<text_folder>/<sub>/<name>.txt     one caption per line; blank lines are skipped

    Images without a caption file (or with an empty one) are left out, with one warning that counts them. A seeded
    ``val_fraction`` of the images is held out for validation and also serves as the test split.

    Args:
        data_dir: the dataset folder (default ``<root>/captions``).
        image_folder: image folder inside ``data_dir`` (searched recursively).
        text_folder: caption folder inside ``data_dir`` (searched recursively).
        channels: 3 (RGB) or 1 (grey).
        image_size: side of the square images.
        crop_fraction: side of the centre square crop as a fraction of the shorter image side.
        val_fraction: share of the images held out.
        seed: seed of that hold-out.
        in_memory: decode every image once at setup and keep them as uint8.
        max_length, min_word_count: see :class:`CaptionDataModule`.
        batch_size, num_workers, pin_memory: the loaders'.
        streaming_dir: read the splits from LitData chunks written by ``lightning-gans optimize`` from this
            datamodule (a local folder or an s3://, gs://, azure:// URI) instead of the folders: sharded across ranks
            and nodes, resumable mid-epoch; the vocabulary comes with the chunks. A streamed training epoch is one
            pass over the images, each with one of its captions drawn at random (DF-GAN's sampling), where the
            folder's is every (image, caption) pair.
        streaming_cache_dir: where chunks of a remote ``streaming_dir`` are cached (default: a folder in the temp dir).
    """

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        image_folder: str = "images",
        text_folder: str = "text",
        channels: int = 3,
        image_size: int = 64,
        crop_fraction: float = 1.0,
        val_fraction: float = 0.1,
        seed: int = 0,
        in_memory: bool = False,
        max_length: int = 24,
        min_word_count: int = 1,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        streaming_dir: str | None = None,
        streaming_cache_dir: str | None = None,
    ) -> None:
        super().__init__(
            max_length=max_length,
            min_word_count=min_word_count,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
        )
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if not 0 < crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
        self.data_dir = resolve_data_dir(data_dir, "captions")
        self.image_folder, self.text_folder = image_folder, text_folder
        self.channels, self.image_size, self.crop_fraction = channels, image_size, crop_fraction
        self.val_fraction, self.seed, self.in_memory = val_fraction, seed, in_memory
        self.image_shape = (channels, image_size, image_size)
        self._pairs: list[tuple[Path, list[str]]] | None = None
        self.streaming_dir, self.streaming_cache_dir = streaming_dir, streaming_cache_dir

    def _scan(self) -> list[tuple[Path, list[str]]]:
        if self._pairs is not None:
            return self._pairs
        images_dir, text_dir = self.data_dir / self.image_folder, self.data_dir / self.text_folder
        if not images_dir.is_dir() or not text_dir.is_dir():
            raise DatasetNotFoundError(
                missing_data_message(
                    "Captioned images",
                    self.data_dir,
                    f"an image folder '{self.image_folder}/' and a caption folder '{self.text_folder}/' with one .txt "
                    "per image (one caption a line), as the CUB and Oxford-102 caption releases lay them out",
                    "Set image_folder and text_folder to their names.",
                )
            )
        images = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())
        texts = sorted(text_dir.rglob("*.txt"))
        by_relative = {p.relative_to(text_dir).with_suffix(""): p for p in texts}
        by_name: dict[str, list[Path]] = {}
        for p in texts:
            by_name.setdefault(p.stem, []).append(p)
        pairs, no_text, empty = [], 0, 0
        for image in images:
            text = by_relative.get(image.relative_to(images_dir).with_suffix(""))
            if text is None and len(by_name.get(image.stem, [])) == 1:
                text = by_name[image.stem][0]
            if text is None:
                no_text += 1
                continue
            lines = [line.strip() for line in text.read_text(encoding="utf-8", errors="replace").splitlines()]
            lines = [line for line in lines if line]
            if not lines:
                empty += 1
                continue
            pairs.append((image, lines))
        if no_text or empty:
            warnings.warn(
                f"{type(self).__name__}: {no_text} of {len(images)} images in '{images_dir}' have no "
                f"caption file in '{text_dir}' and {empty} an empty one; they are left out.",
                stacklevel=2,
            )
        if not pairs:
            raise DatasetNotFoundError(
                f"no image in '{images_dir}' has a caption file in '{text_dir}' (the same relative path with .txt, "
                "or a unique file of the same name)"
            )
        self._pairs = pairs
        return pairs

    def _build(self, split: str) -> tuple[Any, list[list[str]], None]:
        pairs = self._scan()
        perm = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(self.seed)).tolist()
        n_val = round(self.val_fraction * len(pairs))
        if self.val_fraction > 0 and len(pairs) > 1:
            n_val = min(max(n_val, 1), len(pairs) - 1)
        index = sorted(perm[n_val:]) if split == "train" else sorted(perm[:n_val])
        mode = "RGB" if self.channels == 3 else "L"
        self._files[split] = [pairs[i][0] for i in index]
        images: Dataset = _ImageFiles(self._files[split], self.image_size, self.crop_fraction, mode)
        if self.in_memory:
            images = _to_uint8(images)
        return images, [pairs[i][1] for i in index], None


def captions_of(dataset: CaptionDataset) -> list[str]:
    """Every item's caption text, in item order."""
    return [dataset.captions[img][k] for img, k in (dataset.locate(i) for i in range(len(dataset)))]
