"""The GPU path, checked on the CPU: bf16 mixed precision and channels-last in every family, torch.compile by option,
and MNIST held on the device as one tensor."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_gans.callbacks.performance import Performance, trainable_networks
from lightning_gans.models import FAMILIES
from tests.conftest import quiet_trainer
from tests.families import TINY


class _Losses(__import__("lightning").Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.values += [float(v) for k, v in trainer.callback_metrics.items() if k.endswith("loss")]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_bf16_mixed_precision_and_channels_last_train_every_family(name: str, tmp_path: Path):
    spec = TINY[name]
    torch.manual_seed(0)
    model = FAMILIES[name](**spec.kwargs)
    before = {net: [p.detach().clone() for p in getattr(model, net).parameters()] for net in spec.trained}
    losses = _Losses()
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        precision="bf16-mixed",
        callbacks=[Performance(channels_last=True), losses],
    )
    trainer.fit(model, DataLoader([spec.batch()], batch_size=None))
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs if w.dim() == 4)
    assert losses.values and all(math.isfinite(v) for v in losses.values), losses.values
    for net, params in before.items():
        after = list(getattr(model, net).parameters())
        assert all(torch.isfinite(p).all() for p in after), f"{name}.{net} has non-finite weights under bf16"
        assert any(not torch.equal(a, b) for a, b in zip(params, after)), f"{name}.{net} did not train under bf16"


def test_compile_option_compiles_each_trainable_network_in_place():
    model = FAMILIES["DCGAN"](**TINY["DCGAN"].kwargs, ema_decay=0.5)
    callback = Performance(compile=True)
    callback.setup(None, model, "fit")
    assert sorted(callback.compiled) == ["discriminator", "generator"]  # not the frozen EMA copy
    assert sorted(trainable_networks(model)) == ["discriminator", "generator"]
    assert all(not k.startswith("_orig_mod") and "._orig_mod." not in k for k in model.state_dict())  # names kept
    with pytest.raises(ValueError, match="compile_mode"):
        Performance(compile=True, compile_mode="fast")


@pytest.mark.slow
def test_compiled_dcgan_trains_a_step(tmp_path: Path):
    spec = TINY["DCGAN"]
    model = FAMILIES["DCGAN"](**spec.kwargs)
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=2, callbacks=[Performance(compile=True)])
    trainer.fit(model, DataLoader([spec.batch()] * 2, batch_size=None))
    assert model.g_steps == 2


def test_mnist_on_device_gives_the_same_batches(mnist_root: Path):
    from datamodules import MNISTDataModule

    def first_batches(**kwargs):
        dm = MNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=32, val_size=64, **kwargs)
        dm.trainer = quiet_trainer(Path.cwd(), max_epochs=1)
        dm.setup("fit")
        torch.manual_seed(0)
        train = next(iter(dm.train_dataloader()))
        return train, next(iter(dm.val_dataloader()))

    plain, on_device = first_batches(), first_batches(on_device=True)
    for a, b in zip(plain, on_device):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="num_workers 0"):
        MNISTDataModule(on_device=True, num_workers=2)
