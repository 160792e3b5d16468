"""Run a benchmark function in a fresh process (``spawn``), so that its timings and peak memory are its own."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from queue import Empty
from typing import Any


def in_process(fn: Callable[[dict, Any], None], args: dict) -> Any:
    """``fn(args, queue)`` in a new process; returns what it put on the queue, or exits when the process died first
    (its traceback is printed above) instead of waiting forever."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=fn, args=(args, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not proc.is_alive():
                raise SystemExit(f"{fn.__name__} failed in its process (its traceback is above)") from None
    proc.join()
    return result
