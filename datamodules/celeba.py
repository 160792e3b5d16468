"""CelebA aligned faces, with the 40 binary attributes or one of them as a two-class label.

Layouts under ``data_dir`` (default ``<root>/celeba``):

- torchvision's: ``img_align_celeba/*.jpg``, ``list_attr_celeba.txt``, ``list_eval_partition.txt`` (what
  ``torchvision.datasets.CelebA(root, download=True)`` writes to ``root/celeba``; ``data_dir`` may also be that
  ``root``, the ``celeba/`` folder inside it is found). ``download=True`` asks torchvision to fetch it, which often
  fails from Google Drive; the error then explains the plain-folder option.
- a plain folder of aligned face images: ``image_folder`` names it (``"."`` for ``data_dir`` itself), ``attr_file``
  is optional (``None``: no attributes), the partition file too. Kaggle's CSV versions of both files
  (``list_attr_celeba.csv``, ``list_eval_partition.csv``) are read as well.

Images are centre-cropped to a square of ``crop_fraction`` x their shorter side, resized to ``image_size`` (bicubic,
antialiased) and scaled to [-1, 1]. The default crop (1.0) is the DCGAN/StudioGAN convention of a centre 178 x 178
crop of the 178 x 218 originals, written as a fraction so it also fits downsampled copies (89 x 109 -> 89 x 89); the
tighter 148-pixel crop of BEGAN/ALI is ``crop_fraction = 148 / 178``.

Batches are ``(images, target)`` tuples like torchvision's and the MNIST datamodule's ``(images, labels)``:

- ``attribute`` set (``"Male"``, ``"Smiling"``...): target Long[B] in {0, 1}, ``num_classes = 2``; images without an
  attribute row are left out (a class label is needed);
- ``attribute=None``: target Long[B, 40] of 0/1 attributes (torchvision's order and 0/1 coding), ``num_classes = 0``;
  an image without an attribute row gets a row of -1, the flag for "unknown";
- no attribute file: target Long[B] of -1.

Splits follow the partition file (0 train, 1 val, 2 test) when it exists; otherwise a seeded ``val_fraction`` of the
images is held out for validation and serves ``test`` too. An attribute file whose first line (the image count)
disagrees with its rows, and rows or images that do not match, are tolerated with one warning that counts them.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from datamodules.base import DatasetNotFoundError, ImageDataModule, missing_data_message, resolve_data_dir
from datamodules.transforms import centre_crop_resize, list_image_names, load_image, verify_images

PARTITIONS = {"train": 0, "val": 1, "test": 2}


class CelebADataset(Dataset):
    """Face images and their targets: ``(Float[3, S, S] in [-1, 1], Long target)``.

    Args:
        folder: the image folder.
        names: file names in it.
        targets: one row (or scalar) per file.
        image_size: side of the output images.
        crop_fraction: side of the centre square crop as a fraction of the shorter image side.
    """

    def __init__(
        self, folder: Path, names: list[str], targets: torch.Tensor, image_size: int = 64, crop_fraction: float = 1.0
    ):
        if len(names) != len(targets):
            raise ValueError(f"{len(names)} files but {len(targets)} targets")
        self.folder = folder
        self.names = names
        self.targets = targets
        self.image_size = image_size
        self.crop_fraction = crop_fraction

    def __len__(self) -> int:
        return len(self.names)

    def image_files(self) -> list[Path]:
        return [self.folder / name for name in self.names]

    def transform(self, img: Image.Image) -> torch.Tensor:
        return centre_crop_resize(img, self.crop_fraction, self.image_size)

    random = False  # its transform draws nothing: a streamed decode needs no seeding (datamodules.streaming)

    def record(self, index: int) -> dict:
        """What item ``index`` reads from disk: the file's bytes, its name and target (see datamodules.streaming)."""
        return {
            "image": (self.folder / self.names[index]).read_bytes(),
            "name": self.names[index],
            "target": self.targets[index].numpy().astype(np.int8),  # 0/1 or -1: a byte each (40 per face)
        }

    def decode(self, record: dict) -> tuple[torch.Tensor, torch.Tensor]:
        image = load_image(io.BytesIO(record["image"]), "RGB", name=record["name"])
        return self.transform(image), torch.as_tensor(record["target"], dtype=torch.long)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:  # decode(record(index)), from the file
        return self.transform(load_image(self.folder / self.names[index], "RGB")), self.targets[index]


def read_attributes(path: Path) -> tuple[list[str], dict[str, int], np.ndarray, int | None]:
    """Attribute names, ``{file name: row}``, the values Int8[rows, attributes] in {-1, 1}, and the image count the
    header claims (None for CSV).

    Reads the official text format (count line, names line, ``name v1 ... v40`` rows) and Kaggle's CSV.
    """
    lines = path.read_text().splitlines()
    csv = bool(lines) and "," in lines[0]
    rows = [line.replace(",", " ").split() for line in lines if line.strip()]
    if csv:
        header_count, names, body, first = None, rows[0][1:], rows[1:], 2
    else:
        if len(rows) < 2 or not rows[0][0].isdigit():
            raise DatasetNotFoundError(
                f"'{path}' is not a CelebA attribute file: expected a first line with the image count, a line of "
                "attribute names, then one line per image ('000001.jpg -1 1 ...'), or Kaggle's CSV"
            )
        header_count, names, body, first = int(rows[0][0]), rows[1], rows[2:], 3
    index = {row[0]: i for i, row in enumerate(body)}
    width = len(names)
    values = None
    if len(index) == len(body) and all(len(row) == width + 1 for row in body):
        values = _parse_ints(" ".join(" ".join(row[1:]) for row in body), len(body), width)
    if values is None:  # find the line to blame
        seen = set()
        for lineno, row in enumerate(body, start=first):
            if len(row) != width + 1 or not all(v.lstrip("-").isdigit() for v in row[1:]):
                raise DatasetNotFoundError(
                    f"'{path}' line {lineno}: expected a file name and {width} integer values, got {' '.join(row)!r}"
                )
            if row[0] in seen:
                raise DatasetNotFoundError(f"'{path}' line {lineno}: a second row for {row[0]}")
            seen.add(row[0])
    return names, index, values.astype(np.int8), header_count


def _parse_ints(text: str, rows: int, width: int) -> np.ndarray | None:
    """Whitespace-separated integers -> Int64[rows, width], parsed in C; None when a token is not an integer."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # older NumPy warns instead of raising on a bad token
            flat = np.fromstring(text, dtype=np.int64, sep=" ") if rows else np.zeros(0, dtype=np.int64)
    except (ValueError, DeprecationWarning):
        return None
    return flat.reshape(rows, width) if flat.size == rows * width else None


def read_partition(path: Path) -> dict[str, int]:
    """``{file name: 0 train | 1 val | 2 test}`` from ``list_eval_partition.txt`` (or Kaggle's CSV)."""
    out = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        row = line.replace(",", " ").split()
        if not row or (lineno == 1 and not row[-1].isdigit()):  # blank line, CSV header
            continue
        if len(row) != 2 or row[1] not in ("0", "1", "2"):
            raise DatasetNotFoundError(f"'{path}' line {lineno}: expected '<file name> 0|1|2', got {line!r}")
        out[row[0]] = int(row[1])
    return out


class CelebADataModule(ImageDataModule):
    """CelebA aligned faces as ``(images, target)`` batches; see the module docstring for targets and splits.

    ``image_shape`` is ``(3, image_size, image_size)``; ``num_classes`` is 2 with ``attribute``, else 0. After
    ``setup``, ``attribute_names`` lists the attribute file's 40 names (empty without one).

    Args:
        data_dir: the CelebA folder (default: ``<root>/celeba``, where ``<root>`` is ``$LIGHTNING_GANS_DATA_DIR`` or
            ``data/``), or torchvision's root that holds ``celeba/``.
        image_folder: folder of aligned face images inside ``data_dir`` (``"."``: ``data_dir`` itself).
        attr_file: attribute file inside ``data_dir`` (official text format or Kaggle CSV), or ``None``.
        partition_file: train/val/test partition file inside ``data_dir``; when absent (or ``None``) a seeded
            ``val_fraction`` is held out instead.
        image_size: side of the square output images (64, 128, ...).
        crop_fraction: side of the centre square crop as a fraction of the shorter image side (1.0: 178 of the
            178 x 218 originals; ``148/178`` for the BEGAN crop).
        attribute: an attribute name (``"Male"``, ``"Smiling"``...) whose 0/1 value becomes the class label; ``None``
            for the 40-attribute vector.
        val_fraction: share of images held out for validation when there is no partition file.
        seed: seed of that hold-out draw.
        download: let torchvision download CelebA into ``data_dir`` when it is not there (Google Drive often
            refuses; then download the files yourself, see the error).
        batch_size: images per batch; the training loader drops the last incomplete batch.
        num_workers: data-loading worker processes (0: load in the main process).
        pin_memory: pin batches in page-locked memory for faster copies to the GPU.
        verify: decode every image at setup, so a corrupt file fails before training (a full pass over the files;
            off by default).
        streaming_dir: read the splits from LitData chunks written by ``lightning-gans optimize`` from a CelebA
            datamodule (a local folder or an s3://, gs://, azure:// URI) instead of the image folder: sharded across
            ranks and nodes, resumable mid-epoch. ``image_size`` and ``crop_fraction`` still apply when reading.
        streaming_cache_dir: where chunks of a remote ``streaming_dir`` are cached (default: a folder in the temp dir).
        max_train_images: train on a fixed subset of this many training faces (None: all of them; e.g. 1000 for a
            small-data run), the first N of a permutation seeded with ``subset_seed``, drawn after the validation faces
            are held out (the partition file's, or ``val_fraction``), so validation and test are unchanged and never
            enter it. Larger than the training split: an error at setup. Not with ``streaming_dir``: optimize a subset
            instead.
        subset_seed: seed of that subset: the same seed and ``max_train_images`` always keep the same training faces (a
            larger ``max_train_images`` keeps a superset), whatever the run's seed or the worker count.
    """

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        image_folder: str = "img_align_celeba",
        attr_file: str | None = "list_attr_celeba.txt",
        partition_file: str | None = "list_eval_partition.txt",
        image_size: int = 64,
        crop_fraction: float = 1.0,
        attribute: str | None = None,
        val_fraction: float = 0.05,
        seed: int = 0,
        download: bool = False,
        batch_size: int = 64,
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
        self.verify = verify
        self.streaming_dir, self.streaming_cache_dir = streaming_dir, streaming_cache_dir
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        if not 0 < crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.data_dir = resolve_data_dir(data_dir, "celeba")
        self.image_folder = image_folder
        self.attr_file = attr_file
        self.partition_file = partition_file
        self.image_size = image_size
        self.crop_fraction = crop_fraction
        self.attribute = attribute
        self.val_fraction = val_fraction
        self.seed = seed
        self.download = download
        self.image_shape = (3, image_size, image_size)
        self.num_classes = 2 if attribute is not None else 0
        self.attribute_names: list[str] = []
        self.datasets: dict[str, CelebADataset] = {}

    def _folder(self) -> Path | None:
        """The folder holding ``image_folder``: ``data_dir`` itself or torchvision's ``data_dir/celeba``."""
        for folder in (self.data_dir, self.data_dir / "celeba"):
            if (folder / self.image_folder).is_dir():
                return folder
        return None

    def _not_found(self, hint: str = "") -> DatasetNotFoundError:
        return DatasetNotFoundError(
            missing_data_message(
                f"The CelebA image folder '{self.image_folder}'",
                self.data_dir,
                f"'{self.image_folder}/' of aligned face images, as torchvision lays it out (img_align_celeba/, "
                "list_attr_celeba.txt, list_eval_partition.txt), or any folder of face images: set image_folder to it "
                "('.' for data_dir itself) and attr_file=None when there are no attributes",
                hint or "download=True asks torchvision to fetch CelebA (Google Drive often refuses).",
            )
        )

    def prepare_data(self) -> None:
        """With ``download=True`` and no data, let torchvision download CelebA (once, on one process)."""
        if not self.download or self._folder() is not None:
            return
        from torchvision.datasets import CelebA

        root = self.data_dir.parent if self.data_dir.name == "celeba" else self.data_dir
        try:
            CelebA(str(root), split="all", target_type="attr", download=True)
        except Exception as err:  # gdown missing, Google Drive quota, checksum...: all end the same way
            raise self._not_found(
                f"torchvision could not download CelebA into '{root / 'celeba'}' ({type(err).__name__}: {err}). "
                "Google Drive often refuses. Download img_align_celeba.zip, list_attr_celeba.txt and "
                "list_eval_partition.txt yourself (the CelebA page, or a mirror such as Kaggle's, whose CSV files "
                "work too), unzip the images into data_dir, and leave download=False; a plain folder of aligned "
                "face images works as well."
            ) from err
        if self._folder() is None:
            raise self._not_found(f"torchvision's download into '{root / 'celeba'}' did not produce the folder.")

    def _targets(self, folder: Path, files: list[str]) -> tuple[list[str], torch.Tensor]:
        attr_path = folder / self.attr_file if self.attr_file else None
        if attr_path is None or not attr_path.is_file():
            if self.attribute is not None:
                raise DatasetNotFoundError(
                    missing_data_message(
                        f"The attribute file '{self.attr_file}'",
                        folder,
                        f"CelebA's attribute file, needed for attribute={self.attribute!r}",
                        "Set attr_file to its name, or attribute=None.",
                    )
                )
            if attr_path is not None:
                warnings.warn(
                    f"no attribute file '{attr_path}': targets are -1 (set attr_file=None to silence this)",
                    stacklevel=2,
                )
            self.attribute_names = []
            return files, torch.full((len(files),), -1, dtype=torch.long)
        names, table, values, header_count = read_attributes(attr_path)
        self.attribute_names = names
        if self.attribute is not None and self.attribute not in names:
            raise ValueError(f"unknown attribute {self.attribute!r} in '{attr_path}'; valid names: {', '.join(names)}")
        n_images = len(files)
        rows = np.array([table.get(f, -1) for f in files], dtype=np.int64)
        n_unlabelled = int((rows < 0).sum())
        if self.attribute is not None and n_unlabelled:
            files, rows = [f for f, r in zip(files, rows) if r >= 0], rows[rows >= 0]
        n_rows_without_image = len(table) - int((rows >= 0).sum())
        if n_unlabelled or n_rows_without_image or (header_count is not None and header_count != len(table)):
            action = (
                "left out: attribute= needs a label" if self.attribute is not None else "their target is a row of -1"
            )
            warnings.warn(
                f"CelebA attributes: '{attr_path}' "
                + (f"says {header_count} images in its first line and " if header_count is not None else "")
                + f"has {len(table)} rows; '{folder / self.image_folder}' holds {n_images} images. "
                f"{n_rows_without_image} rows have no image (ignored); {n_unlabelled} images have no attributes "
                f"({action}).",
                stacklevel=2,
            )
        values = values if len(values) else np.zeros((1, len(names)), dtype=np.int8)  # an empty file
        targets = torch.from_numpy((values[np.maximum(rows, 0)] > 0).astype(np.int64))  # {-1, 1} -> {0, 1}
        targets[torch.from_numpy(rows < 0)] = -1  # no attribute row: unknown
        if self.attribute is not None:
            targets = targets[:, names.index(self.attribute)].contiguous()
        return files, targets

    def _splits(self, folder: Path, files: list[str]) -> dict[str, list[int]]:
        part_path = folder / self.partition_file if self.partition_file else None
        if part_path is not None and part_path.is_file():
            partition = read_partition(part_path)
            unlisted = sum(f not in partition for f in files)
            if unlisted:
                warnings.warn(
                    f"{unlisted} images are not in '{part_path}': they are left out of every split", stacklevel=2
                )
            return {s: [i for i, f in enumerate(files) if partition.get(f) == p] for s, p in PARTITIONS.items()}
        perm = torch.randperm(len(files), generator=torch.Generator().manual_seed(self.seed)).tolist()
        n_val = round(self.val_fraction * len(files))
        if self.val_fraction > 0 and len(files) > 1:
            n_val = min(max(n_val, 1), len(files) - 1)
        val, train = sorted(perm[:n_val]), sorted(perm[n_val:])
        return {"train": train, "val": val, "test": val}

    def setup(self, stage: str | None = None) -> None:
        """Read the file lists and attributes and build the splits; missing or malformed data raises here."""
        if self.streaming_dir is not None:
            splits = ("train", "val") if stage in (None, "fit") else (("val",) if stage == "validate" else ("test",))
            self.datasets.update(self._streaming_splits(splits))
            return
        folder = self._folder()
        if folder is None:
            raise self._not_found()
        files = list_image_names(folder / self.image_folder)
        if not files:
            raise self._not_found(f"'{folder / self.image_folder}' exists but holds no images (.jpg/.png...).")
        files, targets = self._targets(folder, files)
        for split, index in self._splits(folder, files).items():
            if split == "train":
                index = self._limit_train(index, "training faces")
            self.datasets[split] = CelebADataset(
                folder / self.image_folder,
                [files[i] for i in index],
                targets[index],
                self.image_size,
                self.crop_fraction,
            )
        if self.verify:
            files = sorted({f for dataset in self.datasets.values() for f in dataset.image_files()})
            verify_images(files, "CelebA images")
        if stage in (None, "fit") and not self.datasets["train"]:
            raise DatasetNotFoundError(
                f"the CelebA training split of '{self.data_dir}' is empty: no image is marked 0 (train) in the "
                "partition file, or, with attribute=..., none has a row in the attribute file"
            )

    # ---------------------------------------------------------------- streaming
    def streaming_datasets(self, splits: tuple[str, ...]) -> dict[str, CelebADataset]:
        self.setup(None)
        return {split: self.datasets[split] for split in splits if split in self.datasets}

    def streaming_meta(self) -> dict:
        return {"attribute_names": self.attribute_names, "attribute": self.attribute}

    def load_streaming_meta(self, manifest: dict) -> None:
        meta = manifest["meta"]
        if meta["attribute"] != self.attribute:
            raise ValueError(
                f"the chunks in '{self.streaming_dir}' hold targets for attribute={meta['attribute']!r}, this "
                f"datamodule asks for attribute={self.attribute!r}: set the same attribute, or optimize again with it"
            )
        self.attribute_names = list(meta["attribute_names"])
        smallest = manifest.get("min_side")
        if smallest is not None and self.image_size > smallest:
            raise ValueError(
                f"the images in '{self.streaming_dir}' were re-encoded with their shorter side at {smallest} pixels, "
                f"smaller than image_size={self.image_size}: optimize again with --min_side >= {self.image_size}"
            )

    def _decoder(self, split: str) -> CelebADataset:
        return CelebADataset(Path(), [], torch.zeros(0), self.image_size, self.crop_fraction)

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        if split not in self.datasets:
            self.setup("fit")
        dataset = self.datasets[split]
        if self.streaming_dir is not None:
            return self._streaming_loader(dataset, train)
        if train:
            return self._train_loader(dataset, drop_last=len(dataset) >= self.batch_size)
        return DataLoader(dataset, shuffle=False, **self._loader_kwargs())

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
