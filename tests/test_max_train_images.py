"""``max_train_images`` / ``subset_seed``: a fixed, seeded subset of the training split, on every image datamodule.

Real data (MNIST, the CelebA copy, the facades) through ``real_data_dir``, which skips without it; the super-resolution,
caption-folder and MNIST-captions datamodules on tiny files written here.
"""

from __future__ import annotations

import gzip
import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import datamodules.base
import datamodules.mnist
from datamodules import (
    CaptionFolderDataModule,
    CelebACaptionsDataModule,
    CelebADataModule,
    MNISTCaptionsDataModule,
    MNISTDataModule,
    PairedImageDataModule,
    SuperResolutionDataModule,
    UnpairedImageDataModule,
)
from tests.conftest import real_data_dir

IMAGE_DATAMODULES = (
    MNISTDataModule,
    CelebADataModule,
    PairedImageDataModule,
    UnpairedImageDataModule,
    SuperResolutionDataModule,
    CaptionFolderDataModule,
    CelebACaptionsDataModule,
    MNISTCaptionsDataModule,
)


@pytest.fixture
def reported(monkeypatch) -> list[str]:
    """What the datamodules said through ``rank_zero_info``."""
    said: list[str] = []
    monkeypatch.setattr(datamodules.base, "rank_zero_info", said.append)
    return said


# ------------------------------------------------------------------------------------------------ every datamodule
@pytest.mark.parametrize("cls", IMAGE_DATAMODULES, ids=lambda c: c.__name__)
def test_every_image_datamodule_takes_and_documents_the_options(cls):
    params = inspect.signature(cls).parameters
    assert params["max_train_images"].default is None and params["subset_seed"].default == 0
    documented = set(re.findall(r"^    (\w+):", inspect.getdoc(cls).split("Args:")[1], flags=re.M))
    assert {"max_train_images", "subset_seed"} <= documented


@pytest.mark.parametrize("cls", IMAGE_DATAMODULES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "10"])
def test_a_count_below_one_or_not_a_whole_number_fails_at_construction(cls, bad):
    with pytest.raises(ValueError, match=r"max_train_images must be a whole number of at least 1.*got"):
        cls(max_train_images=bad)


def test_streaming_dir_with_max_train_images_is_refused_with_the_fix(tmp_path):
    dm = CelebADataModule(streaming_dir=str(tmp_path / "chunks"), max_train_images=10)
    with pytest.raises(ValueError, match=r"max_train_images=10 .* streaming_dir .*lightning-gans optimize"):
        dm.setup("fit")


def test_optimize_writes_only_the_kept_training_images():
    """What `lightning-gans optimize` writes (``streaming_datasets``), so a subset can be streamed."""
    root = real_data_dir("celeba_small")
    dm = CelebADataModule(
        data_dir=str(root), image_folder="img_align_celeba_89x109", attr_file=None, max_train_images=300
    )
    splits = dm.streaming_datasets(("train", "val"))
    assert len(splits["train"]) == 300 and len(splits["val"]) == 500
    paired = PairedImageDataModule(data_dir=str(real_data_dir("facades")), max_train_images=40)
    assert {k: len(v) for k, v in paired.streaming_datasets(("train", "val")).items()} == {"train": 40, "val": 100}


# ------------------------------------------------------------------------------------------------ MNIST (real)
_READ: dict[Path, torch.Tensor] = {}


@pytest.fixture(autouse=True)
def _read_mnist_once(monkeypatch):
    """Each MNIST file decompressed once for the whole module (the datamodules only index what it returns)."""
    read = datamodules.mnist.read_idx

    def read_once(path: Path) -> torch.Tensor:
        if path not in _READ:
            _READ[path] = read(path)
        return _READ[path]

    monkeypatch.setattr(datamodules.mnist, "read_idx", read_once)


def _mnist(root: Path, **kwargs) -> MNISTDataModule:
    dm = MNISTDataModule(data_dir=str(root), download=False, **kwargs)
    dm.setup("fit")
    return dm


def _rows(images: torch.Tensor) -> set[bytes]:
    return {bytes(row) for row in images.flatten(1).numpy()}


def test_mnist_keeps_a_seeded_subset_of_the_training_digits(mnist_root, reported):
    full = _mnist(mnist_root)
    assert len(full.train_set) == 55000 and reported == []  # None: the whole split, nothing said

    torch.manual_seed(1)  # the global RNG plays no part
    dm = _mnist(mnist_root, max_train_images=1000)
    dm.train_set = None
    dm.setup("fit")  # a second setup: said once per datamodule
    assert reported == ["max_train_images: kept 1000 of 55000 training digits (seed 0)"]
    torch.manual_seed(2)
    again = _mnist(mnist_root, max_train_images=1000, num_workers=2)  # nor the worker count
    assert len(dm.train_set) == 1000
    assert torch.equal(dm.train_set.images, again.train_set.images)
    assert torch.equal(dm.train_set.labels, again.train_set.labels)

    other = _mnist(mnist_root, max_train_images=1000, subset_seed=1)
    assert not torch.equal(dm.train_set.images, other.train_set.images)

    # validation untouched; the kept digits are training digits, none of them a validation digit
    assert torch.equal(dm.val_set.images, full.val_set.images) and len(dm.val_set) == 5000
    kept, train, val = _rows(dm.train_set.images), _rows(full.train_set.images), _rows(full.val_set.images)
    assert len(kept) == 1000 and kept <= train and not kept & val


def test_mnist_too_many_images_fails_at_setup_naming_the_option_and_sizes(mnist_root):
    dm = MNISTDataModule(data_dir=str(mnist_root), download=False, val_size=5000, max_train_images=55001)
    with pytest.raises(ValueError, match=r"max_train_images=55001 is larger than .* has 55000 training digits"):
        dm.setup("fit")
    assert len(_mnist(mnist_root, max_train_images=55000).train_set) == 55000  # the whole split: fine


# ------------------------------------------------------------------------------------------------ CelebA (real)
def _celeba(**kwargs) -> CelebADataModule:
    root = real_data_dir("celeba_small")
    dm = CelebADataModule(data_dir=str(root), image_folder="img_align_celeba_89x109", attr_file=None, **kwargs)
    dm.setup("fit")
    return dm


def test_celeba_keeps_the_same_faces_for_the_same_seed_and_never_a_held_out_one(reported):
    full = _celeba()
    assert len(full.datasets["train"]) == 9500  # no partition file: val_fraction 0.05 of 10,000 held out first

    torch.manual_seed(3)
    dm = _celeba(max_train_images=1000)
    dm.setup("fit")
    assert reported == ["max_train_images: kept 1000 of 9500 training faces (seed 0)"]
    torch.manual_seed(4)
    again = _celeba(max_train_images=1000)
    names = dm.datasets["train"].names
    assert len(dm.datasets["train"]) == 1000 and names == again.datasets["train"].names
    assert names == sorted(names)  # kept in the split's order

    assert set(_celeba(max_train_images=1000, subset_seed=7).datasets["train"].names) != set(names)
    assert set(_celeba(max_train_images=100).datasets["train"].names) < set(names)  # a smaller N: a subset of it

    for split in ("val", "test"):
        assert dm.datasets[split].names == full.datasets[split].names and len(dm.datasets[split]) == 500
    assert set(names) <= set(full.datasets["train"].names) and not set(names) & set(full.datasets["val"].names)


def test_celeba_too_many_images_fails_at_setup():
    with pytest.raises(
        ValueError, match=r"max_train_images=9501 is larger .* 9500 training faces: set .* at most 9500"
    ):
        _celeba(max_train_images=9501)


# ------------------------------------------------------------------------------------------------ paired (real facades)
def _facades(**kwargs) -> PairedImageDataModule:
    dm = PairedImageDataModule(data_dir=str(real_data_dir("facades")), **kwargs)
    dm.setup("fit")
    return dm


def test_paired_keeps_a_seeded_subset_of_the_training_pairs(reported):
    full = _facades()
    dm = _facades(max_train_images=50)
    dm.setup("fit")
    assert reported == ["max_train_images: kept 50 of 400 training pairs (seed 0)"]  # once for two setups
    again = _facades(max_train_images=50)
    pairs = dm.datasets["train"].pairs
    assert len(dm.datasets["train"]) == 50 and pairs == again.datasets["train"].pairs
    assert set(pairs) < set(full.datasets["train"].pairs) and len(full.datasets["train"]) == 400
    assert set(_facades(max_train_images=50, subset_seed=1).datasets["train"].pairs) != set(pairs)
    assert dm.datasets["val"].pairs == full.datasets["val"].pairs and len(dm.datasets["val"]) == 100
    assert not set(pairs) & set(full.datasets["val"].pairs)
    item = dm.datasets["train"][0]
    assert item["name"] == pairs[0][0].name and item["input"].shape == (3, 256, 256)

    with pytest.raises(ValueError, match=r"max_train_images=401 is larger .* has 400 training pairs"):
        _facades(max_train_images=401)


def test_unpaired_keeps_n_images_of_each_domain_drawn_independently():
    root = real_data_dir("facades_unpaired")
    dm = UnpairedImageDataModule(data_dir=str(root), max_train_images=30)
    again = UnpairedImageDataModule(data_dir=str(root), max_train_images=30)
    full = UnpairedImageDataModule(data_dir=str(root))
    for m in (dm, again, full):
        m.setup("fit")
    train = dm.datasets["train"]
    assert len(train) == 30 and len(train.files_a) == len(train.files_b) == 30
    assert train.files_a == again.datasets["train"].files_a and train.files_b == again.datasets["train"].files_b
    assert {p.stem[:-2] for p in train.files_a} != {p.stem[:-2] for p in train.files_b}  # N_A / N_B: not the pairs
    assert set(train.files_a) < set(full.datasets["train"].files_a)
    assert dm.datasets["val"].files_a == full.datasets["val"].files_a  # testA/testB: untouched
    with pytest.raises(ValueError, match=r"max_train_images=401 .* 400 training images of domain A"):
        UnpairedImageDataModule(data_dir=str(root), max_train_images=401).setup("fit")


# ------------------------------------------------------------------------------------------------ folders written here
def _images(folder: Path, n: int, size: tuple[int, int] = (16, 16)) -> list[str]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"{i:03d}.png" for i in range(n)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(folder / name)
    return names


def _superres(root: Path, **kwargs) -> SuperResolutionDataModule:
    dm = SuperResolutionDataModule(
        data_dir=str(root), train_dir="hr", val_dir=None, val_fraction=0.25, scale=2, hr_size=8, **kwargs
    )
    dm.setup("fit")
    return dm


def test_superres_subset_is_taken_after_the_validation_hold_out(tmp_path):
    _images(tmp_path / "hr", 20)
    full = _superres(tmp_path)
    dm, again = _superres(tmp_path, max_train_images=6), _superres(tmp_path, max_train_images=6)
    kept = dm.datasets["train"].hr_files
    assert len(dm.datasets["train"]) == 6 and kept == again.datasets["train"].hr_files
    assert _superres(tmp_path, max_train_images=6, subset_seed=5).datasets["train"].hr_files != kept
    assert dm.datasets["val"].hr_files == full.datasets["val"].hr_files and len(dm.datasets["val"]) == 5
    assert set(kept) < set(full.datasets["train"].hr_files) and not set(kept) & set(full.datasets["val"].hr_files)
    assert len(full.datasets["train"]) == 15
    with pytest.raises(ValueError, match=r"max_train_images=16 is larger .* has 15 training images"):
        _superres(tmp_path, max_train_images=16)


@pytest.mark.filterwarnings("ignore::datamodules.vocabulary.UnknownWordsWarning")  # val words
def test_caption_folder_keeps_whole_images_with_all_their_captions(tmp_path):
    names = _images(tmp_path / "images", 10)
    (tmp_path / "text").mkdir()
    for i, name in enumerate(names):
        (tmp_path / "text" / name.replace(".png", ".txt")).write_text(f"word{i} first\nword{i} second\n")

    def make(**kwargs) -> CaptionFolderDataModule:
        dm = CaptionFolderDataModule(data_dir=str(tmp_path), image_size=8, val_fraction=0.2, **kwargs)
        dm.setup("fit")
        return dm

    full, dm, again = make(), make(max_train_images=3), make(max_train_images=3)
    train = dm.datasets["train"]
    assert len(train.captions) == 3 and len(train) == 6  # three images, each with its two captions
    assert train.captions == again.datasets["train"].captions
    assert dm.datasets["val"].captions == full.datasets["val"].captions and len(dm.datasets["val"]) == 2
    kept = {c[0] for c in train.captions}
    assert kept < {c[0] for c in full.datasets["train"].captions}
    assert not kept & {c[0] for c in full.datasets["val"].captions}
    assert {w for w in dm.vocabulary if w.startswith("word")} == {c.split()[0] for c in kept}  # the kept captions'
    with pytest.raises(ValueError, match=r"max_train_images=9 is larger .* has 8 training images"):
        make(max_train_images=9)


def _write_idx(path: Path, data: torch.Tensor) -> None:
    header = (0x0800 | data.dim()).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in data.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + data.to(torch.uint8).numpy().tobytes())


@pytest.mark.filterwarnings("ignore::datamodules.vocabulary.UnknownWordsWarning")  # val words
def test_mnist_captions_keep_the_digits_the_mnist_datamodule_keeps(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 64), ("t10k", 16)):
        _write_idx(raw / f"{split}-images-idx3-ubyte.gz", torch.randint(0, 256, (n, 28, 28), generator=g))
        _write_idx(raw / f"{split}-labels-idx1-ubyte.gz", torch.randint(0, 10, (n,), generator=g))
    options = dict(data_dir=str(tmp_path), download=False, val_size=16, max_train_images=20, subset_seed=3)
    captions = MNISTCaptionsDataModule(**options, captions_per_image=2)
    captions.setup("fit")
    digits = MNISTDataModule(**options)
    digits.setup("fit")
    train = captions.datasets["train"]
    assert len(train.captions) == 20 and len(train) == 40
    assert torch.equal(train.images.data, digits.train_set.images)
    assert len(captions.datasets["val"]) == 16


def test_celeba_captions_keep_the_faces_the_celeba_datamodule_keeps():
    root = real_data_dir("celeba_small")
    options = dict(data_dir=str(root), image_folder="img_align_celeba_89x109", max_train_images=200, subset_seed=2)
    captions = CelebACaptionsDataModule(**options, captions_per_image=1)
    with pytest.warns(UserWarning):  # the copy's attribute file has more rows than images
        captions.setup("fit")
    faces = CelebADataModule(**options, attr_file=None)
    faces.setup("fit")
    assert len(captions.datasets["train"]) == 200 and len(captions.datasets["val"]) == 500
    assert [f.name for f in captions._files["train"]] == faces.datasets["train"].names
