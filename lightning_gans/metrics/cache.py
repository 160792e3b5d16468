"""On-disk cache of real-image features, so the real half of FID/KID/precision-recall is computed once.

FID compares statistics of real and generated features. The real half depends only on the data and the feature
extractor, and for Inception it is the expensive half (10,000 forward passes at 299x299), so it is computed once and
stored. An entry holds the real features themselves (``float32 [N, D]``; FID's mean and covariance, KID's kernel and
the k-NN radii of precision/recall are all computed from them) and, for extractors with class logits, the real logits
(the class histogram of mode coverage).

An entry is keyed by everything that changes the features: the dataset (datamodule class and its settings), the
split, the transforms, the number of real images, a probe of the first and last image, and the extractor (name,
resize, digest of its weights file). The parts are stored next to the entry in a readable ``.json`` file. A key is the
SHA-1 of the parts, so an entry is never reused for a different set-up; a stale entry is just never found again.

Location: ``$LIGHTNING_GANS_CACHE`` when set, else ``~/.cache/lightning_gans``; entries are under ``real_stats/``.
Delete the folder to clear the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

CACHE_ENV = "LIGHTNING_GANS_CACHE"
CACHE_FORMAT = 1

_DIGESTS: dict[tuple[str, int, int], str] = {}


def default_cache_dir() -> Path:
    """``$LIGHTNING_GANS_CACHE`` when set, else ``~/.cache/lightning_gans``."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/lightning_gans").expanduser()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes (memoised per path, size and modification time)."""
    p = Path(path).resolve()
    st = p.stat()
    memo = (str(p), st.st_size, st.st_mtime_ns)
    if memo not in _DIGESTS:
        h = hashlib.sha1()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[memo] = h.hexdigest()
    return _DIGESTS[memo]


def tensor_digest(x: Any) -> str:
    """SHA-1 of a tensor's (or array's, or PIL image's) values, for probing a dataset's content."""
    if not isinstance(x, torch.Tensor):
        import numpy as np

        x = torch.from_numpy(np.ascontiguousarray(np.asarray(x)))
    x = x.detach().cpu().contiguous()
    h = hashlib.sha1(str((tuple(x.shape), str(x.dtype))).encode())
    h.update(x.view(torch.uint8).numpy().tobytes() if x.numel() else b"")
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    """Turn settings into JSON-stable data; anything else becomes its ``repr``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return str(Path(value).expanduser().resolve())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def cache_key(parts: Mapping[str, Any]) -> str:
    """The SHA-1 of the JSON of ``parts`` (sorted keys): the file name of an entry."""
    blob = json.dumps({"format": CACHE_FORMAT, **_jsonable(dict(parts))}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()


class RealFeatureCache:
    """A folder of cached real features: ``<root>/<key>.pt`` plus ``<root>/<key>.json`` describing the key.

    Args:
        root: the folder; default ``default_cache_dir() / "real_stats"``.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir() / "real_stats"
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def load(self, key: str) -> dict[str, Any] | None:
        """The entry (``{"features": Tensor, "logits": Tensor | None, "parts": dict}``) or ``None`` when absent.

        An unreadable entry (truncated by a crash, older format) counts as absent.
        """
        path = self.path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a broken file is a miss; it is overwritten by the next save
            self.misses += 1
            return None
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def save(
        self,
        key: str,
        features: torch.Tensor,
        logits: torch.Tensor | None = None,
        parts: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write an entry atomically (a temporary file renamed into place), with its parts as JSON beside it."""
        self.root.mkdir(parents=True, exist_ok=True)
        parts = _jsonable(dict(parts or {}))
        entry = {
            "format": CACHE_FORMAT,
            "features": features.detach().to("cpu", torch.float32).contiguous(),
            "logits": None if logits is None else logits.detach().to("cpu", torch.float32).contiguous(),
            "parts": json.dumps(parts, sort_keys=True),
            "created": time.time(),
        }
        path = self.path(key)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(entry, tmp)
        os.replace(tmp, path)
        meta = {"key": key, "num_samples": int(features.shape[0]), "num_features": int(features.shape[1]), **parts}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return path
