"""benchmarks/translation_baselines.py: the constant baselines against hand computations, and a checkpoint scored
as its validation scores it."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning
import numpy as np
import torch
from PIL import Image

from datamodules.paired import PairedImageDataModule
from lightning_gans.models import Pix2Pix
from tests.families import TINY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import translation_baselines as tb  # noqa: E402


def _pairs(root: Path) -> Path:
    """train: photos of constant grey 64 or 192 (mean 128, so the mean photo is grey 128); val: three photos of 0."""
    for split, greys in (("train", (64, 192, 64, 192)), ("val", (0, 0, 0))):
        for i, grey in enumerate(greys):
            photo = np.full((32, 32, 3), grey, np.uint8)
            labels = np.full((32, 32, 3), 255, np.uint8)
            (root / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.concatenate([photo, labels], axis=1)).save(root / split / f"{i}.png")
    return root


def test_constant_baselines_by_hand(tmp_path: Path):
    dm = PairedImageDataModule(data_dir=str(_pairs(tmp_path)), direction="BtoA", crop_size=32, load_size=36)
    train = dm.evaluation_dataset("train")
    assert len(train) == 4 and torch.equal(train[0]["target"], train[0]["target"])  # deterministic, unflipped
    inputs, targets = tb.load_split(dm, "val")
    got = {name: tb.score(out, targets)["l1"] for name, out in tb.constant_outputs(dm, inputs, targets).items()}
    grey = lambda v: v / 127.5 - 1  # noqa: E731
    assert abs(got["input"] - (grey(255) - grey(0))) < 1e-5  # labels (white) against a black photo
    assert abs(got["mean training photo"] - (grey(128) - grey(0))) < 1e-5
    assert abs(got["median training photo"] - (grey(64) - grey(0))) < 1e-5  # torch.median: the lower middle value


def test_checkpoint_is_scored_like_its_validation(tmp_path: Path):
    dm = PairedImageDataModule(data_dir=str(_pairs(tmp_path / "data")), direction="BtoA", crop_size=32, load_size=36)
    torch.manual_seed(0)
    model = Pix2Pix(**TINY["Pix2Pix"].kwargs)
    path = tmp_path / "p2p.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": lightning.__version__,
            "lightning_gans": {"family": "Pix2Pix", "g_steps": 0, "d_steps": 0},  # what a run's checkpoint names
        },
        path,
    )
    inputs, targets = tb.load_split(dm, "val")
    expected = (model.translate(inputs) - targets).abs().mean().item()
    assert abs(tb.score(tb.checkpoint_outputs(str(path), inputs), targets)["l1"] - expected) < 1e-5

    report = tb.main(
        ["--data_dir", str(tmp_path / "data"), "--crop_size", "32", "--ckpt", f"tiny={path}", "--extractor", "identity"]
    )
    assert f"| tiny | {expected:.4f} |" in report
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in report.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"input", "mean training photo", "median training photo", "tiny"}
    assert all(len(cells) == 4 for cells in rows.values())  # L1, PSNR, SSIM, KID
