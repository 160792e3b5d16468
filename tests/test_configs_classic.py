"""Every classic-family MNIST config parses, builds its model with the paper's settings and trains one step.

Runs ``fit --trainer.fast_dev_run 1`` in-process on a tiny fake MNIST (64 random digits in torchvision's layout), so
the check needs no real data and no download; the models keep the configs' real sizes.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest
import torch

from lightning_gans.cli import GANCLI
from lightning_gans.models import ACGAN, CGAN, DCGAN, SAGAN, SNGAN, WGAN, WGANGP

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

#: config -> (family, settings the config must hold; the papers' values)
EXPECTED = {
    "cgan_mnist": (CGAN, {"conditional": True, "lr_g": 2e-4, "betas": (0.5, 0.999)}),
    "acgan_mnist": (ACGAN, {"conditional": True, "class_weight": 1.0, "lr_d": 2e-4}),
    "wgan_mnist": (WGAN, {"clip_value": 0.01, "n_critic": 5, "optimizer_d": "rmsprop", "lr_d": 5e-5, "lr_g": 5e-5}),
    "wgan_gp_mnist": (WGANGP, {"gradient_penalty_weight": 10.0, "n_critic": 5, "lr_d": 1e-4, "betas": (0.0, 0.9)}),
    "lsgan_mnist": (DCGAN, {"loss": "lsgan", "lr_d": 2e-4, "betas": (0.5, 0.999)}),
    "sngan_mnist": (SNGAN, {"loss": "hinge", "spectral_norm_d": True, "lr_d": 2e-4, "betas": (0.0, 0.9)}),
    "sagan_mnist": (SAGAN, {"loss": "hinge", "spectral_norm_g": True, "lr_d": 4e-4, "lr_g": 1e-4, "n_critic": 1}),
}


def _write_idx(path: Path, data: torch.Tensor) -> None:
    header = (0x0800 | data.dim()).to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in data.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + data.to(torch.uint8).numpy().tobytes())


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fake_mnist")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 64), ("t10k", 16)):
        _write_idx(raw / f"{split}-images-idx3-ubyte.gz", torch.randint(0, 256, (n, 28, 28), generator=g))
        _write_idx(raw / f"{split}-labels-idx1-ubyte.gz", torch.randint(0, 10, (n,), generator=g))
    return root


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_classic_config_fits_one_step(name: str, fake_mnist: Path, monkeypatch):
    family, settings = EXPECTED[name]
    monkeypatch.setattr(sys, "argv", ["lightning-gans"])  # pytest's own arguments are not the CLI's
    cli = GANCLI(args=[
        "fit", "--config", str(CONFIGS / f"{name}.yaml"),
        "--trainer.fast_dev_run", "1",
        "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--data.init_args.data_dir", str(fake_mnist),
        "--data.init_args.download", "false",
        "--data.init_args.batch_size", "8",
        "--data.init_args.val_size", "8",
        "--data.init_args.num_workers", "0",
    ])
    model = cli.model
    assert type(model) is family
    assert model.image_shape == (1, 28, 28) and model.num_classes == 10  # linked from the datamodule
    for attr, value in settings.items():
        assert getattr(model, attr) == value, attr
    assert model.d_steps == 1  # one batch, one D step (a G step too where n_critic is 1)
    assert model.g_steps == (1 if model.n_critic == 1 else 0)
