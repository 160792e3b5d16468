"""Integer counts kept as buffers (saved in checkpoints, moved with the model) and read on the host without a sync.

Reading a count buffer each step (``int(self.count)``) copies it from the GPU and so waits for every queued kernel.
:class:`HostCount` keeps the value on the host as well: read from the buffer once (after construction or a
``load_state_dict``, which a checkpoint restore is), then written to both by :meth:`~HostCount.set`, so a resumed run
continues from the saved count.
"""

from __future__ import annotations

from torch import Tensor, nn


class HostCount:
    """The host value of the 0-d integer buffer ``name`` of ``module`` (see the module docstring)."""

    def __init__(self, module: nn.Module, name: str) -> None:
        self.module, self.name, self._value = module, name, None
        module.register_load_state_dict_post_hook(self._forget)

    def _forget(self, module: nn.Module, incompatible_keys: object) -> None:
        self._value = None

    @property
    def buffer(self) -> Tensor:
        return getattr(self.module, self.name)

    def get(self) -> int:
        if self._value is None:
            self._value = int(self.buffer)  # the one read, after construction or a load
        return self._value

    def set(self, value: int) -> int:
        self.buffer.fill_(value)
        self._value = int(value)
        return self._value

    def add(self, n: int) -> int:
        return self.set(self.get() + n)


__all__ = ["HostCount"]
