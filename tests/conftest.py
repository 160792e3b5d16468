"""Shared test fixtures: the real-data folder, CPU determinism, and a small thread count for the 2-core CI."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))

DATA_ENV = "LIGHTNING_GANS_DATA_DIR"


def real_data_dir(sub: str = "") -> Path:
    """The folder of real data named by $LIGHTNING_GANS_DATA_DIR, or skip the test with the reason."""
    root = os.environ.get(DATA_ENV)
    if not root:
        pytest.skip(f"${DATA_ENV} is not set: point it at a folder with the real datasets (CI uses ../shared/data)")
    path = Path(root) / sub
    if not path.exists():
        pytest.skip(f"{path} does not exist under ${DATA_ENV}={root}")
    return path


def quiet_trainer(root: Path, **kwargs) -> L.Trainer:
    """A CPU Trainer for tests: no logger, checkpoints, progress bar, model summary or sanity check; files under
    ``root``. Keyword arguments override these defaults."""
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        num_sanity_val_steps=0,
    )
    return L.Trainer(**{**defaults, **kwargs})


@pytest.fixture
def make_trainer(tmp_path):
    """``make_trainer(**kwargs)``: :func:`quiet_trainer` in the test's own folder."""
    return lambda **kwargs: quiet_trainer(tmp_path, **kwargs)


@pytest.fixture
def mnist_root() -> Path:
    path = real_data_dir("MNIST/raw")
    return path.parent.parent


@pytest.fixture(autouse=True)
def _isolate_cwd(tmp_path, monkeypatch):
    """Each test runs in its own folder, so runs never write into the checkout."""
    monkeypatch.chdir(tmp_path)
