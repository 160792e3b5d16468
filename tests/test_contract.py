"""The contract every registered family keeps, checked with tiny shapes (tests/families.py).

One training step updates every trained network once; a checkpoint round-trips weights, counters and
hyperparameters as plain data (``weights_only=True``); ``sample`` gives images in [-1, 1]; ``predict`` writes files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_gans.callbacks import ImageWriter
from lightning_gans.models import FAMILIES
from tests.conftest import quiet_trainer
from tests.families import TINY


def test_every_family_has_a_tiny_entry():
    missing = sorted(set(FAMILIES) - set(TINY))
    assert not missing, f"add tiny kwargs for {missing} to tests/families.py"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_contract(name: str, tmp_path: Path):
    spec, cls = TINY[name], FAMILIES[name]
    torch.manual_seed(0)
    model = cls(**spec.kwargs)
    assert model.automatic_optimization is False

    # one training step updates every trained network
    before = {net: [p.detach().clone() for p in getattr(model, net).parameters()] for net in spec.trained}
    batch = spec.batch()
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.fit(model, DataLoader([batch], batch_size=None))
    # one D and one G update; families without a discriminator count one update per batch as a G step
    assert model.d_steps == (1 if spec.adversarial else 0) and model.g_steps == 1
    for net, params in before.items():
        after = list(getattr(model, net).parameters())
        assert any(not torch.equal(a, b) for a, b in zip(params, after)), f"{name}.{net} did not change in a step"

    # checkpoint round trip with plain-data hyperparameters
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = cls.load_from_checkpoint(path, weights_only=True)
    assert loaded.g_steps == model.g_steps and loaded.d_steps == model.d_steps
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key

    # samples and grids are images in [-1, 1]
    grid = loaded.grid_images()
    assert grid.dim() == 4 and grid.min() >= -1 and grid.max() <= 1
    if spec.samples_from_noise:
        images = loaded.sample(3)
        assert images.shape == (3, *loaded.image_shape)
        assert images.min() >= -1 and images.max() <= 1
        assert torch.equal(loaded.sample(z=loaded.fixed_noise[:2]), loaded.sample(z=loaded.fixed_noise[:2]))

    # predict writes one PNG per image plus a grid
    out = tmp_path / "predictions"
    writer = ImageWriter(output_dir=str(out), num_samples=5, batch_size=2)
    predict_loader = spec.extra.get("predict_loader")
    quiet_trainer(tmp_path, callbacks=[writer]).predict(
        loaded, dataloaders=predict_loader() if predict_loader else None, return_predictions=False
    )
    written = sorted(p.name for p in out.rglob("*.png"))
    assert len(written) >= spec.extra.get("predict_files", 5), written
    if spec.samples_from_noise:
        assert "grid.png" in written and len(written) == 6
