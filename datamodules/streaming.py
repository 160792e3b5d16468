"""Datasets streamed from LitData chunks: ``lightning-gans optimize`` writes them, the image datamodules read them
(their ``streaming_dir`` option), sharded across ranks and nodes and resumable mid-epoch.

An optimized dataset is a folder, local or an ``s3://``, ``gs://``, ``azure://`` URI (what LitData reads):

- ``<split>/`` (``train``, ``val``, ``test``): one LitData dataset per split, its ``index.json`` and chunks;
- ``manifest/``: a one-sample LitData dataset holding the manifest (which datamodule wrote it, with which arguments,
  the splits and their sizes, the datamodule's metadata such as attribute names). It is written last, so a folder
  without it is a half-written output; it is read through LitData like the chunks, so a bucket needs nothing else.

A sample is a *record*: what the folder dataset reads from disk for one item before decoding it (the encoded image
files' bytes, labels, attributes, captions). Each streamable folder dataset has ``record(index)`` and
``decode(record)`` and is itself ``decode(record(index))``, so a streamed item goes through the very transforms of
the folder's. Random transforms draw from torch's RNG seeded by (seed, epoch, sample), so a resumed epoch, with any
number of workers, makes the same augmentations as an uninterrupted one (a decoder whose ``random`` is False is not
seeded).

This module never imports ``lightning_gans``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litdata
import torch
from litdata.streaming.sampler import ChunkedIndex
from PIL import Image

from datamodules.errors import DatasetNotFoundError

__all__ = ["MANIFEST", "StreamingLoader", "StreamingSplit", "is_remote", "optimize", "read_manifest", "streaming_split"]

MANIFEST = "manifest"
FORMAT = 1
_REMOTE = ("s3://", "gs://", "azure://", "hf://")


def is_remote(uri: str) -> bool:
    return str(uri).startswith(_REMOTE)


def _join(uri: str, name: str) -> str:
    return f"{str(uri).rstrip('/')}/{name}" if is_remote(uri) else str(Path(uri).expanduser() / name)


# ============================================================================================ writing
def _reencode(data: bytes, min_side: int | None, image_format: str, quality: int) -> bytes:
    """The image ``data`` resized so its shorter side is at most ``min_side`` (bicubic, antialiased) and saved as
    ``image_format`` (``jpeg``/``png``); ``source`` with no size keeps the bytes."""
    if image_format == "source" and min_side is None:
        return data
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        fmt = (img.format or "PNG").lower() if image_format == "source" else image_format
        if min_side is not None and min(img.size) > min_side:
            scale = min_side / min(img.size)
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            img = img.resize(size, Image.Resampling.BICUBIC, reducing_gap=None)
        if fmt in ("jpeg", "jpg") and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        out = io.BytesIO()
        img.save(out, format="JPEG" if fmt in ("jpeg", "jpg") else fmt.upper(), quality=quality)
        return out.getvalue()


class _Records:
    """``fn(index)`` for ``litdata.optimize``: the record of item ``index``, images re-encoded as asked (picklable,
    so LitData's worker processes can run it)."""

    def __init__(self, dataset: Any, min_side: int | None, image_format: str, quality: int) -> None:
        self.dataset, self.min_side, self.image_format, self.quality = dataset, min_side, image_format, quality

    def __call__(self, index: int) -> dict:
        record = self.dataset.record(index)
        for key, value in record.items():
            if key.startswith("image") and isinstance(value, bytes) and value:
                record[key] = _reencode(value, self.min_side, self.image_format, self.quality)
        return record


def _check_empty(output_dir: str) -> None:
    if is_remote(output_dir):
        return  # LitData refuses a bucket prefix that already holds a dataset
    path = Path(output_dir).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(
            f"'{path}' is not empty: optimize writes into a new or empty folder and never over an earlier output. "
            "Choose another output_dir, or delete this one first if it is a stale or half-written output."
        )


def optimize(
    datamodule: Any,
    output_dir: str,
    *,
    splits: tuple[str, ...] = ("train", "val", "test"),
    min_side: int | None = None,
    image_format: str = "source",
    quality: int = 95,
    num_workers: int = 1,
    chunk_bytes: str = "64MB",
) -> dict:
    """Write ``datamodule``'s splits as LitData chunks into ``output_dir``; returns the manifest.

    Args:
        datamodule: a streamable datamodule (``streaming_datasets()``), configured as it reads the folder.
        output_dir: a new or empty local folder, or an ``s3://``/``gs://``/``azure://`` URI.
        splits: which splits to write (those the datamodule has).
        min_side: re-encode every image so its shorter side is at most this (None: keep the size).
        image_format: ``source`` (keep the files' bytes when no resize), ``jpeg`` or ``png``.
        quality: JPEG quality when re-encoding.
        num_workers: LitData worker processes.
        chunk_bytes: target size of one chunk.
    """
    if image_format not in ("source", "jpeg", "png"):
        raise ValueError(f"unknown image_format {image_format!r}; valid values: source, jpeg, png")
    if min_side is not None and min_side < 1:
        raise ValueError(f"min_side must be positive, got {min_side}")
    _check_empty(output_dir)
    datasets = datamodule.streaming_datasets(tuple(splits))
    counts = {}
    for split, dataset in datasets.items():
        counts[split] = len(dataset)
        if not len(dataset):  # an empty split (no validation images): recorded, nothing to write
            continue
        litdata.optimize(
            fn=_Records(dataset, min_side, image_format, quality),
            inputs=list(range(len(dataset))),
            output_dir=_join(output_dir, split),
            chunk_bytes=chunk_bytes,
            num_workers=max(1, num_workers),
            reorder_files=False,
            start_method=_start_method(),
        )
    manifest = {
        "format": FORMAT,
        "datamodule": type(datamodule).__name__,
        "arguments": datamodule.streaming_arguments(),
        "splits": counts,
        "min_side": min_side,
        "image_format": image_format,
        "meta": datamodule.streaming_meta(),
    }
    litdata.optimize(
        fn=_manifest_sample,
        inputs=[json.dumps(manifest)],
        output_dir=_join(output_dir, MANIFEST),
        chunk_bytes="1MB",
        num_workers=1,
        start_method=_start_method(),
        verbose=False,
    )
    return manifest


def _start_method() -> str:
    """``fork`` where there is one: the workers only read files and encode images, and start in milliseconds instead
    of re-importing torch (spawn, LitData's default: seconds per split)."""
    import multiprocessing as mp

    return "fork" if "fork" in mp.get_all_start_methods() else "spawn"


def _manifest_sample(text: str) -> dict:
    return {"manifest": text}


# ============================================================================================ reading
def _unreadable(uri: str, what: str, err: BaseException) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"cannot read the streaming dataset at '{uri}' ({what}: {type(err).__name__}: {err}). Check the path or URI, "
        "the credentials (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*) and the network, or write the dataset with "
        "`lightning-gans optimize --data ... --output_dir DIR` and point --data.init_args.streaming_dir at DIR."
    )


def read_manifest(uri: str, cache_dir: str | None = None) -> dict:
    """The manifest of an optimized dataset; a clear error when the folder is missing, half-written or unreachable."""
    if not is_remote(uri):
        path = Path(uri).expanduser()
        if not path.is_dir():
            raise DatasetNotFoundError(
                f"streaming_dir '{uri}' does not exist (resolved to '{path.resolve()}'). Write it with "
                "`lightning-gans optimize --data ... --output_dir DIR`, or point --data.init_args.streaming_dir at "
                "an optimized dataset (a local folder or an s3://, gs://, azure:// URI)."
            )
        if not (path / MANIFEST / "index.json").is_file():
            found = sorted(p.name for p in path.iterdir())
            raise DatasetNotFoundError(
                f"streaming_dir '{uri}' has no finished optimize output (no {MANIFEST}/index.json; it holds "
                f"{', '.join(found) or 'nothing'}): `lightning-gans optimize` was interrupted or wrote elsewhere. "
                "Delete the folder and run optimize again."
            )
    try:
        dataset = litdata.StreamingDataset(
            _join(uri, MANIFEST), cache_dir=_cache(cache_dir, uri, MANIFEST), storage_options=_fail_fast(uri)
        )
        manifest = json.loads(dataset[0]["manifest"])
    except DatasetNotFoundError:
        raise
    except Exception as err:  # a missing bucket, no credentials, no network, a foreign folder...
        raise _unreadable(uri, "its manifest", err) from err
    if manifest.get("format") != FORMAT:
        raise DatasetNotFoundError(
            f"streaming_dir '{uri}' was written in format {manifest.get('format')!r}; this version reads format "
            f"{FORMAT}: run `lightning-gans optimize` again"
        )
    return manifest


def _fail_fast(uri: str) -> dict | None:
    """For the manifest of an s3:// dataset, a client that gives up after 3 tries and 10 s connection timeouts
    (LitData's own retries up to 1000 times: right for chunks during training, hours of waiting for a wrong URI)."""
    if not str(uri).startswith("s3://"):
        return None
    import botocore.config

    config = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10)
    return {"config": config}


def _cache(cache_dir: str | None, uri: str, split: str) -> str | None:
    """A cache folder per dataset and split for remote data (None: LitData's default); local data needs none."""
    if not is_remote(uri):
        return None
    root = Path(cache_dir).expanduser() if cache_dir else Path(tempfile.gettempdir()) / "lightning_gans_chunks"
    return str(root / hashlib.sha1(uri.encode()).hexdigest()[:16] / split)


@contextlib.contextmanager
def _seeded(seed: int, epoch: int, sample: int) -> Iterator[None]:
    """torch's CPU RNG (the one the datamodules' random transforms draw from) seeded from (seed, epoch, sample) inside
    the block, restored after it."""
    state = torch.get_rng_state()
    # the CPU generator only (torch.manual_seed also queues CUDA seeding, which costs more than the decode)
    torch.default_generator.manual_seed(((seed * 1_000_003 + epoch) * 1_000_033 + sample) % 2**63)
    try:
        yield
    finally:
        torch.set_rng_state(state)


class StreamingSplit(litdata.StreamingDataset):
    """One split of an optimized dataset: LitData's ``StreamingDataset`` (sharding by rank, node and worker,
    shuffling by chunks, ``state_dict`` for mid-epoch resume) whose records go through ``decoder.decode``."""

    def __init__(self, input_dir: str, decoder: Any, *, shuffle: bool, drop_last: bool, seed: int, **kwargs: Any):
        super().__init__(input_dir, shuffle=shuffle, drop_last=drop_last, seed=seed, **kwargs)
        self.decoder = decoder

    def __getitem__(self, index: Any) -> Any:
        record = super().__getitem__(index)
        if not getattr(self.decoder, "random", True):  # deterministic transforms (evaluation, faces): no seeding
            return self.decoder.decode(record)
        sample = index.index if isinstance(index, ChunkedIndex) else int(index)
        with _seeded(self.seed, self.current_epoch, sample):
            return self.decoder.decode(record)


class StreamingLoader(litdata.StreamingDataLoader):
    """LitData's ``StreamingDataLoader``, mended for Lightning's mid-epoch resume.

    After ``load_state_dict`` LitData continues the saved epoch in the next ``__iter__`` and keeps that "restore" flag
    until an iterator runs to its end. Lightning stops at the epoch's known length without exhausting the iterator,
    so the next epoch's ``__iter__`` would restore again and repeat the epoch's last batch. Here a restore applies to
    the first iteration after ``load_state_dict`` only."""

    _restored_once = True

    def load_state_dict(self, obj: dict[str, Any]) -> None:
        super().load_state_dict(obj)
        self._restored_once = False

    def __iter__(self) -> Any:
        if getattr(self, "restore", False) and self._restored_once:  # the restored epoch was iterated already
            self.restore = False
        self._restored_once = True
        return super().__iter__()


def streaming_split(
    uri: str,
    split: str,
    decoder: Any,
    *,
    train: bool,
    seed: int,
    cache_dir: str | None = None,
) -> Any:
    """The ``StreamingSplit`` of ``split`` under ``uri``: shuffled with ``drop_last`` (every rank gets as many samples)
    for training, in order otherwise."""
    try:
        return StreamingSplit(
            _join(uri, split),
            decoder,
            shuffle=train,
            drop_last=train,
            seed=seed,
            cache_dir=_cache(cache_dir, uri, split),
        )
    except Exception as err:
        raise _unreadable(uri, f"split '{split}'", err) from err


def check_written_by(manifest: dict, uri: str, datamodule: Any) -> None:
    """Refuse chunks written from another kind of dataset."""
    wrote, reads = manifest.get("datamodule"), type(datamodule).__name__
    if wrote != reads:
        raise DatasetNotFoundError(
            f"streaming_dir '{uri}' was written from a {wrote} dataset, but this datamodule is {reads}: set "
            f"--data.class_path to {wrote}, or point streaming_dir at an optimize output of a {reads} dataset"
        )
