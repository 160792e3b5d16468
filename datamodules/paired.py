"""Paired image-to-image data (pix2pix), with an optional colour-palette -> class-index conversion (GauGAN/SPADE).

Layouts under ``data_dir`` (default ``<root>/facades``), one folder per split (``train``, ``val``, ``test``):

- side by side, as pix2pix ships its datasets: ``<split>/*.jpg|png``, each file one pair, A on the left half and B
  on the right half (width = 2 x height, two square halves);
- two folders: ``<split>/A/`` and ``<split>/B/`` holding files with the same names (compared without the extension,
  so ``A/x.jpg`` pairs with ``B/x.png``); use it for pairs whose halves are not square.

It matches junyanz/pytorch-CycleGAN-and-pix2pix ``data/aligned_dataset.py`` + ``data/base_dataset.py``: ``direction``
picks which half is the input, ``preprocess``/``load_size``/``crop_size``/``no_flip`` have the official meanings and
defaults (resize to 286, random 256 crop, random flip; the SAME crop and flip for input and target, drawn once per
pair), and batches default to 1 image as in the paper. ``direction`` defaults to ``"BtoA"`` because the default
dataset is facades, whose official command is ``--direction BtoA`` (label map -> photo).

Deviations, on purpose:

- each split is read from its own folder: ``fit`` trains on ``train`` and validates on ``val``; ``test`` only ever
  serves ``test`` (PyTorch-GAN's facades loader mixes test images into training);
- validation/test are deterministic (resize to ``crop_size``, centre crop, no flip); the official test crops at a
  random position;
- malformed data (odd widths, non-pairs, unmatched names, empty splits) fails in ``setup()`` naming the file;
- ``label_palette``: the input half (after ``direction``) is a colour-coded label map; each pixel takes the class of
  the NEAREST palette colour (JPEG artefacts rule out exact matching), at full resolution, before any resize, which
  is then nearest-neighbour. The batch gains ``"label"`` and ``"input"`` becomes the one-hot map.

The facades palette (:data:`FACADES_PALETTE`) was measured on the 606 label maps of the shared pix2pix facades copy:
12 colour clusters (median RGB of the pixels within 25 of each mode), in the CMP class order, which runs along the
jet colour map from dark blue (background) to dark red (shop). With it, 84% of pixels lie within 40 (RGB Euclidean)
of their palette colour; 99.5% of the rest lie within 2 px of a class boundary (JPEG chroma blur), so only 0.08% of
all pixels are far from every palette colour inside a region. A 13th mode, (0, 0, ~173), is an artefact confined to
the first pixel columns of the label half (JPEG blur across the seam with the photo), not a class.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from datamodules.base import DatasetNotFoundError, SplitFolderDataModule, missing_data_message, resolve_data_dir
from datamodules.transforms import (
    DIRECTIONS,
    PairTransform,
    PredictImageDataset,
    PredictItem,
    channels_to_mode,
    check_preprocess,
    image_size,
    list_images,
    load_image,
    to_signed_tensor,
)

FACADES_CLASSES = (
    "background",
    "facade",
    "window",
    "door",
    "cornice",
    "sill",
    "balcony",
    "blind",
    "deco",
    "molding",
    "pillar",
    "shop",
)
FACADES_PALETTE = (
    (0, 0, 222),  # background
    (0, 48, 255),  # facade
    (2, 127, 255),  # window
    (1, 207, 255),  # door
    (34, 254, 226),  # cornice
    (112, 253, 146),  # sill
    (192, 255, 63),  # balcony
    (253, 240, 5),  # blind
    (255, 159, 2),  # deco
    (254, 80, 0),  # molding
    (250, 2, 2),  # pillar
    (174, 0, 1),  # shop
)
PALETTES = {"facades": (FACADES_PALETTE, FACADES_CLASSES)}


def resolve_palette(label_palette: str | list[list[int]] | None) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """The palette as an int array [K, 3] (or None) and its class names (``class_0``... for a custom list)."""
    if label_palette is None:
        return None, ()
    if isinstance(label_palette, str):
        if label_palette not in PALETTES:
            raise ValueError(
                f"unknown label_palette {label_palette!r}; valid names: {', '.join(PALETTES)}, "
                "or a list of [R, G, B] colours, or None"
            )
        colours, names = PALETTES[label_palette]
        return np.asarray(colours, dtype=np.int32), names
    if not all(isinstance(c, (list, tuple)) and len(c) == 3 for c in label_palette):
        raise ValueError(f"label_palette must be a list of 2 to 256 [R, G, B] triplets, got {label_palette!r}")
    colours = np.asarray(label_palette)
    if colours.ndim != 2 or colours.shape[1] != 3 or not 2 <= len(colours) <= 256:
        raise ValueError(f"label_palette must be a list of 2 to 256 [R, G, B] triplets, got {label_palette!r}")
    if colours.min() < 0 or colours.max() > 255 or not np.issubdtype(colours.dtype, np.integer):
        raise ValueError(f"label_palette colours must be integers in 0..255, got {label_palette!r}")
    return colours.astype(np.int32), tuple(f"class_{k}" for k in range(len(colours)))


def rgb_to_labels(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Class index [H, W] (uint8) of the nearest palette colour (squared RGB distance) for each pixel of [H, W, 3]."""
    rgb = rgb.astype(np.int32)
    best = np.full(rgb.shape[:2], np.iinfo(np.int32).max, dtype=np.int32)
    labels = np.zeros(rgb.shape[:2], dtype=np.uint8)
    for k, colour in enumerate(palette):  # one colour at a time: O(H*W) memory for any K
        dist = ((rgb - colour) ** 2).sum(-1)
        closer = dist < best
        best[closer] = dist[closer]
        labels[closer] = k
    return labels


def labels_to_rgb(labels: torch.Tensor, palette: np.ndarray | list) -> torch.Tensor:
    """Colour a class-index map [..., H, W] with the palette: float [..., 3, H, W] in [-1, 1] (for image grids)."""
    table = torch.as_tensor(np.asarray(palette), dtype=torch.float32, device=labels.device) / 127.5 - 1
    return table[labels.long()].movedim(-1, -3)


class LabelEncoder:
    """Label-map image -> ``{"label": Long[H, W], "input": one-hot Float[K, H, W]}`` at ``size`` x ``size``
    (nearest-neighbour resize of the indices); the ``encode`` hook of :class:`PredictImageDataset`."""

    def __init__(self, palette: np.ndarray, size: int):
        self.palette = palette
        self.size = size

    def index_image(self, img: Image.Image) -> Image.Image:
        return Image.fromarray(rgb_to_labels(np.asarray(img.convert("RGB")), self.palette), mode="L")

    def tensors(self, index_img: Image.Image) -> dict:
        label = torch.from_numpy(np.asarray(index_img, dtype=np.int64).copy())
        one_hot = torch.nn.functional.one_hot(label, len(self.palette)).permute(2, 0, 1).float()
        return {"input": one_hot, "label": label}

    def __call__(self, img: Image.Image) -> dict:
        return self.tensors(self.index_image(img).resize((self.size, self.size), Image.NEAREST))


def scan_split(split_dir: Path, data_dir: Path) -> list[tuple[Path, Path | None]]:
    """Pairs of a split folder: ``(file, None)`` for side-by-side files, ``(a_file, b_file)`` for ``A/`` + ``B/``.

    Reads only file headers. Raises :class:`DatasetNotFoundError` naming the folder or file that is wrong.
    """
    split = split_dir.name
    expected = (
        f"a folder '{split}/' of A|B side-by-side images (.jpg/.png, width = 2 x height), "
        f"or '{split}/A/' and '{split}/B/' with matching file names"
    )
    a_dir, b_dir = split_dir / "A", split_dir / "B"
    if a_dir.is_dir() and b_dir.is_dir():
        files_a, files_b = list_images(a_dir), list_images(b_dir)
        if not files_a or not files_b:
            empty = a_dir if not files_a else b_dir
            raise DatasetNotFoundError(missing_data_message(f"Images of the '{split}' split", empty, expected))
        by_stem_a, by_stem_b = _by_stem(files_a), _by_stem(files_b)
        only_a, only_b = sorted(set(by_stem_a) - set(by_stem_b)), sorted(set(by_stem_b) - set(by_stem_a))
        if only_a or only_b:
            raise DatasetNotFoundError(
                f"'{a_dir}' and '{b_dir}' must hold the same file names (pairs are matched by name, without the "
                f"extension): {len(only_a)} only in A/ {only_a[:5]}, {len(only_b)} only in B/ {only_b[:5]}"
            )
        pairs = [(by_stem_a[s], by_stem_b[s]) for s in sorted(by_stem_a)]
        for a, b in pairs:
            if image_size(a) != image_size(b):
                raise DatasetNotFoundError(
                    f"'{a}' is {image_size(a)} but '{b}' is {image_size(b)} (WxH): the two images of a pair must "
                    "have the same size"
                )
        return pairs
    files = list_images(split_dir)
    if not files:
        raise DatasetNotFoundError(
            missing_data_message(f"Images of the '{split}' split", split_dir, expected, f"(data_dir is '{data_dir}'.)")
        )
    for f in files:
        w, h = image_size(f)
        if w % 2 or w != 2 * h:
            raise DatasetNotFoundError(
                f"'{f}' is {w}x{h} (WxH) and is not an A|B pair: a side-by-side file holds A on the left and B on "
                f"the right, two square halves, so its width must be twice its height"
                + (" (and even)" if w % 2 else "")
                + ". Fix the file, or use the '<split>/A/' + '<split>/B/' layout for pairs whose halves are not square."
            )
    return [(f, None) for f in files]


def _by_stem(files: list[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise DatasetNotFoundError(f"'{out[f.stem]}' and '{f}' have the same name: pairs are matched by name")
        out[f.stem] = f
    return out


class PairedImageDataset(Dataset):
    """Pairs of one split: ``{"input": [C,H,W], "target": [C,H,W], "name": str}`` (+ ``"label"`` with a palette).

    Args:
        pairs: from :func:`scan_split`.
        transform: preprocessing; its parameters are drawn once per pair and applied to both images.
        direction: ``"AtoB"`` (input = A = left half) or ``"BtoA"``.
        input_mode: PIL mode of the input (``"RGB"`` or ``"L"``), ignored with a palette.
        target_mode: PIL mode of the target.
        palette: [K, 3] colours: the input is a label map converted to class indices.
    """

    def __init__(
        self,
        pairs,
        transform: PairTransform,
        direction: str = "BtoA",
        input_mode: str = "RGB",
        target_mode: str = "RGB",
        palette: np.ndarray | None = None,
    ):
        self.pairs = pairs
        self.transform = transform
        self.direction = direction
        self.input_mode = input_mode
        self.target_mode = target_mode
        self.encoder = LabelEncoder(palette, transform.crop_size) if palette is not None else None

    def __len__(self) -> int:
        return len(self.pairs)

    def image_files(self) -> list[Path]:
        """Every file the pairs are read from."""
        return [f for pair in self.pairs for f in pair if f is not None]

    def read_pair(self, index: int) -> tuple[Image.Image, Image.Image]:
        """The (input, target) PIL images of a pair, before any preprocessing, in RGB."""
        path_a, path_b = self.pairs[index]
        return self._orient(load_image(path_a, "RGB"), load_image(path_b, "RGB") if path_b is not None else None)

    def _orient(self, a: Image.Image, b: Image.Image | None) -> tuple[Image.Image, Image.Image]:
        """(input, target) from the A and B images, or from one A|B side-by-side image (``b`` None)."""
        if b is None:
            half = a.width // 2
            a, b = a.crop((0, 0, half, a.height)), a.crop((half, 0, a.width, a.height))
        return (a, b) if self.direction == "AtoB" else (b, a)

    @property
    def random(self) -> bool:
        """Whether items draw random numbers (training crops and flips)."""
        return self.transform.train

    def record(self, index: int) -> dict:
        """What pair ``index`` reads from disk: the A (or A|B) file's bytes, B's (empty for A|B), the name."""
        path_a, path_b = self.pairs[index]
        return {
            "image": path_a.read_bytes(),
            "image_b": path_b.read_bytes() if path_b is not None else b"",
            "name": path_a.name,
        }

    def decode(self, record: dict) -> dict:
        name = record["name"]
        a = load_image(io.BytesIO(record["image"]), "RGB", name=name)
        b = load_image(io.BytesIO(record["image_b"]), "RGB", name=name) if record["image_b"] else None
        return self._sample(*self._orient(a, b), name, name)

    def _sample(self, inp: Image.Image, tgt: Image.Image, path: Path | str, name: str) -> dict:
        params = self.transform.draw(inp.size, path)
        sample = {"target": to_signed_tensor(self.transform(tgt.convert(self.target_mode), params))}
        if self.encoder is not None:
            sample.update(self.encoder.tensors(self.transform(self.encoder.index_image(inp), params, nearest=True)))
        else:
            sample["input"] = to_signed_tensor(self.transform(inp.convert(self.input_mode), params))
        sample["name"] = name
        return sample

    def __getitem__(self, index: int) -> dict:  # decode(record(index)), from the files
        return self._sample(*self.read_pair(index), self.pairs[index][0], self.pairs[index][0].name)


class PairedImageDataModule(SplitFolderDataModule):
    """pix2pix-style paired data: ``{"input", "target", "name"}`` batches (``"label"`` too with a palette).

    ``image_shape`` is ``(output_nc, crop_size, crop_size)``; ``input_channels`` is what the generator reads
    (``input_nc``, or the number of palette classes); ``num_classes`` is the number of palette classes (0 without).

    Args:
        data_dir: folder holding ``train/``, ``val/``, ``test/`` (default: ``<root>/facades``, where ``<root>`` is
            ``$LIGHTNING_GANS_DATA_DIR`` or ``data/``). Each split is a folder of A|B side-by-side images or an
            ``A/`` + ``B/`` pair of folders with matching file names.
        direction: ``"AtoB"`` (input = A, the left half) or ``"BtoA"`` (input = B, the right half). Default ``BtoA``,
            as the official facades command (label map -> photo).
        load_size: images are resized to this size before cropping (the width for ``scale_width*``); official 286.
        crop_size: side of the square training crop, and of what the generator outputs; official 256.
        preprocess: ``resize_and_crop`` | ``crop`` | ``scale_width`` | ``scale_width_and_crop`` | ``none``, as in
            the official code. Training draws a random crop and flip once per pair; validation/test resize to
            ``crop_size`` and crop at the centre, without flipping.
        no_flip: turn off the random horizontal flip in training.
        input_nc: channels of the generator's input, 3 (RGB) or 1 (grey); ignored with ``label_palette``.
        output_nc: channels of the generator's output (the target), 3 or 1.
        label_palette: ``None``, ``"facades"``, or a list of ``[R, G, B]`` colours, one per class: the input half is a
            colour-coded label map, converted to class indices by nearest colour; the batch gets
            ``"label"`` (Long[B, H, W]) and ``"input"`` becomes the one-hot map (Float[B, K, H, W]).
        predict_dir: folder of single input images for ``predict`` (default: the input halves of the test split).
            Predict batches hold one image, resized to ``crop_size`` x ``crop_size``, its file ``name`` and original
            ``size`` (H, W).
        batch_size: pairs per training/validation batch; 1 in the paper.
        num_workers: data-loading worker processes (0: load in the main process).
        pin_memory: pin batches in page-locked memory for faster copies to the GPU.
        verify: decode every image of the splits a stage uses at setup, so a corrupt file fails before training
            (a full pass over the files; off by default).
        streaming_dir: read train/val/test from LitData chunks written by ``lightning-gans optimize`` from a paired
            datamodule (a local folder or an s3://, gs://, azure:// URI) instead of the split folders: sharded across
            ranks and nodes, resumable mid-epoch; the preprocessing options still apply when reading.
        streaming_cache_dir: where chunks of a remote ``streaming_dir`` are cached (default: a folder in the temp dir).
        max_train_images: train on a fixed subset of this many training pairs (None: all of them; e.g. 1000 for a
            small-data run), the first N of a permutation seeded with ``subset_seed``, drawn after the ``train/`` folder
            is read (``val/`` and ``test/`` are folders of their own), so validation and test are unchanged and never
            enter it. Larger than the training split: an error at setup. Not with ``streaming_dir``: optimize a subset
            instead.
        subset_seed: seed of that subset: the same seed and ``max_train_images`` always keep the same training pairs (a
            larger ``max_train_images`` keeps a superset), whatever the run's seed or the worker count.
    """

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        direction: str = "BtoA",
        load_size: int = 286,
        crop_size: int = 256,
        preprocess: str = "resize_and_crop",
        no_flip: bool = False,
        input_nc: int = 3,
        output_nc: int = 3,
        label_palette: str | list[list[int]] | None = None,
        predict_dir: str | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        verify: bool = False,
        streaming_dir: str | None = None,
        streaming_cache_dir: str | None = None,
        max_train_images: int | None = None,
        subset_seed: int = 0,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            max_train_images=max_train_images,
            subset_seed=subset_seed,
            verify=verify,
        )
        self.streaming_dir, self.streaming_cache_dir = streaming_dir, streaming_cache_dir
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; valid values: {', '.join(DIRECTIONS)}")
        check_preprocess(preprocess, load_size, crop_size)
        self.input_mode = channels_to_mode(input_nc, "input_nc")
        self.target_mode = channels_to_mode(output_nc, "output_nc")
        self.palette, self.class_names = resolve_palette(label_palette)
        self.data_dir = resolve_data_dir(data_dir, "facades")
        self.direction = direction
        self.load_size = load_size
        self.crop_size = crop_size
        self.preprocess = preprocess
        self.no_flip = no_flip
        self.predict_dir = Path(predict_dir).expanduser() if predict_dir is not None else None
        self.num_classes = 0 if self.palette is None else len(self.palette)
        self.input_channels = input_nc if self.palette is None else self.num_classes
        self.image_shape = (output_nc, crop_size, crop_size)

    def _split_dataset(self, split: str) -> PairedImageDataset:
        if self.streaming_dir is not None:
            return self._streaming_splits((split,))[split]
        return self._dataset(split, train=split == "train")

    def streaming_datasets(self, splits: tuple[str, ...]) -> dict[str, PairedImageDataset]:
        return {split: self._dataset(split, train=False) for split in splits if (self.data_dir / split).is_dir()}

    def _decoder(self, split: str) -> PairedImageDataset:
        transform = PairTransform(
            self.preprocess, self.load_size, self.crop_size, flip=not self.no_flip, train=split == "train"
        )
        return PairedImageDataset([], transform, self.direction, self.input_mode, self.target_mode, self.palette)

    def evaluation_dataset(self, split: str) -> PairedImageDataset:
        """The pairs of ``split`` ("train", "val" or "test") through the deterministic evaluation transform
        (resize to ``crop_size``, centre crop, no flip): e.g. the training photos as validation sees them, for
        baselines such as the mean training photo (``benchmarks/translation_baselines.py``)."""
        return self._dataset(split, train=False)

    def _dataset(self, split: str, train: bool) -> PairedImageDataset:
        transform = PairTransform(self.preprocess, self.load_size, self.crop_size, flip=not self.no_flip, train=train)
        pairs = scan_split(self.data_dir / split, self.data_dir)
        if split == "train":
            pairs = self._limit_train(pairs, "training pairs")
        return PairedImageDataset(pairs, transform, self.direction, self.input_mode, self.target_mode, self.palette)

    def _predict_dataset(self) -> PredictImageDataset:
        mode = "RGB" if self.palette is not None else self.input_mode
        if self.predict_dir is not None:
            files = list_images(self.predict_dir)
            if not files:
                raise DatasetNotFoundError(
                    f"predict_dir '{self.predict_dir}' holds no images (.jpg/.png...): point predict_dir "
                    "(CLI: --data.init_args.predict_dir PATH) at a folder of input images"
                )
            items = [PredictItem(f, mode=mode) for f in files]
        else:
            items = []
            for a, b in scan_split(self.data_dir / "test", self.data_dir):
                if b is not None:  # A/ + B/ layout: the input is a whole file
                    items.append(PredictItem(a if self.direction == "AtoB" else b, mode=mode))
                else:
                    w, h = image_size(a)
                    box = (0, 0, w // 2, h) if self.direction == "AtoB" else (w // 2, 0, w, h)
                    items.append(PredictItem(a, box=box, mode=mode))
        encode = LabelEncoder(self.palette, self.crop_size) if self.palette is not None else None
        return PredictImageDataset(items, self.crop_size, encode)
