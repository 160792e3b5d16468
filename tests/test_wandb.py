"""W&B through the config fragment, offline: the run directory holds the logged scalars, the grid and the config."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.test_cli import REPO, tiny_args, tiny_mnist  # noqa: F401  (fixture)

wandb = pytest.importorskip("wandb", reason="wandb is an optional extra: pip install -e '.[wandb]'")


def _flushed(path: Path, keys: tuple[bytes, ...], timeout_s: float = 30.0) -> bytes:
    """The run file once W&B's writer process has put every key in it (or after ``timeout_s``): ``wandb.finish()``
    returned with only the file's header written once, on a loaded 2-core CI machine."""
    deadline = time.monotonic() + timeout_s
    while True:
        data = path.read_bytes()
        if all(key in data for key in keys) or time.monotonic() > deadline:
            return data
        time.sleep(0.5)


def test_wandb_offline_run_holds_scalars_images_and_config(tiny_mnist: Path, tmp_path: Path, monkeypatch):  # noqa: F811
    from lightning_gans.cli import GANCLI

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    cli = GANCLI(
        args=[
            "fit",
            *tiny_args(
                tiny_mnist,
                "--config",
                str(REPO / "configs" / "loggers" / "wandb.yaml"),
                "--trainer.log_every_n_steps",
                "1",
                "--trainer.limit_val_batches",
                "0",
            ),
        ]
    )
    wandb.finish()
    root = tmp_path / "runs" / "dcgan_mnist"  # the experiment's run folder (trainer.default_root_dir) holds it all
    runs = list((root / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    run = runs[0]
    images = list((run / "files" / "media" / "images").glob("samples_*.png"))
    assert images, "the sample grid must be logged as an image"
    keys = (b"train/d_loss", b"train/g_loss", b"train/g_steps", b"MNISTDataModule")
    data = _flushed(next(run.glob("run-*.wandb")), keys)
    for key in keys[:3]:
        assert key in data, key
    assert b"MNISTDataModule" in data, "the full config is logged"
    # the config file goes in the run's own folder, beside the W&B run id, never over another run's
    version = cli.trainer.logger.version
    assert (root / "lightning-gans" / version / "config.yaml").is_file()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["dcgan_mnist"]
