"""Count the places where Python reads a tensor's value: on a GPU each one waits for every queued kernel.

``.item()``, ``float(t)``, ``int(t)``, ``bool(t)`` (an ``if`` on a tensor), ``.tolist()``, ``.numpy()`` and indexing
with a tensor copy a value from the device to the host, so the CPU stops queueing work until the GPU has finished
everything before it; ``torch.tensor(x, device=...)`` copies host data the other way and also synchronises
(PyTorch's tuning guide: avoid unnecessary CPU-GPU synchronisation). A loop with such a read in every step runs at
the speed of its slowest round trip. :func:`count_host_reads` wraps those Tensor methods and records where each read
comes from, so that a test or a benchmark can count the reads of a training step on any machine, a CPU included
(where they cost nothing, which is why they go unnoticed)::

    with count_host_reads() as reads:
        trainer.fit(model, loader)
    print(reads.total, reads.by_site())

Reads that never wait for a GPU are sorted out by where they happen: inside ``torch.optim`` (the optimizers' step
counters live on the CPU unless ``capturable``/``fused``) and inside ``torch.utils.data`` (data loading works on
host tensors before the batch moves to the device). They are kept apart (``reads.host``) and not in ``total``.
Counting can be paused and resumed (``reads.active``), e.g. to count only the steady-state batches of a run.
"""

from __future__ import annotations

import collections
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

#: Tensor methods that read a value on the host.
READ_METHODS = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy")
_TORCH = f"{torch.__path__[0]}/"
_HOST_ONLY = (f"{_TORCH}optim/", f"{_TORCH}utils/data/")
_PROJECT = ("/lightning_gans/", "/datamodules/")


@dataclass
class HostReads:
    """The reads seen while :func:`count_host_reads` was active (see the module docstring)."""

    active: bool = True
    #: (what, where) -> count, for reads that wait for the device: ``where`` is the innermost frame outside torch
    reads: collections.Counter = field(default_factory=collections.Counter)
    #: reads of host-only tensors (optimizer step counters, data loading), for information
    host: collections.Counter = field(default_factory=collections.Counter)
    #: (what, where) of the reads made from this project's code (a frame of lightning_gans/ or datamodules/)
    project: collections.Counter = field(default_factory=collections.Counter)

    @property
    def total(self) -> int:
        return sum(self.reads.values())

    @property
    def total_project(self) -> int:
        return sum(self.project.values())

    def by_site(self, n: int = 10) -> list[tuple[str, int]]:
        """The ``n`` most frequent reads as ``("what at file:line in function", count)``."""
        return [(f"{what} at {where}", count) for (what, where), count in self.reads.most_common(n)]

    def clear(self) -> None:
        self.reads.clear()
        self.host.clear()
        self.project.clear()

    def _record(self, what: str) -> None:
        frame = sys._getframe(2)  # the caller of the wrapped method
        files = []
        while frame is not None and len(files) < 40:
            files.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
            frame = frame.f_back
        if files and files[0][0].startswith(_HOST_ONLY) or any(f[0].startswith(f"{_TORCH}utils/data/") for f in files):
            self.host[(what, _where(files))] += 1
            return
        key = (what, _where(files))
        self.reads[key] += 1
        if any(any(p in f[0] for p in _PROJECT) for f in files):
            self.project[key] += 1


def _where(files: list[tuple[str, int, str]]) -> str:
    for filename, line, name in files:
        if not filename.startswith(_TORCH):
            short = filename.split("site-packages/")[-1]
            for marker in _PROJECT:
                if marker in short:
                    short = marker.strip("/") + "/" + short.split(marker, 1)[1]
                    break
            return f"{short}:{line} in {name}"
    return "torch"


@contextlib.contextmanager
def count_host_reads(active: bool = True) -> Iterator[HostReads]:
    """Record every host read of a tensor (and host-to-device ``torch.tensor(..., device=...)``) in the block.

    Not thread-safe and slow while active (it walks the stack at each read): for tests and benchmarks only.
    """
    counts = HostReads(active=active)
    originals: dict[str, Any] = {name: getattr(torch.Tensor, name) for name in READ_METHODS}

    def wrap(name: str, method: Any) -> Any:
        def read(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if counts.active:
                counts._record(name)
            return method(self, *args, **kwargs)

        return read

    make_tensor = torch.tensor

    def tensor(data: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        device = kwargs.get("device")
        if counts.active and device is not None and not isinstance(data, torch.Tensor):
            counts._record("torch.tensor(host data, device=...)")
        return make_tensor(data, *args, **kwargs)

    for name, method in originals.items():
        setattr(torch.Tensor, name, wrap(name, method))
    torch.tensor = tensor
    try:
        yield counts
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)
        torch.tensor = make_tensor


__all__ = ["READ_METHODS", "HostReads", "count_host_reads"]
