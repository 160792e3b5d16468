"""MNIST (LeCun et al. 1998) as images in [-1, 1], with class labels.

Layout: torchvision's, ``<data_dir>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``. The files are
read directly, compressed or not, so a read-only copy of the four original ``.gz`` files works (torchvision itself
wants them extracted). With ``download=True`` a missing copy is fetched through ``torchvision.datasets.MNIST``.

Splits: ``val_size`` images held out of the 60,000 training digits (seeded), the official 10,000 for test.
The whole split is resized once at setup and kept in memory as uint8, so loading costs a division per image.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from datamodules.base import DatasetNotFoundError, ImageDataModule, missing_data_message, resolve_data_dir

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(raw: Path, name: str) -> Path | None:
    for candidate in (raw / name, raw / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


_REFETCH = (
    "Delete it and download MNIST again (download: true), or copy the original file from another machine "
    "(torchvision's md5 sums are in its MNIST class)."
)


def read_idx(path: Path) -> Tensor:
    """Read an IDX file (MNIST's format), gzipped or not, into a uint8 tensor.

    Raises:
        DatasetNotFoundError: the file is truncated or corrupt (a cut download, a bad copy); the message names it.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as err:  # a cut .gz ends before its end-of-stream marker
        raise DatasetNotFoundError(
            f"cannot read MNIST file '{path}': {err}. The file is truncated or corrupt. " + _REFETCH
        ) from err
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise DatasetNotFoundError(
            f"'{path}' is not an unsigned-byte IDX file (magic {magic:#x}): the file is "
            "corrupt or not MNIST. " + _REFETCH
        )
    ndim = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise DatasetNotFoundError(
            f"'{path}' is truncated: its header says {shape}, it holds {array.size} values. " + _REFETCH
        )
    return torch.from_numpy(array.copy()).view(*shape)


class TensorImageDataset(Dataset):
    """uint8 images [N, H, W] (or [N, C, H, W]) and labels -> (float image in [-1, 1], label)."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images = images if images.dim() == 4 else images.unsqueeze(1)
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index].float().div_(127.5).sub_(1.0), self.labels[index]

    def record(self, index: int) -> dict:
        """Item ``index`` as a record for ``lightning-gans optimize``: the image as a PNG (lossless), its label."""
        out = io.BytesIO()
        image = self.images[index].cpu()
        Image.fromarray(image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()).save(out, "PNG")
        return {"image": out.getvalue(), "label": int(self.labels[index])}

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        """A whole batch in one indexing operation (on whatever device the tensors live), the same values as
        ``__getitem__`` one by one; DataLoaders over this dataset use :func:`whole_batch` as their collate_fn."""
        index = torch.as_tensor(indices, device=self.images.device)
        return self.images[index].float().div_(127.5).sub_(1.0), self.labels[index]

    def to(self, device: torch.device | str) -> TensorImageDataset:
        self.images, self.labels = self.images.to(device), self.labels.to(device)
        return self


class _StreamedDigits:
    """A streamed MNIST record -> ``(image, label)`` as :class:`TensorImageDataset` makes it, resized to
    ``image_size`` (as the folder datamodule resizes) when the chunks hold another size."""

    random = False

    def __init__(self, image_size: int) -> None:
        self.image_size = image_size

    def decode(self, record: dict) -> tuple[Tensor, Tensor]:
        with Image.open(io.BytesIO(record["image"])) as img:
            array = torch.from_numpy(np.array(img, dtype=np.uint8))  # [H, W] grey or [H, W, C], as record() saved it
        image = resize_uint8(array[None] if array.dim() == 2 else array.permute(2, 0, 1), self.image_size)
        return image.float().div_(127.5).sub_(1.0), torch.tensor(record["label"], dtype=torch.long)


def whole_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The collate function of :class:`TensorImageDataset` loaders: its ``__getitems__`` already made the batch."""
    return batch


def resize_uint8(images: Tensor, size: int, chunk: int = 8192) -> Tensor:
    """Resize [N, H, W] uint8 images to size x size (bilinear with antialiasing), staying uint8."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = []
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].unsqueeze(1).float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(x.round_().clamp_(0, 255).to(torch.uint8).squeeze(1))
    return torch.cat(out)


class MNISTDataModule(ImageDataModule):
    """MNIST digits, 1 x image_size x image_size in [-1, 1], labels 0-9.

    Args:
        data_dir: root that holds ``MNIST/raw`` (torchvision's layout). Unset: ``$LIGHTNING_GANS_DATA_DIR``, else
            ``data/``.
        download: fetch MNIST through torchvision when the files are missing (needs internet).
        image_size: side of the square images: 28 (native), 32 or 64 (resized).
        val_size: training digits held out for validation.
        batch_size: images per batch.
        num_workers: DataLoader worker processes.
        pin_memory: pin batches in page-locked memory (for GPU training).
        seed: seed of the train/validation split.
        on_device: hold the splits on the training device (the GPU) as uint8 tensors (47 MB for 60,000 digits) and
            gather each batch there by index, without DataLoader workers or host-to-device copies: the fastest input
            pipeline on a GPU. On a CPU it changes nothing but the worker count (0).
        streaming_dir: read the splits from LitData chunks written by ``lightning-gans optimize`` from an MNIST
            datamodule (a local folder or an s3://, gs://, azure:// URI) instead of ``MNIST/raw``: sharded across ranks
            and nodes, resumable mid-epoch; the digits are resized to ``image_size`` when read.
        streaming_cache_dir: where chunks of a remote ``streaming_dir`` are cached (default: a folder in the temp dir).
        max_train_images: train on a fixed subset of this many training digits (None: all of them; e.g. 1000 for a
            small-data run), the first N of a permutation seeded with ``subset_seed``, drawn after the ``val_size``
            validation digits are held out, so validation and test are unchanged and never enter it. Larger than the
            training split: an error at setup. Not with ``streaming_dir``: optimize a subset instead.
        subset_seed: seed of that subset: the same seed and ``max_train_images`` always keep the same training digits (a
            larger ``max_train_images`` keeps a superset), whatever the run's seed or the worker count.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        download: bool = True,
        image_size: int = 28,
        val_size: int = 5000,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 42,
        on_device: bool = False,
        streaming_dir: str | None = None,
        streaming_cache_dir: str | None = None,
        max_train_images: int | None = None,
        subset_seed: int = 0,
    ) -> None:
        if on_device and (num_workers or pin_memory):
            raise ValueError("on_device keeps MNIST on the training device: set num_workers 0 and pin_memory false")
        if on_device and streaming_dir is not None:
            raise ValueError("on_device holds MNIST in GPU memory and streaming_dir streams it: choose one")
        self.streaming_dir, self.streaming_cache_dir = streaming_dir, streaming_cache_dir
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            max_train_images=max_train_images,
            subset_seed=subset_seed,
        )
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8 (28, 32 or 64 are usual), got {image_size}")
        if not 0 <= val_size < 60000:
            raise ValueError(f"val_size must be in [0, 60000), got {val_size}")
        self.data_dir = resolve_data_dir(data_dir)
        self.download = download
        self.image_size = image_size
        self.val_size = val_size
        self.seed = seed
        self.on_device = on_device
        self.image_shape = (1, image_size, image_size)
        self.num_classes = 10
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def raw_folder(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    def _missing(self) -> list[str]:
        return [name for pair in _FILES.values() for name in pair if _find(self.raw_folder, name) is None]

    def prepare_data(self) -> None:
        missing = self._missing()
        if not missing:
            return
        if self.download:
            import torchvision

            try:
                for train in (True, False):
                    torchvision.datasets.MNIST(str(self.data_dir), train=train, download=True)
            except Exception as err:  # no network, a proxy, a read-only folder, ...
                raise DatasetNotFoundError(
                    missing_data_message(
                        "MNIST",
                        self.raw_folder,
                        f"the files {', '.join(missing)} (or their .gz)",
                        f"Downloading failed ({type(err).__name__}: {err}); copy the four files there by hand "
                        "or use a machine with internet.",
                    )
                ) from err
            return
        raise DatasetNotFoundError(
            missing_data_message(
                "MNIST",
                self.raw_folder,
                f"the files {', '.join(missing)} (or their .gz)",
                "Or set download=true (--data.init_args.download true) on a machine with internet.",
            )
        )

    def _load(self, split: str) -> tuple[Tensor, Tensor]:
        missing = self._missing()
        if missing:  # setup without prepare_data (e.g. a second node): same message
            self.download = False
            self.prepare_data()
        images_name, labels_name = _FILES[split]
        images = read_idx(_find(self.raw_folder, images_name))
        labels = read_idx(_find(self.raw_folder, labels_name))
        if len(images) != len(labels):
            raise ValueError(f"MNIST {split}: {len(images)} images but {len(labels)} labels in {self.raw_folder}")
        return resize_uint8(images, self.image_size), labels

    def setup(self, stage: str | None = None) -> None:
        if self.streaming_dir is not None:
            splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage, ("train", "val"))
            streamed = self._streaming_splits(splits)
            self.train_set = streamed.get("train", self.train_set)
            self.val_set = streamed.get("val", self.val_set)
            self.test_set = streamed.get("test", self.test_set)
            return
        if stage in (None, "fit", "validate") and self.train_set is None:
            images, labels = self._load("train")
            order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
            val_idx, train_idx = order[: self.val_size], order[self.val_size :]
            train_idx = self._limit_train(train_idx, "training digits")
            self.train_set = TensorImageDataset(images[train_idx], labels[train_idx])
            self.val_set = TensorImageDataset(images[val_idx], labels[val_idx])
        if stage in (None, "test") and self.test_set is None:
            self.test_set = TensorImageDataset(*self._load("test"))
        if self.on_device and self.trainer is not None:
            device = self.trainer.strategy.root_device
            for dataset in (self.train_set, self.val_set, self.test_set):
                if dataset is not None:
                    dataset.to(device)

    # ---------------------------------------------------------------- streaming
    def streaming_datasets(self, splits: tuple[str, ...]) -> dict[str, TensorImageDataset]:
        self.setup(None)
        sets = {"train": self.train_set, "val": self.val_set, "test": self.test_set}
        return {split: sets[split] for split in splits}

    def _decoder(self, split: str) -> _StreamedDigits:
        return _StreamedDigits(self.image_size)

    def train_dataloader(self) -> DataLoader:
        if self.streaming_dir is not None:
            return self._streaming_loader(self.train_set, train=True)
        return self._train_loader(self.train_set, drop_last=True, collate_fn=whole_batch)

    def val_dataloader(self) -> DataLoader:
        if self.streaming_dir is not None:
            return self._streaming_loader(self.val_set, train=False)
        return DataLoader(self.val_set, shuffle=False, collate_fn=whole_batch, **self._loader_kwargs())

    def test_dataloader(self) -> DataLoader:
        if self.streaming_dir is not None:
            return self._streaming_loader(self.test_set, train=False)
        return DataLoader(self.test_set, shuffle=False, collate_fn=whole_batch, **self._loader_kwargs())
