"""The one way scripts load a trained model (lightning_gans.loading.load_trained) and draw a grid
(lightning_gans.callbacks.common.save_grid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch.utils.data import DataLoader

from lightning_gans.callbacks.common import make_grid_uint8, save_grid, titled_grid_uint8
from lightning_gans.checkpointing import CheckpointMismatchError, CheckpointReadError
from lightning_gans.loading import load_trained, trainable_classes
from lightning_gans.models import FAMILIES, GAN
from tests.conftest import quiet_trainer
from tests.families import TINY


@pytest.fixture(scope="module")
def gan_checkpoint(tmp_path_factory) -> tuple[Path, GAN]:
    """A tiny GAN after two training steps, saved by its Trainer as a run saves it."""
    root = tmp_path_factory.mktemp("gan")
    torch.manual_seed(0)
    model = GAN(**TINY["GAN"].kwargs)
    trainer = quiet_trainer(root, max_steps=4, limit_val_batches=0)
    trainer.fit(model, DataLoader([TINY["GAN"].batch()] * 2, batch_size=None))
    trainer.save_checkpoint(root / "last.ckpt")
    return root / "last.ckpt", model


def test_load_trained_rebuilds_the_checkpoints_family_with_its_weights(gan_checkpoint):
    path, trained = gan_checkpoint
    model, info = load_trained(path)
    assert type(model) is GAN and not model.training
    assert (info.family, info.g_steps, info.d_steps, info.path) == ("GAN", 2, 2, path)
    z, labels = torch.randn(3, trained.latent_dim), torch.zeros(3, dtype=torch.long)
    torch.testing.assert_close(model.sample(z=z, labels=labels), trained.sample(z=z, labels=labels))
    assert load_trained(path, families=("GAN", "DCGAN"))[1].family == "GAN"


def test_load_trained_refuses_what_it_cannot_load_naming_the_file(gan_checkpoint, tmp_path):
    path, _ = gan_checkpoint
    with pytest.raises(FileNotFoundError, match="no checkpoint file at 'nowhere.ckpt'"):
        load_trained("nowhere.ckpt")
    with pytest.raises(CheckpointMismatchError, match="holds a GAN, not a SRResNet or SRGAN checkpoint"):
        load_trained(path, families=("SRResNet", "SRGAN"))
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointReadError, match="broken.ckpt: not a readable checkpoint"):
        load_trained(broken)
    foreign = tmp_path / "foreign.ckpt"
    ckpt = torch.load(path, weights_only=True)
    torch.save({**ckpt, "lightning_gans": {**ckpt["lightning_gans"], "family": "BigGAN"}}, foreign)
    with pytest.raises(CheckpointMismatchError, match="holds a BigGAN, which lightning-gans does not define"):
        load_trained(foreign)


def test_a_checkpoint_without_a_family_needs_the_config_it_was_trained_with(gan_checkpoint, tmp_path):
    path, _ = gan_checkpoint
    plain = tmp_path / "plain.ckpt"
    torch.save({k: v for k, v in torch.load(path, weights_only=True).items() if k != "lightning_gans"}, plain)
    with pytest.raises(CheckpointMismatchError, match="names no lightning-gans family.*config="):
        load_trained(plain)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {"class_path": "lightning_gans.models.GAN", "init_args": {}}}))
    model, info = load_trained(plain, config=config)
    assert type(model) is GAN and (info.family, info.g_steps) == ("GAN", None)


def test_every_family_and_the_text_encoder_can_be_loaded():
    classes = trainable_classes()
    assert set(FAMILIES) < set(classes) and "TextEncoderPretraining" in classes


# ------------------------------------------------------------------------------------------------ grids
def test_save_grid_plain_is_make_grid(tmp_path):
    images = torch.rand(5, 3, 8, 8) * 2 - 1
    path = save_grid(images, tmp_path / "g" / "plain.png", nrow=3)
    assert torch.equal(torch.from_numpy(np.array(Image.open(path))), make_grid_uint8(images, 3))


def test_titled_grid_puts_a_band_over_rows_with_titles_only():
    images = torch.zeros(6, 1, 10, 12)  # grey 128, one channel: drawn as RGB
    header = titled_grid_uint8(images, ["a", "b\nsecond line", "c"], nrow=3)  # titles over the first row only
    band = 2 * 13 + 2  # the tallest title of the row: two lines
    assert tuple(header.shape) == (2 * (10 + 2) + 2 + band, 3 * (12 + 2) + 2, 3)
    assert (header[2 + band, 2] == 128).all() and (header[0, 0] == 255).all()  # the image under its band, white pad
    assert header[2 : 2 + band].lt(128).any()  # the titles are drawn (dark text on white)
    uint8 = torch.full((2, 3, 10, 12), 7, dtype=torch.uint8)  # uint8 images (scatter plots) are pasted as they are
    grid = titled_grid_uint8(uint8, ["x", "y"], nrow=1)
    assert tuple(grid.shape) == (2 * (10 + 2 + 15) + 2, 12 + 4, 3) and (grid[2 + 15, 2] == 7).all()
    with pytest.raises(ValueError, match="2 images but 3 titles"):
        titled_grid_uint8(uint8, ["x", "y", "z"])


def test_save_grid_titles_or_captions_not_both(tmp_path):
    images = torch.zeros(2, 3, 8, 8)
    assert Image.open(save_grid(images, tmp_path / "t.png", 2, titles=["a", "b"])).size == (2 * 10 + 2, 10 + 2 + 15)
    assert save_grid(images, tmp_path / "c.png", 2, captions=["a one", "a one"]).is_file()
    with pytest.raises(ValueError, match="not both"):
        save_grid(images, tmp_path / "x.png", titles=["a", "b"], captions=["a", "b"])
