"""Shared test fixtures: the real-data folder, CPU determinism, and a small thread count for the 2-core CI."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture
def mnist_root() -> Path:
    path = real_data_dir("MNIST/raw")
    return path.parent.parent


@pytest.fixture(autouse=True)
def _isolate_cwd(tmp_path, monkeypatch):
    """Each test runs in its own folder, so runs never write into the checkout."""
    monkeypatch.chdir(tmp_path)
