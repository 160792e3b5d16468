"""GaussianMixtureDataModule: the datamodule contract for 2-D points, the literature's geometry, the scale."""

from __future__ import annotations

import math

import pytest
import torch

from datamodules.base import ImageDataModule
from datamodules.mixtures import KINDS, GaussianMixtureDataModule, mixture_centers


@pytest.mark.parametrize("kind,modes", [("ring8", 8), ("grid25", 25)])
def test_contract_shapes_ranges_and_batches(kind, modes):
    dm = GaussianMixtureDataModule(kind, num_samples=1000, num_val_samples=300, batch_size=128)
    assert isinstance(dm, ImageDataModule)
    assert dm.image_shape == (2,) and dm.num_classes == 0  # known before setup
    assert dm.num_modes == modes and dm.mode_centers.shape == (modes, 2)
    dm.setup("fit")
    points, mode = next(iter(dm.train_dataloader()))
    assert points.shape == (128, 2) and points.dtype == torch.float32 and mode.shape == (128,)
    assert len(dm.train_dataloader()) == 1000 // 128  # drop_last for training
    val = torch.cat([b[0] for b in dm.val_dataloader()])
    assert val.shape == (300, 2) and val.abs().max() <= 1.0


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_points_sit_on_their_modes_in_scaled_units(kind):
    dm = GaussianMixtureDataModule(kind, num_samples=5000, num_val_samples=10)
    dm.setup("fit")
    points, mode = dm.train_set.tensors
    offsets = points - dm.mode_centers[mode]
    assert offsets.std().item() == pytest.approx(dm.mode_std, rel=0.05)
    assert offsets.abs().max() < 6 * dm.mode_std
    assert torch.bincount(mode, minlength=dm.num_modes).min() > 0.5 * 5000 / dm.num_modes


def test_literature_geometry_and_documented_scale():
    ring = GaussianMixtureDataModule("ring8")
    assert mixture_centers("ring8").norm(dim=1) == pytest.approx(torch.full((8,), 2.0), abs=1e-6)
    assert ring.mode_centers.norm(dim=1) == pytest.approx(torch.full((8,), 0.8), abs=1e-6)
    assert ring.std == 0.02 and ring.mode_std == pytest.approx(0.008)
    grid = GaussianMixtureDataModule("grid25")
    assert sorted(set(mixture_centers("grid25")[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    assert grid.mode_centers.abs().max() == pytest.approx(0.8) and grid.mode_std == pytest.approx(0.01)
    custom = GaussianMixtureDataModule("ring8", std=0.1, scale=4.0)
    assert custom.mode_std == pytest.approx(0.025) and custom.mode_centers.norm(dim=1).max() == pytest.approx(0.5)
    # the 8 ring modes are 45 degrees apart
    angles = torch.atan2(ring.mode_centers[:, 1], ring.mode_centers[:, 0])
    assert torch.diff(torch.sort(angles).values) == pytest.approx(torch.full((7,), math.pi / 4), abs=1e-5)


def test_seeded_and_validation_differs_from_training():
    a = GaussianMixtureDataModule("ring8", num_samples=100, num_val_samples=100, seed=3)
    b = GaussianMixtureDataModule("ring8", num_samples=100, num_val_samples=100, seed=3)
    a.setup("fit"), b.setup("fit")
    assert torch.equal(a.train_set.tensors[0], b.train_set.tensors[0])
    assert not torch.equal(a.train_set.tensors[0], a.val_set.tensors[0])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="kind"):
        GaussianMixtureDataModule("ring7")
    with pytest.raises(ValueError, match="positive"):
        GaussianMixtureDataModule("ring8", std=0.0)
    with pytest.raises(ValueError, match="positive"):
        GaussianMixtureDataModule("grid25", num_samples=0)
