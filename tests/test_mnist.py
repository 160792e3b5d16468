"""MNISTDataModule on the real files (skipped without $LIGHTNING_GANS_DATA_DIR) and its errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from datamodules import DATA_DIR_ENV, DatasetNotFoundError, MNISTDataModule, resolve_data_dir
from datamodules.mnist import read_idx


@pytest.mark.parametrize("size", [28, 32, 64])
def test_real_mnist_batches(mnist_root: Path, size: int):
    dm = MNISTDataModule(data_dir=str(mnist_root), download=False, image_size=size, batch_size=16)
    assert dm.image_shape == (1, size, size) and dm.num_classes == 10
    dm.prepare_data()
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (16, 1, size, size) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1 and images.min() == -1  # black background maps to -1
    assert labels.dtype == torch.long and 0 <= labels.min() and labels.max() <= 9
    assert len(dm.train_set) == 55000 and len(dm.val_set) == 5000


def test_real_mnist_split_is_seeded_and_disjoint(mnist_root: Path):
    a = MNISTDataModule(data_dir=str(mnist_root), download=False, val_size=100)
    b = MNISTDataModule(data_dir=str(mnist_root), download=False, val_size=100)
    a.setup("fit")
    b.setup("fit")
    assert torch.equal(a.val_set.images, b.val_set.images)
    val = {bytes(x.numpy()) for x in a.val_set.images}
    assert not any(bytes(x.numpy()) in val for x in a.train_set.images[:2000])
    a.setup("test")
    assert len(a.test_set) == 10000


def test_missing_files_name_folder_files_and_option(tmp_path: Path):
    dm = MNISTDataModule(data_dir=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(DatasetNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "data_dir" in message and "download" in message


def test_failed_download_says_why_and_where(tmp_path: Path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    dm = MNISTDataModule(data_dir=str(tmp_path), download=True)
    with pytest.raises(DatasetNotFoundError, match="network is unreachable"):
        dm.prepare_data()


def test_data_dir_defaults_to_environment_then_data(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert MNISTDataModule().data_dir == tmp_path
    assert resolve_data_dir(None, "facades") == tmp_path / "facades"
    monkeypatch.delenv(DATA_DIR_ENV)
    assert MNISTDataModule().data_dir == Path("data")
    assert MNISTDataModule(data_dir="/x").data_dir == Path("/x")


def test_read_idx_reads_plain_and_gzip_and_rejects_truncated(tmp_path: Path):
    header = (0x00000803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (2, 2, 2))
    payload = bytes(range(8))
    (tmp_path / "a").write_bytes(header + payload)
    with gzip.open(tmp_path / "a.gz", "wb") as f:
        f.write(header + payload)
    expected = torch.arange(8, dtype=torch.uint8).view(2, 2, 2)
    assert torch.equal(read_idx(tmp_path / "a"), expected)
    assert torch.equal(read_idx(tmp_path / "a.gz"), expected)
    (tmp_path / "b").write_bytes(header + payload[:5])
    with pytest.raises(DatasetNotFoundError, match="'.*b' is truncated"):
        read_idx(tmp_path / "b")


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_size"):
        MNISTDataModule(image_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        MNISTDataModule(batch_size=0)
