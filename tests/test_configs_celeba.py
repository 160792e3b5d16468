"""The CelebA configs parse, keep the papers' settings and the Inception evaluation, and train one step on real faces.

Runs ``fit --trainer.fast_dev_run 1`` in-process on the shared 10,000-face copy (``celeba_small`` under
``$LIGHTNING_GANS_DATA_DIR``, 89x109 JPEGs; skipped without it), pointed at as the configs' headers say, with tiny
widths and batches of 4 so a run takes seconds. Evaluation is off under fast_dev_run, but the callback is built
(the local Inception is loaded), so a missing extractor file fails here too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml

from lightning_gans.callbacks import EvaluationCallback
from lightning_gans.cli import GANCLI
from lightning_gans.models import DCGAN, SNGAN
from tests.conftest import real_data_dir

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

#: config -> (family, settings the config must hold, batch size, tiny widths for the test)
EXPECTED = {
    "dcgan_celeba": (DCGAN, {"loss": "nonsaturating", "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999),
                             "latent_dim": 100, "n_critic": 1}, 128, 4),  # fmt: skip
    "sngan_celeba": (SNGAN, {"loss": "hinge", "spectral_norm_d": True, "lr_g": 2e-4, "lr_d": 2e-4,
                             "betas": (0.0, 0.9), "latent_dim": 128, "n_critic": 5}, 64, 16),  # fmt: skip
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_celeba_config_fits_one_step_on_real_faces(name: str, tmp_path: Path, monkeypatch):
    celeba = real_data_dir("celeba_small/img_align_celeba_89x109").parent
    family, settings, batch_size, width = EXPECTED[name]
    config = CONFIGS / f"{name}.yaml"
    data = yaml.safe_load(config.read_text())["data"]["init_args"]
    assert data["batch_size"] == batch_size and data["image_size"] == 64 and data["data_dir"] is None  # as shipped
    monkeypatch.setattr(sys, "argv", ["lightning-gans"])  # pytest's own arguments are not the CLI's
    cli = GANCLI(args=[
        "fit", "--config", str(config),
        "--trainer.fast_dev_run", "1",
        "--trainer.accelerator", "cpu",
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--data.init_args.data_dir", str(celeba),
        "--data.init_args.image_folder", "img_align_celeba_89x109",
        "--data.init_args.batch_size", "4",
        "--data.init_args.num_workers", "0",
        "--data.init_args.pin_memory", "false",
        "--model.init_args.g_channels", str(width),
        "--model.init_args.d_channels", str(width),
    ])  # fmt: skip
    model, dm = cli.model, cli.datamodule
    assert type(model) is family
    assert model.image_shape == (3, 64, 64) and model.num_classes == 0  # linked from the datamodule
    for attr, value in settings.items():
        assert getattr(model, attr) == value, attr
    # No partition file in the copy: val_fraction holds out 2,500 faces, enough real images for FID's 2,048 features.
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 7500, "val": 2500, "test": 2500}
    assert model.d_steps == 1 and model.g_steps == (1 if model.n_critic == 1 else 0)
    evaluation = [c for c in cli.trainer.callbacks if isinstance(c, EvaluationCallback)]
    assert len(evaluation) == 1
    ev = evaluation[0]
    assert ev.extractor_name == "inception_local" and ev.requested == ("fid", "kid")
    assert ev.num_samples == 10000 and ev.extractor is not None and ev.extractor.num_features == 2048
    with torch.no_grad():
        images = model.sample(2)
    assert images.shape == (2, 3, 64, 64) and images.abs().max() <= 1  # G at 64x64 also where no G step ran
