"""DDP for GANs: one DistributedDataParallel wrapper per network instead of one around the whole module.

Lightning's ``ddp`` wraps the LightningModule in a single DDP. With manual optimisation a GAN's D step leaves G's
parameters without gradients (and the G step D's), so plain DDP stops with "Expected to have finished reduction in
the prior iteration ... parameters that were not used in producing the loss" (Lightning #20328, #20866), and
``find_unused_parameters=True`` both slows every step and still all-reduces the frozen network's gradients.

Here each trainable child network (``generator``, ``discriminator``, ``encoder``, ...) gets its own DDP, as
StudioGAN and stylegan2-ada do (and Lightning PR #20936 proposes). ``toggled_optimizer`` freezes the other
network for a step (``requires_grad=False``), so its DDP reducer sees no gradient hooks fire and all-reduces
nothing; the network being trained all-reduces its own gradients once, in its backward. Frozen children (the EMA
copy, metric feature extractors) are not wrapped. Parameters must live in child networks, not directly on the
LightningModule.

Using it:

- ``lightning-gans fit ... --trainer.strategy ddp`` (or ``ddp_spawn``, ``ddp_fork``, ``ddp_notebook``, or several
  devices with the default ``auto``): the CLI gives a GANModule this strategy wherever Lightning would pick its
  plain DDPStrategy, with the same start method (:class:`lightning_gans.cli.GANCLI`).
- A plain Trainer, one line::

      trainer = L.Trainer(accelerator="gpu", devices=4, strategy=GANDDPStrategy())   # = "ddp"
      trainer = L.Trainer(..., strategy=GANDDPStrategy(start_method="spawn"))         # = "ddp_spawn"

Importing :mod:`lightning_gans` registers nothing: the strategy names (``ddp``, ...) keep meaning Lightning's own
DDPStrategy for a plain Trainer. For a LightningModule that is not a :class:`~lightning_gans.core.GANModule` this
class behaves exactly like Lightning's DDPStrategy.

Checkpoints keep the plain parameter names (``generator.net.0.weight``, not ``generator.module.net...``), so a
checkpoint moves freely between one device and many.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch.overrides.distributed import _register_ddp_comm_hook
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def _trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


class GANDDPStrategy(DDPStrategy):
    """DDPStrategy that wraps each trainable network of a :class:`GANModule` in its own DDP."""

    strategy_name = "gan_ddp"

    def _is_gan(self, model: nn.Module) -> bool:
        from lightning_gans.core import GANModule

        return isinstance(model, GANModule)

    def _setup_model(self, model: nn.Module) -> nn.Module:
        if not self._is_gan(model):
            return super()._setup_model(model)
        own = [name for name, p in model.named_parameters(recurse=False) if p.requires_grad]
        if own:
            raise RuntimeError(
                f"{type(model).__name__} has parameters directly on the LightningModule ({', '.join(own)}); "
                "GAN DDP wraps child networks only: move them into a child nn.Module"
            )
        device_ids = self.determine_ddp_device_ids()
        self._wrapped_names: list[str] = []
        for name, child in list(model.named_children()):
            if isinstance(child, DistributedDataParallel) or not _trainable(child):
                continue
            setattr(model, name, DistributedDataParallel(child, device_ids=device_ids, **self._ddp_kwargs))
            self._wrapped_names.append(name)
        return model

    def _register_ddp_hooks(self) -> None:
        if not self._is_gan(self.model):
            return super()._register_ddp_hooks()
        if self.root_device.type == "cuda" and self._ddp_comm_hook is not None:
            for name in self._wrapped_names:
                _register_ddp_comm_hook(
                    model=getattr(self.model, name),
                    ddp_comm_state=self._ddp_comm_state,
                    ddp_comm_hook=self._ddp_comm_hook,
                    ddp_comm_wrapper=self._ddp_comm_wrapper,
                )

    def _unwrap_children(self) -> None:
        model = self.lightning_module
        for name in getattr(self, "_wrapped_names", []):
            child = getattr(model, name)
            if isinstance(child, DistributedDataParallel):
                setattr(model, name, child.module)
        self._wrapped_names = []

    def _rename(self, state: Mapping[str, Any], wrapped: bool) -> dict[str, Any]:
        """Map ``name.x`` <-> ``name.module.x`` for each network wrapped here."""
        out = {}
        for key, value in state.items():
            for name in getattr(self, "_wrapped_names", []):
                plain, inner = f"{name}.", f"{name}.module."
                if wrapped and key.startswith(plain) and not key.startswith(inner):
                    key = inner + key[len(plain) :]
                elif not wrapped and key.startswith(inner):
                    key = plain + key[len(inner) :]
            out[key] = value
        return out

    def lightning_module_state_dict(self) -> dict[str, Any]:
        return self._rename(super().lightning_module_state_dict(), wrapped=False)

    def load_model_state_dict(self, checkpoint: Mapping[str, Any], strict: bool = True) -> None:
        state = self._rename(checkpoint["state_dict"], wrapped=True)
        self.lightning_module.load_state_dict(state, strict=strict)

    def teardown(self) -> None:
        if self.lightning_module is not None:
            self._unwrap_children()
        super().teardown()


__all__ = ["GANDDPStrategy"]
