"""benchmarks/ada_small_data.py: its three variants are what they say (parsed by the real CLI), and its report reads
run folders as the CLI writes them (not the measured results, which README gives)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_gans.adaptive import AdaptiveAugment
from lightning_gans.cli import GANCLI
from tests.test_configs import fake_celeba

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("ada_small_data", REPO / "benchmarks" / "ada_small_data.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    return fake_celeba(tmp_path_factory.mktemp("celeba_small"))


@pytest.mark.parametrize("name", list(bench.VARIANTS))
def test_each_variant_is_the_shipped_config_with_only_its_augmentation_changed(name, celeba, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lightning-gans"])  # the CLI reads its arguments from `args` only
    cli = GANCLI(
        args=[
            "--config",
            str(bench.CONFIG),
            *bench.data_flags(str(celeba)),
            "--data.init_args.max_train_images",
            "8",
            "--trainer.default_root_dir",
            str(tmp_path),
            *bench.VARIANTS[name],
        ],
        run=False,
    )
    model, dm = cli.model, cli.datamodule
    assert type(model).__name__ == "DCGAN" and model.image_shape == (3, 32, 32) and dm.batch_size == 128
    assert type(cli.trainer.logger).__name__ == "CSVLogger"  # the report reads metrics.csv
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    if name == "none":  # ADA's pipeline at a fixed p = 0: D's inputs unchanged, r_t still measured
        assert isinstance(model.ada, AdaptiveAugment) and not model.ada.adaptive and float(model.ada.p) == 0
        assert model.ada(images) is images and model.toolbox.diffaugment == ""
    elif name == "diffaugment":
        assert model.ada is None and model.toolbox.diffaugment == "color,translation,cutout"
    else:
        assert model.ada.adaptive and model.ada.policy == "bgc" and model.ada.speed_images == 100_000
        assert model.toolbox.diffaugment == ""


def _write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for row in rows for k in row})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def _fake_run(run_dir: Path, g_steps: int, p: float | None, kid: float, cpu: float) -> None:
    train = [
        {"step": 2 * s, "train/g_steps": s, **({"train/ada_p": p * s / g_steps, "train/ada_r_t": 0.6} if p else {})}
        for s in range(25, g_steps + 1, 25)
    ]
    _write_metrics(run_dir / "logs" / "version_0" / "metrics.csv", train)
    (run_dir / "logs" / "version_0" / "config.yaml").write_text("data:\n  init_args:\n    batch_size: 128\n")
    samples = run_dir / "logs" / "version_0" / "samples"
    samples.mkdir(parents=True)
    Image.fromarray(np.full((34, 34, 3), 40 * len(run_dir.name), np.uint8)).save(samples / "final.png")
    _write_metrics(run_dir / "logs" / "version_1" / "metrics.csv", [{"val/kid": kid, "val/kid_std": kid / 10}])
    (run_dir / "cpu_seconds.txt").write_text(f"{cpu}\n")


def test_the_report_tabulates_kid_cpu_time_steps_and_p_and_draws_curves_and_grids(tmp_path):
    _fake_run(tmp_path / "none", 200, None, 0.050, 900.0)
    _write_metrics(  # the run without augmentation: ADA at a fixed p = 0, r_t logged, p no curve
        tmp_path / "none" / "logs" / "version_0" / "metrics.csv",
        [{"step": 2 * s, "train/g_steps": s, "train/ada_p": 0.0, "train/ada_r_t": 0.9} for s in range(25, 201, 25)],
    )
    _fake_run(tmp_path / "ada", 150, 0.3, 0.020, 905.0)
    text = bench.report(tmp_path, ["none", "ada"], points=4)
    assert "| none | 50.0 (5.0) | 900 | 200 | 25,600 | 0.000 | 0.900 |" in text
    assert "| ada | 20.0 (2.0) | 905 | 150 | 19,200 | 0.300 | 0.600 |" in text
    assert "| G steps | none r_t | ada p | ada r_t |" in text  # means over each quarter (points=4) of training
    first = next(line for line in text.splitlines() if line.startswith("| 1-50 |")).split(" | ")
    assert first[1:3] == ["0.90", f"{(0.05 + 0.10) / 2:.2f}"] and "| 151-200 | 0.90 | - | - |" in text
    assert (tmp_path / "results.md").read_text() == text
    curves = Image.open(tmp_path / "curves.png")
    assert curves.size == (720, 360) and len(set(curves.getdata())) > 2  # lines drawn on the white canvas
    grids = Image.open(tmp_path / "grids.png")
    assert grids.size == (2 * 34 + 10, 34 + 20)


def test_a_run_without_its_training_log_is_named(tmp_path):
    (tmp_path / "none").mkdir()
    with pytest.raises(SystemExit, match="none: no training log"):
        bench.report(tmp_path, ["none"])
