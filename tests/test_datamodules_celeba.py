"""CelebADataModule: shapes and range, attributes and labels, splits, tolerant attribute files, clear errors."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.base import DatasetNotFoundError
from datamodules.celeba import CelebADataModule, read_attributes
from tests.conftest import real_data_dir

NAMES = ["Male", "Smiling", "Young"]


def _faces(folder, n: int, size=(20, 24)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / name)
    return names


def _attr_file(path, rows: dict[str, list[int]], count: int | None = None) -> None:
    lines = [str(len(rows) if count is None else count), " ".join(NAMES)]
    lines += [f"{name} " + " ".join(f"{v:2d}" for v in values) for name, values in rows.items()]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def celeba(tmp_path):
    """torchvision's layout: 6 faces, attributes for all, the partition 3 train / 2 val / 1 test."""
    names = _faces(tmp_path / "img_align_celeba", 6)
    _attr_file(tmp_path / "list_attr_celeba.txt", {n: [1 if i % 2 else -1, -1, 1] for i, n in enumerate(names)})
    (tmp_path / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, [0, 0, 0, 1, 1, 2])))
    return tmp_path


def test_shape_and_classes_known_before_reading_files(tmp_path, monkeypatch):
    dm = CelebADataModule(data_dir=str(tmp_path / "nowhere"), image_size=128, attribute="Smiling")
    assert dm.image_shape == (3, 128, 128) and dm.num_classes == 2
    assert CelebADataModule(data_dir=str(tmp_path)).num_classes == 0
    monkeypatch.setenv("LIGHTNING_GANS_DATA_DIR", str(tmp_path))
    assert CelebADataModule().data_dir == tmp_path / "celeba"


def test_partition_file_splits_and_attribute_vectors(celeba):
    dm = CelebADataModule(data_dir=str(celeba), image_size=16, batch_size=2)
    dm.setup("fit")
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 3, "val": 2, "test": 1}
    assert dm.attribute_names == NAMES
    images, target = next(iter(dm.val_dataloader()))
    assert images.shape == (2, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    assert target.dtype == torch.long and target.tolist() == [[1, 0, 1], [0, 0, 1]]  # 000004 (i=3, Male), 000005 (i=4)
    assert len(list(dm.train_dataloader())) == 1  # drop_last: 3 images, batches of 2


def test_attribute_becomes_a_two_class_label(celeba):
    dm = CelebADataModule(data_dir=str(celeba), image_size=16, attribute="Male", batch_size=3)
    dm.setup("fit")
    _, target = next(iter(dm.train_dataloader()))
    assert sorted(target.tolist()) == [0, 0, 1] and target.shape == (3,)
    with pytest.raises(ValueError, match="valid names: Male, Smiling, Young"):
        CelebADataModule(data_dir=str(celeba), attribute="Bald").setup("fit")


def test_centre_crop_is_a_fraction_of_the_shorter_side(tmp_path):
    img = np.zeros((40, 20, 3), dtype=np.uint8)  # 20 wide, 40 high: the middle 20x20 is white
    img[10:30] = 255
    (tmp_path / "faces").mkdir()
    Image.fromarray(img).save(tmp_path / "faces" / "a.png")
    dm = CelebADataModule(data_dir=str(tmp_path), image_folder="faces", attr_file=None, image_size=8, val_fraction=0)
    dm.setup("fit")
    x, target = dm.datasets["train"][0]
    assert torch.allclose(x, torch.ones(3, 8, 8)) and target.item() == -1  # no attribute file: target -1
    dm = CelebADataModule(
        data_dir=str(tmp_path), image_folder="faces", attr_file=None, image_size=8, crop_fraction=0.5, val_fraction=0
    )
    dm.setup("fit")
    assert torch.allclose(dm.datasets["train"][0][0], torch.ones(3, 8, 8))


def test_plain_folder_without_partition_uses_a_seeded_fraction(tmp_path):
    _faces(tmp_path, 20)
    kw = dict(data_dir=str(tmp_path), image_folder=".", attr_file=None, val_fraction=0.25)
    a, b, c = CelebADataModule(**kw), CelebADataModule(**kw), CelebADataModule(**kw, seed=1)
    for dm in (a, b, c):
        dm.setup("fit")
    val = a.datasets["val"].names
    assert len(val) == 5 and len(a.datasets["train"]) == 15
    assert val == b.datasets["val"].names != c.datasets["val"].names
    assert not set(val) & set(a.datasets["train"].names)
    assert a.datasets["test"].names == a.datasets["val"].names


def test_header_mismatch_and_images_without_attributes_warn_once(tmp_path):
    names = _faces(tmp_path / "img_align_celeba", 5)
    rows = {n: [1, 1, -1] for n in names[:3]} | {"999999.jpg": [1, 1, 1]}
    _attr_file(tmp_path / "list_attr_celeba.txt", rows, count=202599)
    dm = CelebADataModule(data_dir=str(tmp_path), val_fraction=0)
    with pytest.warns(UserWarning) as record:
        dm.setup("fit")
    assert len(record) == 1
    msg = str(record[0].message)
    assert "202599" in msg and "has 4 rows" in msg and "holds 5 images" in msg
    assert "1 rows have no image" in msg and "2 images have no attributes" in msg
    targets = dm.datasets["train"].targets
    assert targets.tolist() == [[1, 1, 0]] * 3 + [[-1, -1, -1]] * 2  # -1: unknown
    dm = CelebADataModule(data_dir=str(tmp_path), val_fraction=0, attribute="Male")
    with pytest.warns(UserWarning, match="left out"):
        dm.setup("fit")
    assert len(dm.datasets["train"]) == 3


@pytest.mark.parametrize("content", [b"this is not a jpeg", "truncated"])
def test_corrupt_image_names_the_file(celeba, content):
    path = celeba / "img_align_celeba" / "000002.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    dm = CelebADataModule(data_dir=str(celeba), image_size=16)
    dm.setup("fit")
    with pytest.raises(DatasetNotFoundError, match="000002.jpg"):
        dm.datasets["train"][1]


def test_missing_folder_explains_the_options(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        CelebADataModule(data_dir=str(tmp_path)).setup("fit")
    msg = str(info.value)
    assert "img_align_celeba" in msg and "data_dir" in msg and "image_folder" in msg and "download=True" in msg


def test_torchvision_root_is_accepted(celeba, tmp_path):
    root = tmp_path / "tv"
    root.mkdir()
    (root / "celeba").symlink_to(celeba, target_is_directory=True)
    dm = CelebADataModule(data_dir=str(root), image_size=16)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 3


def test_failed_download_points_at_the_plain_folder_option(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    def refuse(root, **kwargs):
        calls.append((root, kwargs))
        raise RuntimeError("Too many users have viewed or downloaded this file recently")

    monkeypatch.setattr(torchvision.datasets, "CelebA", refuse)
    CelebADataModule(data_dir=str(tmp_path / "celeba")).prepare_data()  # download=False: nothing happens
    assert not calls
    with pytest.raises(DatasetNotFoundError) as info:
        CelebADataModule(data_dir=str(tmp_path / "celeba"), download=True).prepare_data()
    assert calls[0][0] == str(tmp_path) and calls[0][1]["download"] is True
    msg = str(info.value)
    assert "Too many users" in msg and "Google Drive" in msg and "plain folder" in msg and "image_folder" in msg


def test_kaggle_csv_files(tmp_path):
    names = _faces(tmp_path / "img_align_celeba", 3)
    (tmp_path / "attrs.csv").write_text("image_id," + ",".join(NAMES) + "\n" + "".join(f"{n},1,-1,1\n" for n in names))
    (tmp_path / "parts.csv").write_text("image_id,partition\n" + "".join(f"{n},{i}\n" for i, n in enumerate(names)))
    dm = CelebADataModule(data_dir=str(tmp_path), attr_file="attrs.csv", partition_file="parts.csv")
    dm.setup("fit")
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [1, 1, 1]
    assert dm.datasets["val"].targets.tolist() == [[1, 0, 1]]


def test_every_constructor_argument_is_documented():
    doc = inspect.getdoc(CelebADataModule)
    documented = set(re.findall(r"^    (\w+):", doc.split("Args:")[1], flags=re.M))
    assert set(inspect.signature(CelebADataModule).parameters) == documented


def _target_of(dm, name: str) -> torch.Tensor:
    for split in ("train", "val"):  # together they hold every image
        files = dm.datasets[split].names
        if name in files:
            return dm.datasets[split].targets[files.index(name)]
    raise AssertionError(f"{name} is in no split")


def test_real_celeba_small():
    root = real_data_dir("celeba_small")
    dm = CelebADataModule(data_dir=str(root), image_folder="img_align_celeba_89x109", batch_size=16)
    with pytest.warns(UserWarning, match="202599") as record:
        dm.setup("fit")
    msg = str(record[0].message)
    assert "has 20000 rows" in msg and "holds 10000 images" in msg and "10000 rows have no image" in msg
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 9500, "val": 500, "test": 500}
    images, target = next(iter(dm.train_dataloader()))
    assert images.shape == (16, 3, 64, 64) and target.shape == (16, 40) and target.dtype == torch.long
    assert images.min() >= -1 and images.max() <= 1 and images.min() < -0.5 and images.max() > 0.5
    assert set(target.unique().tolist()) <= {0, 1}

    # the attributes of a known image are the file's, read here independently
    names, table, values, count = read_attributes(root / "list_attr_celeba.txt")
    assert len(names) == 40 and values.shape == (20000, 40) and count == 202599
    line = next(x for x in (root / "list_attr_celeba.txt").read_text().splitlines() if x.startswith("000007.jpg"))
    expected = [int(v == "1") for v in line.split()[1:]]
    assert _target_of(dm, "000007.jpg").tolist() == expected

    male = CelebADataModule(
        data_dir=str(root), image_folder="img_align_celeba_89x109", attribute="Male", image_size=128, batch_size=4
    )
    with pytest.warns(UserWarning):
        male.setup("fit")
    assert _target_of(male, "000001.jpg").item() == 0  # a woman: Male is -1 in the file
    assert _target_of(male, "000008.jpg").item() == 1  # a man: Male is 1
    x, y = male.datasets["train"][0]
    assert x.shape == (3, 128, 128) and y.item() in (0, 1) and male.num_classes == 2
