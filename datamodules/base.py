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
- ``max_train_images`` (with ``subset_seed``) keeps a fixed, seeded subset of the training split, taken after the
  validation images are held out; :meth:`ImageDataModule._limit_train` implements it once, each image datamodule
  passes its training items through it where it builds the split.

This package never imports ``lightning_gans``.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.errors import DatasetNotFoundError
from datamodules.transforms import verify_images

__all__ = [
    "DATA_DIR_ENV",
    "DatasetNotFoundError",
    "EpochOrder",
    "ImageDataModule",
    "ResumableDataLoader",
    "SplitFolderDataModule",
    "resolve_data_dir",
]

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


class EpochOrder(Sampler[int]):
    """A random order of ``n`` items fixed by ``seed`` (set by :class:`ResumableDataLoader` for each epoch)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seed = 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        # As torch's RandomSampler given a seed: one permutation from a generator seeded with it.
        yield from torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed)).tolist()


@contextlib.contextmanager
def _preserved_rng() -> Iterator[None]:
    """torch (CPU), numpy and Python RNG states as they were before the block."""
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def _world_size() -> int:
    """Processes sharing the epoch's order (1 outside torch.distributed)."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return torch.distributed.get_world_size() if distributed else 1


def _draw_seed() -> int:
    return int(torch.empty((), dtype=torch.int64).random_().item())


class ResumableDataLoader(DataLoader):
    """A shuffling training loader whose epochs resume exactly: mid-epoch, with worker processes, under DDP.

    Each epoch draws two seeds from torch's global RNG when its iterator is made, as a plain ``shuffle=True``
    DataLoader does: one for the worker processes (through the loader's own generator) and one for the order (the
    same permutation RandomSampler would make). Under DDP rank 0's seeds are broadcast, so every rank shards the same
    order. Its state (the epoch's seeds and how many batches it has handed out) is saved in checkpoints (Lightning
    saves a loader's ``state_dict``), so a resumed run rebuilds the same epoch and skips the batches already trained
    by drawing them again: the same order, the same worker RNG streams, the same augmentations. Workers are never
    persistent (a persistent worker's RNG would carry over from epochs a resumed run did not see), so every epoch
    starts its workers from its own seed.

    Takes DataLoader's arguments; ``shuffle`` is implied and ``persistent_workers``/``generator`` are its own.
    """

    def __init__(self, dataset: Dataset, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("shuffle", None)
        kwargs["persistent_workers"] = False
        sampler = kwargs.pop("sampler", None)
        # Lightning may rebuild the loader with a DistributedSamplerWrapper around the order: keep the inner order.
        self.order = getattr(getattr(sampler, "dataset", None), "_sampler", sampler) or EpochOrder(len(dataset))
        kwargs["generator"] = torch.Generator()
        super().__init__(dataset, *args, sampler=sampler or self.order, **kwargs)
        self._epoch = {"base_seed": 0, "order_seed": 0, "batches": 0}
        self._resume: dict[str, int] | None = None

    def _new_seeds(self) -> tuple[int, int]:
        seeds = torch.tensor([_draw_seed(), _draw_seed()])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(seeds, src=0)
        return int(seeds[0]), int(seeds[1])

    def __iter__(self):
        state, self._resume = self._resume, None
        if state is None or state["batches"] >= len(self):
            state = dict(zip(("base_seed", "order_seed"), self._new_seeds()), batches=0)
        skip = state["batches"]
        self._epoch = {**state, "batches": 0}
        self.generator.manual_seed(state["base_seed"])
        self.order.seed = state["order_seed"]
        iterator = super().__iter__()
        if skip:  # the batches trained before the checkpoint: drawn again (workers keep their RNG streams in step),
            # under the RNG state the checkpoint restored, which in-process randomness must not move
            with _preserved_rng():
                for _ in range(skip):
                    next(iterator)
            self._epoch["batches"] = skip
        for batch in iterator:
            self._epoch["batches"] += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {**self._epoch, "batch_size": int(self.batch_size or 1), "world_size": _world_size()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue the saved epoch. Saved with another batch size or number of processes, the position is mapped
        by samples: the epoch's order is the same permutation, sharded in turn across the processes, so the
        ``batches x batch_size x processes`` samples trained are a prefix of it; the run continues at the last whole
        new batch within that prefix (fewer than one new global batch of samples is drawn again), and says so."""
        resume = {k: int(state[k]) for k in ("base_seed", "order_seed", "batches")}
        before = (int(state.get("batch_size", self.batch_size or 1)), int(state.get("world_size", _world_size())))
        now = (int(self.batch_size or 1), _world_size())
        if before != now and resume["batches"]:
            trained = resume["batches"] * before[0] * before[1]
            resume["batches"] = trained // (now[0] * now[1])
            again = trained - resume["batches"] * now[0] * now[1]
            rank_zero_warn(
                f"resuming with batch size {now[0]} on {now[1]} process(es) where the checkpoint had batch size "
                f"{before[0]} on {before[1]}: the {trained:,} samples already trained in this epoch map to "
                f"{resume['batches']:,} batches of the new size; {again:,} of them are drawn again"
            )
        self._resume = resume


def check_training_count(count: int, batch_size: int, drop_last: bool, processes: int = 1) -> None:
    """A training set smaller than one batch (per process): an error where no step would run (an empty set, or
    incomplete batches dropped), else a warning that every step trains on the same few images."""
    per_process = math.ceil(count / processes)
    if per_process >= batch_size:
        return
    on = f" ({per_process} per process on {processes})" if processes > 1 else ""
    if per_process == 0:
        raise ValueError(
            f"the training set is empty ({count} images{on}): check the data folder and the validation split "
            "(val_size / val_fraction), which may have taken every image"
        )
    if drop_last:
        raise ValueError(
            f"the training set has {count} images{on}, fewer than one batch of batch_size={batch_size}, and "
            f"incomplete batches are dropped: no training step would run. Set data.init_args.batch_size to at most "
            f"{per_process}, or give the datamodule more images"
        )
    rank_zero_warn(
        f"the training set has {count} images{on}, fewer than batch_size={batch_size}: every step trains on the "
        f"same {per_process} images, one batch per epoch. Training goes on (right for a few-image run); otherwise "
        f"lower data.init_args.batch_size or give the datamodule more images"
    )


class ImageDataModule(L.LightningDataModule):
    """Base for image datamodules: the ``image_shape``/``num_classes`` contract, common loader settings and the
    training subset (``max_train_images``).

    Subclasses set ``self.image_shape`` and ``self.num_classes`` in ``__init__``, and pass the items of their
    training split (indices, file names, pairs) through :meth:`_limit_train` where they build it, after holding out
    the validation images.

    Args:
        batch_size: images per batch.
        num_workers: DataLoader worker processes.
        pin_memory: pin batches in page-locked memory.
        max_train_images: train on a fixed subset of this many training images (None: all of them).
        subset_seed: seed of the permutation that picks that subset.
    """

    image_shape: tuple[int, int, int]
    num_classes: int = 0

    def __init__(
        self,
        *,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        max_train_images: int | None = None,
        subset_seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be 0 or more, got {num_workers}")
        if max_train_images is not None and (
            isinstance(max_train_images, bool) or not isinstance(max_train_images, int) or max_train_images < 1
        ):
            raise ValueError(
                f"max_train_images must be a whole number of at least 1 (the training images to keep), or None to "
                f"train on the whole training split; got {max_train_images!r}"
            )
        if isinstance(subset_seed, bool) or not isinstance(subset_seed, int):
            raise ValueError(f"subset_seed must be an integer, got {subset_seed!r}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.max_train_images = max_train_images
        self.subset_seed = subset_seed
        self._subset_reported: set[str] = set()

    # ---------------------------------------------------------------- the training subset (max_train_images)
    def _subset_generator(self) -> torch.Generator:
        """A generator seeded with ``subset_seed``: the draws never touch (nor depend on) the global RNGs."""
        return torch.Generator().manual_seed(self.subset_seed)

    def _limit_train(
        self, items: Sequence | torch.Tensor, what: str = "training images", generator: torch.Generator | None = None
    ) -> Sequence | torch.Tensor:
        """``items`` (the training split: indices, files, pairs...) cut to ``max_train_images`` of them.

        Unset, ``items`` come back as they are (the very object). Set to N, the kept items are the first N of a
        permutation of ``range(len(items))`` drawn by ``torch.randperm`` from a generator seeded with
        ``subset_seed`` (or from ``generator``, for a second draw such as CycleGAN's domain B), returned in their
        order in ``items``: the same split, N and seed always keep the same items, whatever the global RNG or the
        worker count, and a larger N keeps a superset. A tensor gives a tensor, anything else a list. Says once
        (``rank_zero_info``) what was kept.

        Raises:
            ValueError: N is larger than the training split, naming the option, N and the split's size.
        """
        if self.max_train_images is None:
            return items
        keep, count = self.max_train_images, len(items)
        if keep > count:
            raise ValueError(
                f"max_train_images={keep} is larger than the training split of {type(self).__name__}, which has "
                f"{count} {what}: set max_train_images to at most {count} "
                f"(--data.init_args.max_train_images {count}), or to None to train on all of them"
            )
        order = torch.randperm(count, generator=generator or self._subset_generator())
        kept = sorted(order[:keep].tolist())
        message = f"max_train_images: kept {keep} of {count} {what} (seed {self.subset_seed})"
        if message not in self._subset_reported:
            self._subset_reported.add(message)
            rank_zero_info(message)
        if isinstance(items, torch.Tensor):
            return items[torch.tensor(kept, dtype=torch.long)]
        return [items[i] for i in kept]

    def _loader_kwargs(self) -> dict:
        # Workers are not persistent: each loader's iterator starts them from seeds of its own, so a resumed run
        # sees the same worker RNG streams as an uninterrupted one (see ResumableDataLoader).
        return {"batch_size": self.batch_size, "num_workers": self.num_workers, "pin_memory": self.pin_memory}

    # ---------------------------------------------------------------- streaming (datamodules.streaming)
    streaming_dir: str | None = None
    streaming_cache_dir: str | None = None

    def streaming_arguments(self) -> dict:
        """The datamodule's plain settings (recorded in an optimize output's manifest, for the reader)."""
        simple = (int, float, str, bool, type(None))
        return {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(self).items()
            if not k.startswith(("_", "streaming", "prepare_data", "allow_zero"))
            and k != "trainer"
            and isinstance(v, (*simple, Path))
        }

    def streaming_meta(self) -> dict:
        """What a streamed datamodule needs besides the records (attribute names, a vocabulary...)."""
        return {}

    def load_streaming_meta(self, manifest: dict) -> None:
        """Take :meth:`streaming_meta` back from a manifest, and refuse chunks this configuration cannot read."""

    def streaming_datasets(self, splits: tuple[str, ...]) -> dict[str, Dataset]:
        """The folder datasets of ``splits`` (each with ``record``/``decode``), for ``lightning-gans optimize``."""
        raise NotImplementedError(f"{type(self).__name__} cannot be optimized into streaming chunks")

    def _decoder(self, split: str) -> Any:
        """An object whose ``decode(record)`` makes the item of ``split`` from a record, as the folder dataset does."""
        raise NotImplementedError

    def _streaming_seed(self) -> int:
        """The shuffle seed of the streamed training split: the run's seed (``seed_everything``), the same on every
        rank (rank 0's is broadcast), so the ranks shard one order."""
        seed = torch.initial_seed() % 2**31
        if self.trainer is not None and self.trainer.world_size > 1:
            seed = self.trainer.strategy.broadcast(seed, src=0)
        return int(seed)

    _manifest: dict | None = None  # streaming_dir's manifest, once read

    def streaming_manifest(self) -> dict:
        """The manifest of ``streaming_dir``, read once, after checking what wrote it; its metadata is loaded."""
        if self._manifest is None:
            from datamodules.streaming import check_written_by, read_manifest

            manifest = read_manifest(str(self.streaming_dir), self.streaming_cache_dir)
            check_written_by(manifest, str(self.streaming_dir), self)
            self.load_streaming_meta(manifest)
            self._manifest = manifest
        return self._manifest

    def _streaming_splits(self, splits: tuple[str, ...]) -> dict[str, Dataset]:
        """The streamed datasets of ``splits`` from ``streaming_dir``."""
        from datamodules.streaming import streaming_split

        uri = str(self.streaming_dir)
        if self.max_train_images is not None:
            raise ValueError(
                f"max_train_images={self.max_train_images} keeps a subset of the training images read from the "
                f"folder, but streaming_dir '{uri}' streams its chunks as they were written: unset one of them. To "
                f"stream a subset, write it: `lightning-gans optimize ... --data.init_args.max_train_images "
                f"{self.max_train_images}` puts only those training images in the chunks; stream that output "
                "without max_train_images"
            )
        manifest = self.streaming_manifest()
        seed = self._streaming_seed()
        out = {}
        for split in splits:
            if split not in manifest["splits"]:
                raise DatasetNotFoundError(
                    f"streaming_dir '{uri}' has no '{split}' split (it has {', '.join(manifest['splits']) or 'none'}): "
                    f"run `lightning-gans optimize` with that split, or read it from the folder"
                )
            if not manifest["splits"][split]:  # empty when it was written (no validation images)
                out[split] = []
                continue
            out[split] = streaming_split(
                uri, split, self._decoder(split), train=split == "train", seed=seed, cache_dir=self.streaming_cache_dir
            )
        if "train" in out and not len(out["train"]):
            raise DatasetNotFoundError(f"streaming_dir '{uri}' has an empty training split: optimize images")
        return out

    def _streaming_loader(self, dataset: Any, train: bool, **overrides: Any) -> DataLoader:
        """LitData's ``StreamingDataLoader`` (its ``state_dict`` resumes mid-epoch); training drops the incomplete
        last batch, so every rank runs as many steps."""
        from datamodules.streaming import StreamingLoader

        kwargs = self._loader_kwargs() | overrides
        if isinstance(dataset, list):  # a split that was empty when written
            return DataLoader(dataset, **kwargs)
        if train:
            processes = self.trainer.world_size if self.trainer is not None else 1
            check_training_count(len(dataset) * processes, kwargs["batch_size"], True, processes)
        # Its own generator: the workers' base seed is not drawn from the global RNG, which a checkpoint restores
        # (a resumed run would otherwise draw it at another point of the stream); records are decoded under RNGs
        # seeded per sample anyway (datamodules.streaming).
        return StreamingLoader(dataset, drop_last=train, generator=torch.Generator(), **kwargs)

    def _train_loader(self, dataset: Dataset, drop_last: bool = False, **overrides: Any) -> ResumableDataLoader:
        """The shuffled training loader, resumable mid-epoch (see :class:`ResumableDataLoader`), after
        :func:`check_training_count` (a training set smaller than one batch)."""
        kwargs = self._loader_kwargs() | overrides
        processes = self.trainer.world_size if self.trainer is not None else 1
        check_training_count(len(dataset), kwargs["batch_size"], drop_last, processes)
        return ResumableDataLoader(dataset, drop_last=drop_last, **kwargs)


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
        if self.verify and self.streaming_dir is None:
            files = sorted({f for split in splits for f in self.datasets[split].image_files()})
            verify_images(files, f"images of {type(self).__name__} ({', '.join(splits)})")

    def _loader(self, key: str, **overrides) -> DataLoader:
        if key not in self.datasets:
            self.setup(self._SPLIT_STAGE[key])
        if self.streaming_dir is not None and key != "predict":
            return self._streaming_loader(self.datasets[key], train=False, **overrides)
        return DataLoader(self.datasets[key], shuffle=False, **(self._loader_kwargs() | overrides))

    def train_dataloader(self) -> DataLoader:
        if "train" not in self.datasets:
            self.setup("fit")
        if self.streaming_dir is not None:
            return self._streaming_loader(self.datasets["train"], train=True)
        return self._train_loader(self.datasets["train"])

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", batch_size=1)
