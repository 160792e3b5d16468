"""Real training on real MNIST (``pytest -m slow``): DCGAN learns digits in a few hundred steps.

Judged by the project's MNIST classifier: FID on its features falls far below the untrained generator's, and the
samples cover most classes.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from datamodules import MNISTDataModule
from lightning_gans.metrics import GenerativeMetrics, build_extractor
from lightning_gans.models import DCGAN

pytestmark = pytest.mark.slow


def _metrics(model: DCGAN, real: torch.Tensor) -> dict[str, float]:
    metrics = GenerativeMetrics(build_extractor("mnist_classifier"), metrics=("fid", "class_coverage"))
    metrics.update_real_images(real)
    torch.manual_seed(0)
    for _ in range(4):
        metrics.update_fake_images(model.sample(500))
    return {k: float(v) for k, v in metrics.compute().items()}


def test_dcgan_learns_digits_on_real_mnist(mnist_root: Path, tmp_path: Path):
    L.seed_everything(0)
    dm = MNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=64, val_size=2000)
    dm.setup("fit")
    real = dm.val_set.images[:2000].float().div(127.5).sub(1)
    model = DCGAN(image_shape=dm.image_shape)  # the networks of configs/dcgan_mnist.yaml
    before = _metrics(model, real)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2 * 600,  # Lightning counts D and G steps: 600 G steps
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        limit_val_batches=0,
    )
    trainer.fit(model, dm)
    after = _metrics(model, real)
    assert model.g_steps == 600
    # classifier-feature FID: untrained G ~2,100, noise ~7,900, real vs real ~2; 859 G steps reach ~320
    assert after["fid"] < 0.5 * before["fid"], (before, after)
    assert after["classes_covered"] >= 9, after
