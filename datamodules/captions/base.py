"""The caption dataset, the base of the caption datamodules (vocabulary, splits, loaders, streaming) and the folder
layout of real caption datasets (:class:`CaptionFolderDataModule`); the package docstring says what they yield.

This module never imports ``lightning_gans``.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from datamodules.base import DatasetNotFoundError, ImageDataModule, missing_data_message, resolve_data_dir
from datamodules.transforms import IMG_EXTENSIONS, centre_crop_resize, load_image
from datamodules.vocabulary import Vocabulary


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


# ============================================================================================ grammar helpers
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


# ============================================================================================ the base module
class CaptionDataModule(ImageDataModule):
    """Base of the caption datamodules: vocabulary, example captions, the three splits and their loaders.

    Subclasses implement :meth:`_build` (``split -> (images, captions, facts or None)`` for ``"train"``, ``"val"``
    and ``"test"``), passing the training images through ``_limit_train`` (``max_train_images``); everything else is
    here.

    Args:
        max_length: words per caption kept in ``tokens`` (longer captions are cut, with a warning that counts them).
        min_word_count: a training word enters the vocabulary when it occurs at least this often (others map to
            ``<unk>``).
        batch_size, num_workers, pin_memory: the loaders'.
        max_train_images, subset_seed: the training subset (see :class:`~datamodules.base.ImageDataModule`).
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
        self._vocabulary = Vocabulary(manifest["meta"]["vocabulary"])
        self._example_captions = list(manifest["meta"]["example_captions"])

    def _decoder(self, split: str) -> _CaptionDecoder:
        mode = "L" if self.image_shape[0] == 1 else "RGB"
        images = _ImageFiles([], self.image_shape[-1], getattr(self, "crop_fraction", 1.0), mode)
        return _CaptionDecoder(images, self._vocabulary, self.max_length, train=split == "train")

    @property
    def vocabulary(self) -> list[str]:
        """The vocabulary of the training captions, as the list of words checkpoints store (builds them once)."""
        if self.streaming_dir is not None:
            self.streaming_manifest()  # the vocabulary came with the chunks
        if self._vocabulary is None:
            _, captions, _ = self._raw_split("train")
            self._vocabulary = Vocabulary.build((c for cs in captions for c in cs), self.min_word_count)
        return list(self._vocabulary.words)

    @property
    def example_captions(self) -> list[str]:
        """Eight distinct captions of the validation images (of the training images when there is no validation
        set), first captions first: the model's fixed sample-grid prompts."""
        if self.streaming_dir is not None:
            self.streaming_manifest()
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


# ============================================================================================ your own captions
class _ImageFiles(Dataset):
    """Image files -> centre square crop, resize, Float[C, S, S] in [-1, 1]."""

    def __init__(self, files: list[Path], image_size: int, crop_fraction: float, mode: str) -> None:
        self.files, self.image_size, self.crop_fraction, self.mode = files, image_size, crop_fraction, mode

    def __len__(self) -> int:
        return len(self.files)

    def transform(self, img: Image.Image) -> Tensor:
        return centre_crop_resize(img, self.crop_fraction, self.image_size)

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
        max_train_images: train on a fixed subset of this many training images (None: all of them; e.g. 1000 for a
            small-data run), the first N of a permutation seeded with ``subset_seed``, drawn after ``val_fraction`` is
            held out, so validation and test are unchanged and never enter it; each kept image keeps all its captions,
            and the vocabulary is built from theirs. Larger than the training split: an error at setup. Not with
            ``streaming_dir``: optimize a subset instead.
        subset_seed: seed of that subset: the same seed and ``max_train_images`` always keep the same training images (a
            larger ``max_train_images`` keeps a superset), whatever the run's seed or the worker count.
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
        index = self._limit_train(sorted(perm[n_val:])) if split == "train" else sorted(perm[:n_val])
        mode = "RGB" if self.channels == 3 else "L"
        self._files[split] = [pairs[i][0] for i in index]
        images: Dataset = _ImageFiles(self._files[split], self.image_size, self.crop_fraction, mode)
        if self.in_memory:
            images = _to_uint8(images)
        return images, [pairs[i][1] for i in index], None
