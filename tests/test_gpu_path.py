"""The GPU path, checked on the CPU: bf16 mixed precision and channels-last in every family (at the CPU's own ISA and
as a CPU without AVX-512 runs it), torch.compile by option, and MNIST held on the device as one tensor."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from lightning_gans.callbacks.performance import Performance, trainable_networks
from lightning_gans.models import FAMILIES
from lightning_gans.text_encoder import TextEncoderPretraining
from tests.conftest import quiet_trainer
from tests.families import MNIST_SHAPE, TEXT_VOCABULARY, TINY, caption_batch


class _Losses(L.Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.values += [float(v) for k, v in trainer.callback_metrics.items() if k.endswith("loss")]


def train_one_bf16_step(model: L.LightningModule, batch, trained: tuple[str, ...], root: Path) -> None:
    """One bf16-mixed, channels-last training step of ``model``: finite losses, and every network in ``trained``
    changed and finite."""
    before = {net: [p.detach().clone() for p in getattr(model, net).parameters()] for net in trained}
    losses = _Losses()
    trainer = quiet_trainer(
        root,
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        precision="bf16-mixed",
        callbacks=[Performance(channels_last=True), losses],
    )
    trainer.fit(model, DataLoader([batch], batch_size=None))
    name = type(model).__name__
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs if w.dim() == 4)
    assert losses.values and all(math.isfinite(v) for v in losses.values), losses.values
    for net, params in before.items():
        after = list(getattr(model, net).parameters())
        assert all(torch.isfinite(p).all() for p in after), f"{name}.{net} has non-finite weights under bf16"
        assert any(not torch.equal(a, b) for a, b in zip(params, after)), f"{name}.{net} did not train under bf16"


def train_every_family_bf16(root: Path) -> list[str]:
    """:func:`train_one_bf16_step` for every registered family and the text encoder's pretraining; their names."""
    done = []
    for name in sorted(FAMILIES):
        torch.manual_seed(0)
        spec = TINY[name]
        train_one_bf16_step(FAMILIES[name](**spec.kwargs), spec.batch(), spec.trained, root / name)
        done.append(name)
    pretraining = TextEncoderPretraining(
        vocabulary=TEXT_VOCABULARY, word_dim=8, sentence_dim=8, image_channels=4, image_shape=MNIST_SHAPE
    )
    train_one_bf16_step(pretraining, caption_batch()(), ("text_encoder", "image_encoder"), root / "pretraining")
    return [*done, "TextEncoderPretraining"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_bf16_mixed_precision_and_channels_last_train_every_family(name: str, tmp_path: Path):
    spec = TINY[name]
    torch.manual_seed(0)
    train_one_bf16_step(FAMILIES[name](**spec.kwargs), spec.batch(), spec.trained, tmp_path)


_AVX2_CHILD = """
import sys
from pathlib import Path

import torch

from tests.test_gpu_path import train_every_family_bf16

with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):  # prints the ISA oneDNN dispatches to
    torch.nn.LSTM(4, 4)(torch.randn(3, 1, 4))
print("trained:", *train_every_family_bf16(Path(sys.argv[1])), flush=True)
"""


def test_bf16_mixed_trains_every_family_on_a_cpu_without_avx512(tmp_path: Path):
    """bf16-mixed as a CPU without AVX-512 BF16 or AMX runs it, on any CPU: oneDNN capped at AVX2 (its
    ``ONEDNN_MAX_CPU_ISA``, read once per process, hence the child process). There the text encoder's LSTM under bf16
    autocast failed at primitive creation ("could not create a primitive descriptor for the LSTM forward
    propagation primitive"); the in-process test above runs at the machine's own ISA."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _AVX2_CHILD, str(tmp_path)], cwd=root, env=env, capture_output=True, text=True
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    isa = re.search(r"onednn_verbose.*,isa:(.*)", out)
    assert isa and "AVX2" in isa.group(1) and "512" not in isa.group(1), f"oneDNN did not run at AVX2: {out[:1000]}"
    trained = re.search(r"^trained: (.*)$", out, re.M)
    assert trained and trained.group(1).split() == [*sorted(FAMILIES), "TextEncoderPretraining"], out[-2000:]


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
