"""What every datamodule shares: where the data lives, and the two facts the models are built from.

Conventions (every datamodule, now and later):

- The root argument is ``data_dir``. Left unset (``None``) it is ``$LIGHTNING_GANS_DATA_DIR`` when that variable is
  set, else ``data/``; a dataset with a folder of its own (``facades``, ``celeba``) lives in that folder under the
  root. :func:`resolve_data_dir` implements this once.
- A datamodule knows ``image_shape`` (C, H, W of the images a generator must make) and ``num_classes`` (0 when
  unlabelled) as soon as it is constructed, so the CLI can link them into the model before anything is loaded.
- Images come out in [-1, 1].
- A missing or malformed dataset raises :class:`DatasetNotFoundError` naming the folder, what was expected there
  and the ``data_dir`` option, before any training starts.

This package never imports ``lightning_gans``.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader, Dataset

from datamodules.errors import DatasetNotFoundError
from datamodules.transforms import verify_images

__all__ = ["DATA_DIR_ENV", "DatasetNotFoundError", "ImageDataModule", "SplitFolderDataModule", "resolve_data_dir"]

DATA_DIR_ENV = "LIGHTNING_GANS_DATA_DIR"


def resolve_data_dir(data_dir: str | os.PathLike | None, dataset_folder: str | None = None) -> Path:
    """Return the folder a datamodule reads from.

    Args:
        data_dir: what the user gave; used as is when set.
        dataset_folder: the dataset's own folder under the default root (``"facades"``), or ``None`` when the
            dataset lives in the root itself (torchvision's MNIST makes ``<root>/MNIST/raw``).
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    root = Path(os.environ.get(DATA_DIR_ENV) or "data").expanduser()
    return root / dataset_folder if dataset_folder else root


def missing_data_message(what: str, folder: Path, expected: str, hint: str = "") -> str:
    """One place for the wording of 'the data is not there' errors."""
    msg = (
        f"{what} not found in '{folder}' (resolved to '{folder.resolve()}'). Expected {expected}. "
        f"Point `data_dir` at the folder that holds it (CLI: --data.init_args.data_dir PATH), "
        f"or set ${DATA_DIR_ENV} to the root that holds your datasets."
    )
    return f"{msg} {hint}".strip()


class ImageDataModule(L.LightningDataModule):
    """Base for image datamodules: the ``image_shape``/``num_classes`` contract and common loader settings.

    Subclasses set ``self.image_shape`` and ``self.num_classes`` in ``__init__``.
    """

    image_shape: tuple[int, int, int]
    num_classes: int = 0

    def __init__(self, *, batch_size: int = 64, num_workers: int = 0, pin_memory: bool = False) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be 0 or more, got {num_workers}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory

    def _loader_kwargs(self) -> dict:
        return {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.num_workers > 0,
        }


class SplitFolderDataModule(ImageDataModule):
    """Base for datasets stored as split folders (pix2pix ``train/val/test``, CycleGAN ``trainA/testB``...).

    Subclasses build ``self._split_dataset(split)`` for ``"train"``, ``"val"``, ``"test"`` and
    ``self._predict_dataset()``; this class scans what a stage needs in ``setup`` (so malformed data fails there,
    before training) and serves the loaders, predict one image at a time (images keep their own sizes). With
    ``verify=True`` setup also decodes every image of those splits (each dataset lists them in ``image_files()``).
    """

    _STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ()}
    _SPLIT_STAGE = {"train": "fit", "val": "validate", "test": "test", "predict": "predict"}

    def __init__(self, *, verify: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.verify = verify
        self.datasets: dict[str, Dataset] = {}

    def _split_dataset(self, split: str) -> Dataset:
        raise NotImplementedError

    def _predict_dataset(self) -> Dataset:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Scan the folders the stage needs (``fit``: train + val); malformed data raises here, naming the file."""
        splits = self._STAGE_SPLITS.get(stage or "fit", ("train", "val"))
        for split in splits:
            self.datasets[split] = self._split_dataset(split)
        if stage == "predict":
            self.datasets["predict"] = self._predict_dataset()
        if self.verify:
            files = sorted({f for split in splits for f in self.datasets[split].image_files()})
            verify_images(files, f"images of {type(self).__name__} ({', '.join(splits)})")

    def _loader(self, key: str, shuffle: bool = False, **overrides) -> DataLoader:
        if key not in self.datasets:
            self.setup(self._SPLIT_STAGE[key])
        return DataLoader(self.datasets[key], shuffle=shuffle, **(self._loader_kwargs() | overrides))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", batch_size=1)
