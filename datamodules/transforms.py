"""Image helpers shared by the paired, unpaired and CelebA datamodules.

The pix2pix/CycleGAN preprocessing follows junyanz/pytorch-CycleGAN-and-pix2pix (``data/base_dataset.py``:
``get_params``/``get_transform``): the same five ``preprocess`` modes, bicubic resizing, a random crop and a random
horizontal flip in training. :class:`PairTransform` draws the crop position and the flip ONCE per sample
(:meth:`PairTransform.draw`) and applies them to any number of images of that size, so an input and its target get
the same crop and flip; label maps are resized with nearest-neighbour interpolation.

Deviations from the official code, on purpose:

- Evaluation (``train=False``) is deterministic: the official test script sets ``load_size = crop_size`` and turns
  off flipping but still crops at a random position; here the crop is taken from the centre.
- An image smaller than ``crop_size`` in ``crop`` mode is an error naming the file (the official code silently
  returns it uncropped, which then fails when it is batched with others).
- ``none`` rounds sizes to a multiple of 4 like the official code and warns once per transform, through :mod:`warnings`.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from datamodules.errors import DatasetNotFoundError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
DIRECTIONS = ("AtoB", "BtoA")


def list_image_names(folder: Path) -> list[str]:
    """Names of the image files directly inside ``folder`` (not recursive), sorted; ``[]`` when it does not exist."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:  # scandir knows file types without a stat per file (202,599 for CelebA)
        return sorted(e.name for e in entries if e.is_file() and os.path.splitext(e.name)[1].lower() in IMG_EXTENSIONS)


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name; ``[]`` when it does not exist."""
    return [folder / name for name in list_image_names(folder)]


def channels_to_mode(channels: int, option: str) -> str:
    """PIL mode for an image with ``channels`` channels (1: grey ``L``, 3: ``RGB``)."""
    if channels == 1:
        return "L"
    if channels == 3:
        return "RGB"
    raise ValueError(f"{option} must be 1 (grey) or 3 (RGB), got {channels}")


def load_image(path: Path | io.BytesIO, mode: str = "RGB", name: str | None = None) -> Image.Image:
    """Read an image fully and convert it (grey, palette or RGBA become RGB; alpha is dropped). ``path`` may be a file
    in memory (a streamed record's bytes), ``name`` then names it in errors.

    Raises:
        DatasetNotFoundError: the file is missing, truncated or not an image; the message names it.
    """
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert(mode)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DatasetNotFoundError(
            f"cannot read image file '{name or path}': {err}. The file is corrupt, truncated or not an image: "
            "replace it or remove it from the folder."
        ) from err


def verify_images(paths: list[Path], what: str = "images") -> int:
    """Decode every image in ``paths`` fully (the opt-in ``verify`` of the image datamodules); returns how many.

    Raises:
        DatasetNotFoundError: naming every file that cannot be read (the first ten) and how many there are, so a
            corrupt file is found before training instead of when its batch comes, hours into a run.
    """
    bad = []
    for path in paths:
        try:
            load_image(path)
        except DatasetNotFoundError as err:
            bad.append(f"'{path}' ({err.__cause__})")
    if bad:
        listed = "; ".join(bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise DatasetNotFoundError(
            f"{len(bad)} of {len(paths)} {what} cannot be read: {listed}. Replace or remove these files, then run "
            "again."
        )
    return len(paths)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header only, with the same error as :func:`load_image`."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError) as err:
        raise DatasetNotFoundError(
            f"cannot read image file '{path}': {err}. The file is corrupt or not an image: replace it or remove it."
        ) from err


def centre_crop_resize(img: Image.Image, crop_fraction: float, size: int) -> torch.Tensor:
    """The centre square of ``crop_fraction`` x the shorter side, resized to ``size`` x ``size`` (bicubic,
    antialiased), as a tensor in [-1, 1]: the face and caption datamodules' transform."""
    side = max(1, round(crop_fraction * min(img.size)))
    img = TF.center_crop(img, [side, side])
    img = TF.resize(img, [size, size], InterpolationMode.BICUBIC, antialias=True)
    return to_signed_tensor(img)


def to_signed_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image (``L`` or ``RGB``) -> float tensor [C, H, W] in [-1, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)


def check_preprocess(preprocess: str, load_size: int, crop_size: int) -> None:
    """Validate the pix2pix preprocessing options (raises ``ValueError`` listing the valid values)."""
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocess {preprocess!r}; valid values: {', '.join(PREPROCESS_MODES)}")
    if load_size < 1 or crop_size < 1:
        raise ValueError(f"load_size and crop_size must be positive, got {load_size} and {crop_size}")
    uses_load_size = "resize" in preprocess or "scale_width" in preprocess
    if uses_load_size and crop_size > load_size:
        raise ValueError(
            f"crop_size ({crop_size}) must not exceed load_size ({load_size}) with preprocess={preprocess!r}: "
            "images are resized to load_size and then cropped to crop_size"
        )


@dataclass(frozen=True)
class PairParams:
    """What one sample's images share: the size after resizing, the crop's top-left corner, the flip."""

    resized: tuple[int, int]  # (width, height) after the resize step
    crop: tuple[int, int] | None  # (left, top), None when nothing is cropped
    flip: bool


class PairTransform:
    """pix2pix preprocessing whose random parameters are drawn once and applied to several images.

    Args:
        preprocess: one of :data:`PREPROCESS_MODES`.
        load_size: size images are resized to before cropping (the width for ``scale_width*``).
        crop_size: side of the square crop.
        flip: random horizontal flip (training only).
        train: random crop and flip; ``False`` gives the deterministic evaluation transform (``load_size`` taken as
            ``crop_size``, centre crop, no flip), like the official test options.
    """

    def __init__(self, preprocess: str, load_size: int, crop_size: int, flip: bool = True, train: bool = True):
        check_preprocess(preprocess, load_size, crop_size)
        self.preprocess = preprocess
        self.crop_size = crop_size
        self.load_size = load_size if train else crop_size
        self.flip = flip and train
        self.train = train
        self._warned = False

    def _resized(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        if "resize" in self.preprocess:
            return self.load_size, self.load_size
        if "scale_width" in self.preprocess:
            if w == self.load_size and h >= self.crop_size:
                return w, h
            return self.load_size, int(max(self.load_size * h / w, self.crop_size))
        if self.preprocess == "none":
            return max(4, int(round(w / 4) * 4)), max(4, int(round(h / 4) * 4))
        return w, h

    def draw(self, size: tuple[int, int], path: Path | str = "") -> PairParams:
        """Parameters for an image of ``size`` (width, height); random in training (``torch`` RNG, so seeded
        workers and ``seed_everything`` make it reproducible)."""
        w, h = resized = self._resized(size)
        crop = None
        if "crop" in self.preprocess:
            if w < self.crop_size or h < self.crop_size:
                raise DatasetNotFoundError(
                    f"image '{path}' is {size[0]}x{size[1]} (WxH), {w}x{h} after resizing: smaller than "
                    f"crop_size={self.crop_size}. Use a smaller crop_size or preprocess='resize_and_crop'."
                )
            if self.train:
                left = int(torch.randint(0, w - self.crop_size + 1, ()).item())
                top = int(torch.randint(0, h - self.crop_size + 1, ()).item())
            else:
                left, top = (w - self.crop_size) // 2, (h - self.crop_size) // 2
            crop = (left, top)
        if self.preprocess == "none" and resized != tuple(size) and not self._warned:
            self._warned = True  # once per dataset (and worker)
            warnings.warn(
                f"preprocess='none': image sizes must be multiples of 4; '{path}' ({size[0]}x{size[1]}) and any "
                f"other such image is resized to the nearest multiple ({w}x{h})",
                stacklevel=2,
            )
        flip = bool(self.flip and torch.rand(()).item() < 0.5)
        return PairParams(resized=resized, crop=crop, flip=flip)

    def __call__(self, img: Image.Image, params: PairParams, nearest: bool = False) -> Image.Image:
        """Apply ``params``; ``nearest=True`` for label/index maps (never interpolate class indices)."""
        if img.size != params.resized:
            img = img.resize(params.resized, Image.NEAREST if nearest else Image.BICUBIC)
        if params.crop is not None:
            left, top = params.crop
            img = img.crop((left, top, left + self.crop_size, top + self.crop_size))
        if params.flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return img


@dataclass(frozen=True)
class PredictItem:
    """One image to translate: the file, the part of it that is the input, its PIL mode, its direction."""

    path: Path
    box: tuple[int, int, int, int] | None = None  # (left, top, right, bottom) of the input half of an A|B file
    mode: str = "RGB"
    direction: str | None = None


class PredictImageDataset(torch.utils.data.Dataset):
    """Single images for ``predict``: resized to ``crop_size`` x ``crop_size`` whatever their size, with the original
    (H, W) and file name so a model can write its output at the input's size under the input's name.

    Args:
        items: what to read.
        crop_size: the side the generator was trained on.
        encode: turns the PIL image (at its original size, in ``item.mode``) into the sample's tensors
            (``{"input": ...}``, plus ``"label"`` for label maps); default: bicubic resize to [-1, 1].
    """

    def __init__(self, items: list[PredictItem], crop_size: int, encode=None):
        self.items = items
        self.crop_size = crop_size
        self.encode = encode

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        img = load_image(item.path, item.mode)
        if item.box is not None:
            img = img.crop(item.box)
        sample = {"name": item.path.name, "size": torch.tensor([img.height, img.width], dtype=torch.long)}
        if self.encode is not None:
            sample.update(self.encode(img))
        else:
            img = img.resize((self.crop_size, self.crop_size), Image.BICUBIC)
            sample["input"] = to_signed_tensor(img)
        if item.direction is not None:
            sample["direction"] = item.direction
        return sample
