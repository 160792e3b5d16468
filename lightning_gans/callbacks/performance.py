"""The GPU path: channels-last memory format and ``torch.compile`` of a family's networks, by option.

Mixed precision needs nothing from a family (every loss works on logits, so ``--trainer.precision bf16-mixed`` or
``16-mixed`` just works); :class:`Performance` adds the two other switches of a fast GPU run:

- ``channels_last``: the networks' 4-D weights in NHWC, which tensor cores (and cuDNN's convolutions) prefer;
  inputs follow the weights' layout inside the convolutions, so nothing else changes.
- ``compile``: ``nn.Module.compile()`` on each trainable network (``generator``, ``discriminator``, ``encoder``, ...),
  in place, so parameter names, checkpoints and the EMA copy are unaffected; the first steps are slow while
  TorchDynamo traces, and a step that changes shape (the last, smaller batch) compiles once more (use
  ``drop_last``-style loaders, as the training loaders are where it matters).

``lightning-gans fit --config ... --trainer.precision bf16-mixed --performance.channels_last true
--performance.compile true``. Both are off by default; on a CPU they work but gain little.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn


def trainable_networks(module: nn.Module) -> dict[str, nn.Module]:
    """The child networks with trainable parameters (not the frozen EMA copy or metric extractors)."""
    return {name: child for name, child in module.named_children() if any(p.requires_grad for p in child.parameters())}


class Performance(L.Callback):
    """Channels-last weights and/or compiled forward passes for the model's networks (see the module docstring).

    Args:
        channels_last: convert the networks (and the EMA copy) to the channels-last memory format.
        compile: compile each trainable network's forward with ``torch.compile`` (``nn.Module.compile``).
        compile_mode: ``torch.compile``'s mode (``default``, ``reduce-overhead``, ``max-autotune``).
    """

    def __init__(self, channels_last: bool = False, compile: bool = False, compile_mode: str = "default") -> None:
        if compile_mode not in ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"):
            raise ValueError(f"unknown compile_mode {compile_mode!r}; use default, reduce-overhead or max-autotune")
        self.channels_last, self.compile, self.compile_mode = channels_last, compile, compile_mode
        self.compiled: list[str] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.channels_last:
            pl_module.to(memory_format=torch.channels_last)
        if self.compile and stage == "fit":
            for name, net in trainable_networks(pl_module).items():
                net.compile(mode=self.compile_mode)
                self.compiled.append(name)


__all__ = ["Performance", "trainable_networks"]
