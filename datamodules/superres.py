"""Super-resolution pairs (LR, HR) from any folder of images, or from ready HR/LR folders (DIV2K's layout).

Folders (``train_dir``, ``val_dir``, ``train_lr_dir``, ``val_lr_dir``, ``predict_dir``) are relative to ``data_dir``
(default ``$LIGHTNING_GANS_DATA_DIR``, else ``data/``; absolute paths are used as they are). The defaults are
BasicSR's DIV2K layout (``DIV2K/DIV2K_train_HR``, ``DIV2K/DIV2K_valid_HR``) and its 128x128 training patches;
the configs point them at CelebA's aligned faces (``celeba_small/img_align_celeba_89x109``) or the facades photos
(``facades_unpaired/trainA``).

How a pair is made, per image:

1. The HR image, optionally centre-cropped to a square of its shorter side and resized to ``load_size`` x
   ``load_size`` first (bicubic, antialiased): with ``load_size == hr_size`` every face becomes the whole aligned face
   at, e.g., 64x64, as the CelebA datamodule makes it.
2. A square HR patch of ``hr_size``: at a random position in training, at the centre for validation (a fixed crop),
   its corner on a multiple of ``scale`` so that ready LR images crop at the matching place.
3. The LR patch: the HR patch downscaled ``scale`` times with PIL's bicubic filter, which antialiases when it
   shrinks (Keys' cubic with a = -0.5 stretched over the scale, as MATLAB's ``imresize`` that made DIV2K's LR
   images), rounded to 8 bits like a saved LR image; or, with ``train_lr_dir``/``val_lr_dir``, the matching patch of
   the ready LR image (``0001.png`` pairs with ``0001x4.png`` or ``0001.png``; its size must be the HR size / scale).
4. Training flips both at random (``flip``).

Batches are ``{"input": LR [B, C, h, w], "target": HR [B, C, H, W], "name": [...]}`` in [-1, 1] (the keys of the
paired datamodule, so the evaluation callback's ``input_key: input, image_key: target`` works alike); ``predict``
batches hold one LR image at its own size, ``{"input", "name", "size"}``, from ``predict_dir`` (default: the
validation LR patches). ``image_shape`` is the HR patch (C, hr_size, hr_size), which the model is built for; ``scale``
must equal the model's (it checks at setup). Without ``val_dir``, a seeded ``val_fraction`` of the training images is
held out, drawn as the CelebA datamodule draws it (so the same 2,500 of the shared 10,000 faces at 0.25).
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from datamodules.base import DatasetNotFoundError, ImageDataModule, missing_data_message, resolve_data_dir
from datamodules.transforms import (
    channels_to_mode,
    image_size,
    list_images,
    load_image,
    to_signed_tensor,
    verify_images,
)

SCALES: tuple[int, ...] = (2, 3, 4)


def check_scale_and_size(scale: int, hr_size: int, load_size: int | None = None) -> None:
    """Refuse a scale other than 2, 3, 4, an HR size that is not a multiple of it, or a load size below it."""
    if scale not in SCALES:
        raise ValueError(f"scale must be 2, 3 or 4, got {scale}")
    if hr_size < scale or hr_size % scale:
        lower = hr_size // scale * scale
        raise ValueError(
            f"hr_size {hr_size} is not a multiple of scale {scale}: the LR patch would not be a whole number of pixels "
            f"(hr_size / scale). Use a multiple, e.g. {' or '.join(str(v) for v in (lower, lower + scale) if v)}."
        )
    if load_size is not None and load_size < hr_size:
        raise ValueError(
            f"load_size ({load_size}) must be at least hr_size ({hr_size}): images are resized to "
            "load_size and then cropped to hr_size"
        )


def square_resize(img: Image.Image, size: int) -> Image.Image:
    """The centre square of ``img`` (its shorter side), resized to ``size`` x ``size`` (bicubic, antialiased)."""
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


def downscale(img: Image.Image, scale: int) -> Image.Image:
    """``img`` shrunk ``scale`` times with PIL's antialiased bicubic filter (sizes must be multiples of ``scale``)."""
    return img.resize((img.width // scale, img.height // scale), Image.BICUBIC)


def lr_partners(hr_files: list[Path], lr_dir: Path, scale: int) -> list[Path]:
    """The ready LR image of each HR image in ``lr_dir``: same stem (``0001``) or DIV2K's ``0001x4``, any extension.

    Raises:
        DatasetNotFoundError: naming the HR images without a partner, or an LR image of the wrong size.
    """
    by_stem = {f.stem: f for f in list_images(lr_dir)}
    partners, missing = [], []
    for hr in hr_files:
        lr = by_stem.get(f"{hr.stem}x{scale}") or by_stem.get(hr.stem)
        if lr is None:
            missing.append(hr.name)
        partners.append(lr)
    if missing:
        raise DatasetNotFoundError(
            f"{len(missing)} of {len(hr_files)} HR images have no LR image in '{lr_dir}' (looked for "
            f"'<stem>x{scale}.*' as DIV2K names them, or '<stem>.*'): {missing[:5]}. Point the LR folder at the "
            f"X{scale} images of these HR images, or leave it unset to make LR images by bicubic downscaling."
        )
    for hr, lr in zip(hr_files[:1], partners[:1]):  # headers only; the rest are checked as they are read
        _check_lr_size(hr, lr, image_size(hr), image_size(lr), scale)
    return partners


def _check_lr_size(hr: Path, lr: Path, hr_wh: tuple[int, int], lr_wh: tuple[int, int], scale: int) -> None:
    if (lr_wh[0] * scale, lr_wh[1] * scale) != (hr_wh[0] - hr_wh[0] % scale, hr_wh[1] - hr_wh[1] % scale):
        raise DatasetNotFoundError(
            f"'{lr}' is {lr_wh[0]}x{lr_wh[1]} but its HR image '{hr}' is {hr_wh[0]}x{hr_wh[1]}: at scale {scale} the "
            f"LR image must be {hr_wh[0] // scale}x{hr_wh[1] // scale} (check scale, or the LR folder: DIV2K has X2, "
            "X3 and X4 folders)"
        )


class SuperResolutionDataset(Dataset):
    """(LR, HR) patches of a list of HR images: ``{"input": LR, "target": HR, "name": file name}``.

    Args:
        hr_files: the HR images.
        lr_files: their ready LR images, or None to make them by bicubic downscaling.
        scale: the upscaling factor.
        hr_size: side of the square HR patch.
        load_size: resize each HR image (its centre square) to this side first; None keeps its size.
        train: random patch and flip; else the centre patch, no flip.
        flip: random horizontal flip in training.
        mode: PIL mode of the images ("RGB" or "L").
    """

    def __init__(
        self,
        hr_files: list[Path],
        lr_files: list[Path] | None,
        scale: int,
        hr_size: int,
        load_size: int | None = None,
        train: bool = True,
        flip: bool = True,
        mode: str = "RGB",
    ):
        check_scale_and_size(scale, hr_size, load_size)
        if lr_files is not None and load_size is not None:
            raise ValueError(
                "load_size resizes the HR images, so ready LR images would no longer match them: use "
                "load_size only without LR folders"
            )
        self.hr_files, self.lr_files = hr_files, lr_files
        self.scale, self.hr_size, self.load_size = scale, hr_size, load_size
        self.train, self.flip, self.mode = train, flip and train, mode

    def __len__(self) -> int:
        return len(self.hr_files)

    def image_files(self) -> list[Path]:
        return list(self.hr_files) + list(self.lr_files or [])

    @property
    def random(self) -> bool:
        """Whether items draw random numbers (training patches and flips)."""
        return self.train

    def record(self, index: int) -> dict:
        """What item ``index`` reads from disk: the HR file's bytes, the ready LR file's (or empty), the name."""
        lr = self.lr_files[index].read_bytes() if self.lr_files is not None else b""
        return {"image": self.hr_files[index].read_bytes(), "image_lr": lr, "name": self.hr_files[index].name}

    def decode(self, record: dict) -> dict:
        name = record["name"]
        hr = load_image(io.BytesIO(record["image"]), self.mode, name=name)
        lr = load_image(io.BytesIO(record["image_lr"]), self.mode, name=f"LR of {name}") if record["image_lr"] else None
        return self._sample(hr, lr, Path(name), f"LR of {name}")

    def __getitem__(self, index: int) -> dict:  # decode(record(index)), from the files
        path = self.hr_files[index]
        lr = load_image(self.lr_files[index], self.mode) if self.lr_files is not None else None
        return self._sample(load_image(path, self.mode), lr, path, self.lr_files[index] if lr is not None else None)

    def _sample(self, hr: Image.Image, lr: Image.Image | None, path: Path, lr_path: Path | str | None) -> dict:
        s, size = self.scale, self.hr_size
        if self.load_size is not None:
            hr = square_resize(hr, self.load_size)
        if lr is not None:
            _check_lr_size(path, lr_path, hr.size, lr.size, s)
        w, h = hr.size
        if w < size or h < size:
            raise DatasetNotFoundError(
                f"image '{path}' is {w}x{h} (WxH){' after resizing' if self.load_size else ''}, smaller than "
                f"hr_size={size}: use a smaller hr_size, or load_size to resize the images first"
            )
        if self.train:  # the corner on a multiple of scale, so a ready LR image crops at the same place
            left = int(torch.randint(0, (w - size) // s + 1, ()).item()) * s
            top = int(torch.randint(0, (h - size) // s + 1, ()).item()) * s
        else:
            left, top = (w - size) // 2 // s * s, (h - size) // 2 // s * s
        hr = hr.crop((left, top, left + size, top + size))
        if lr is None:
            lr = downscale(hr, s)
        else:
            lr = lr.crop((left // s, top // s, (left + size) // s, (top + size) // s))
        if self.flip and torch.rand(()).item() < 0.5:
            hr, lr = hr.transpose(Image.FLIP_LEFT_RIGHT), lr.transpose(Image.FLIP_LEFT_RIGHT)
        return {"input": to_signed_tensor(lr), "target": to_signed_tensor(hr), "name": path.name}


class LowResolutionImages(Dataset):
    """LR images to upscale, each at its own size: ``{"input": [C, h, w], "name": file name, "size": (h, w)}``."""

    def __init__(self, files: list[Path], mode: str = "RGB") -> None:
        self.files, self.mode = files, mode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        img = load_image(self.files[index], self.mode)
        return {
            "input": to_signed_tensor(img),
            "name": self.files[index].name,
            "size": torch.tensor([img.height, img.width], dtype=torch.long),
        }


class _PredictFromPairs(Dataset):
    """The LR patches of a :class:`SuperResolutionDataset` as predict items (the default predict set)."""

    def __init__(self, pairs: SuperResolutionDataset) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        item = self.pairs[index]
        lr = item["input"]
        return {"input": lr, "name": item["name"], "size": torch.tensor(list(lr.shape[1:]), dtype=torch.long)}


class SuperResolutionDataModule(ImageDataModule):
    """(LR, HR) pairs for super-resolution; see the module docstring for how they are made and the batch format.

    ``image_shape`` is ``(channels, hr_size, hr_size)``, ``scale`` the upscaling factor, ``num_classes`` 0.

    Args:
        data_dir: the folder the other folders are relative to (default: ``$LIGHTNING_GANS_DATA_DIR``, else ``data/``).
        train_dir: HR training images (default: DIV2K's ``DIV2K/DIV2K_train_HR``).
        val_dir: HR validation images (default: DIV2K's ``DIV2K/DIV2K_valid_HR``); None holds out ``val_fraction``
            of the training images instead.
        train_lr_dir: ready LR images of the training images (DIV2K: ``DIV2K/DIV2K_train_LR_bicubic/X4``); None
            makes them by bicubic downscaling.
        val_lr_dir: ready LR images of the validation images; None makes them.
        scale: upscaling factor, 2, 3 or 4.
        hr_size: side of the square HR patches (training and validation); a multiple of scale. The LR patches are
            hr_size / scale.
        load_size: centre-crop each image to a square and resize it to this side before cropping (64 with hr_size
            64: whole aligned faces); None keeps the images' sizes (DIV2K, facades).
        flip: random horizontal flips in training.
        channels: 3 (RGB) or 1 (grey; the Y-channel metrics then need RGB, so prefer 3).
        val_fraction: share of the training images held out for validation when val_dir is None.
        seed: seed of that hold-out draw.
        predict_dir: LR images to upscale with ``predict``, any size (default: the validation LR patches).
        batch_size: pairs per batch (BasicSR: 16).
        num_workers: data-loading worker processes (0: load in the main process).
        pin_memory: pin batches in page-locked memory for faster copies to the GPU.
        verify: decode every image at setup, so a corrupt file fails before training (off by default).
        streaming_dir: read train/val/test from LitData chunks written by ``lightning-gans optimize`` from a
            super-resolution datamodule (a local folder or an s3://, gs://, azure:// URI) instead of the folders:
            sharded across ranks and nodes, resumable mid-epoch; scale, hr_size and load_size apply when reading.
        streaming_cache_dir: where chunks of a remote ``streaming_dir`` are cached (default: a folder in the temp dir).
        max_train_images: train on a fixed subset of this many training images (None: all of them; e.g. 1000 for a
            small-data run), the first N of a permutation seeded with ``subset_seed``, drawn after the validation images
            are held out (``val_fraction`` when ``val_dir`` is None), so validation and test are unchanged and never
            enter it. Larger than the training split: an error at setup. Not with ``streaming_dir``: optimize a subset
            instead.
        subset_seed: seed of that subset: the same seed and ``max_train_images`` always keep the same training images (a
            larger ``max_train_images`` keeps a superset), whatever the run's seed or the worker count.
    """

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        train_dir: str = "DIV2K/DIV2K_train_HR",
        val_dir: str | None = "DIV2K/DIV2K_valid_HR",
        train_lr_dir: str | None = None,
        val_lr_dir: str | None = None,
        scale: int = 4,
        hr_size: int = 128,
        load_size: int | None = None,
        flip: bool = True,
        channels: int = 3,
        val_fraction: float = 0.1,
        seed: int = 0,
        predict_dir: str | None = None,
        batch_size: int = 16,
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
        )
        self.streaming_dir, self.streaming_cache_dir = streaming_dir, streaming_cache_dir
        check_scale_and_size(scale, hr_size, load_size)
        if load_size is not None and (train_lr_dir is not None or val_lr_dir is not None):
            raise ValueError(
                "load_size resizes the HR images, so ready LR images (train_lr_dir/val_lr_dir) would no "
                "longer match them: use one or the other"
            )
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.mode = channels_to_mode(channels, "channels")
        self.root = resolve_data_dir(data_dir)
        self.train_dir, self.val_dir = train_dir, val_dir
        self.train_lr_dir, self.val_lr_dir = train_lr_dir, val_lr_dir
        self.scale, self.hr_size, self.load_size, self.flip = scale, hr_size, load_size, flip
        self.val_fraction, self.seed, self.verify = val_fraction, seed, verify
        self.predict_dir = predict_dir
        self.image_shape = (channels, hr_size, hr_size)
        self.input_channels = channels
        self.num_classes = 0
        self.datasets: dict[str, Dataset] = {}

    def folder(self, path: str) -> Path:
        """``path`` relative to ``data_dir`` (absolute paths and ``~`` as they are)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p

    def _images(self, path: str, split: str) -> list[Path]:
        folder = self.folder(path)
        files = list_images(folder)
        if not files:
            raise DatasetNotFoundError(
                missing_data_message(
                    f"The {split} images",
                    folder,
                    f"a folder of images (.png/.jpg...) at '{path}' under data_dir",
                    f"Set the datamodule's {split}_dir (CLI: --data.init_args.{split}_dir PATH, relative to "
                    "data_dir or absolute).",
                )
            )
        return files

    def _pairs(self, hr_files: list[Path], lr_dir: str | None, train: bool) -> SuperResolutionDataset:
        lr_files = lr_partners(hr_files, self.folder(lr_dir), self.scale) if lr_dir is not None else None
        return SuperResolutionDataset(
            hr_files, lr_files, self.scale, self.hr_size, self.load_size, train=train, flip=self.flip, mode=self.mode
        )

    def setup(self, stage: str | None = None) -> None:
        """List the images of the splits (and match ready LR images); missing or malformed data raises here."""
        if self.streaming_dir is not None:
            self.datasets.update(self._streaming_splits(("train", "val") if stage in (None, "fit") else ("val",)))
            self.datasets["test"] = self.datasets["val"]
            if stage == "predict":
                self.datasets["predict"] = (
                    LowResolutionImages(self._images(self.predict_dir, "predict"), self.mode)
                    if self.predict_dir is not None
                    else _PredictFromPairs(self.datasets["val"])
                )
            return
        train_files = self._images(self.train_dir, "train")
        if self.val_dir is not None:
            val_files, val_lr = self._images(self.val_dir, "val"), self.val_lr_dir
            train_lr = self.train_lr_dir
            train_index = range(len(train_files))
        else:  # hold out a seeded share, as the CelebA datamodule does
            perm = torch.randperm(len(train_files), generator=torch.Generator().manual_seed(self.seed)).tolist()
            n_val = round(self.val_fraction * len(train_files))
            if self.val_fraction > 0 and len(train_files) > 1:
                n_val = min(max(n_val, 1), len(train_files) - 1)
            val_files = [train_files[i] for i in sorted(perm[:n_val])]
            train_index = sorted(perm[n_val:])
            val_lr = train_lr = self.train_lr_dir
        train_index = self._limit_train(train_index)
        train = self._pairs([train_files[i] for i in train_index], train_lr, train=True)
        val = self._pairs(val_files, val_lr, train=False)
        self.datasets.update(train=train, val=val, test=val)
        if stage == "predict":
            if self.predict_dir is not None:
                self.datasets["predict"] = LowResolutionImages(self._images(self.predict_dir, "predict"), self.mode)
            else:
                self.datasets["predict"] = _PredictFromPairs(val)
        if self.verify:
            files = sorted({f for key in ("train", "val") for f in self.datasets[key].image_files()})
            verify_images(files, "super-resolution images")
        if stage in (None, "fit") and (not len(train) or not len(val)):
            raise DatasetNotFoundError(
                f"the super-resolution splits of '{self.folder(self.train_dir)}' are empty ({len(train)} training, "
                f"{len(val)} validation images): add images, set val_dir, or change val_fraction"
            )

    # ---------------------------------------------------------------- streaming
    def streaming_datasets(self, splits: tuple[str, ...]) -> dict[str, Dataset]:
        self.setup("fit")
        return {split: self.datasets[split] for split in splits if split in ("train", "val")}

    def _decoder(self, split: str) -> SuperResolutionDataset:
        return SuperResolutionDataset(
            [], None, self.scale, self.hr_size, self.load_size, train=split == "train", flip=self.flip, mode=self.mode
        )

    def _loader(self, key: str, **overrides) -> DataLoader:
        if key not in self.datasets:
            self.setup("predict" if key == "predict" else "fit")
        if self.streaming_dir is not None and key != "predict":
            return self._streaming_loader(self.datasets[key], train=False, **overrides)
        return DataLoader(self.datasets[key], shuffle=False, **(self._loader_kwargs() | overrides))

    def train_dataloader(self) -> DataLoader:
        if "train" not in self.datasets:
            self.setup("fit")
        dataset = self.datasets["train"]
        if self.streaming_dir is not None:
            return self._streaming_loader(dataset, train=True)
        return self._train_loader(dataset, drop_last=len(dataset) >= self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", batch_size=1)  # images keep their own sizes
