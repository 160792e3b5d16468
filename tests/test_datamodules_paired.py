"""PairedImageDataModule: pairs stay aligned through crop/flip, splits stay apart, palettes, predict, errors."""

from __future__ import annotations

import hashlib
import inspect
import re

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from datamodules.base import DatasetNotFoundError
from datamodules.paired import (
    FACADES_PALETTE,
    PairedImageDataModule,
    labels_to_rgb,
    resolve_palette,
    rgb_to_labels,
)
from tests.conftest import real_data_dir


def _save_pair(path, a: np.ndarray, b: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([a, b], axis=1)).save(path)


def _ramp_noise(rng, size: int) -> np.ndarray:
    """Channel 0 rises left to right (shows crop offset and flips); channels 1-2 are noise."""
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    img[:, :, 0] = np.arange(size, dtype=np.uint8)[None, :] * 4
    return img


@pytest.fixture
def pairs_root(tmp_path):
    """train/val/test of side-by-side PNGs where B = 255 - A exactly."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        for i in range(n):
            a = _ramp_noise(rng, 48)
            _save_pair(tmp_path / split / f"{i}.png", a, 255 - a)
    return tmp_path


def _first(dm, key="train"):
    return next(iter(getattr(dm, f"{key}_dataloader")()))


def test_shape_and_classes_known_before_reading_files(tmp_path):
    dm = PairedImageDataModule(data_dir=str(tmp_path / "nowhere"), crop_size=128, load_size=143, output_nc=1)
    assert dm.image_shape == (1, 128, 128) and dm.num_classes == 0 and dm.input_channels == 3
    dm = PairedImageDataModule(data_dir=str(tmp_path / "nowhere"), label_palette="facades")
    assert dm.image_shape == (3, 256, 256) and dm.num_classes == 12 and dm.input_channels == 12
    assert dm.direction == "BtoA" and dm.batch_size == 1


def test_default_data_dir_is_facades_under_the_root(monkeypatch, tmp_path):
    monkeypatch.setenv("LIGHTNING_GANS_DATA_DIR", str(tmp_path))
    assert PairedImageDataModule().data_dir == tmp_path / "facades"


def test_training_crop_and_flip_are_the_same_for_both_halves(pairs_root):
    dm = PairedImageDataModule(data_dir=str(pairs_root), direction="AtoB", preprocess="crop", crop_size=32)
    dm.setup("fit")
    dataset = dm.datasets["train"]
    torch.manual_seed(0)
    offsets, flips = set(), set()
    for _ in range(40):
        s = dataset[0]
        assert s["input"].shape == s["target"].shape == (3, 32, 32)
        assert (s["input"] + s["target"]).abs().max() < 1e-6  # B = 255 - A, pixel for pixel
        ramp = s["input"][0, 0]
        flips.add(bool(ramp[0] > ramp[-1]))
        offsets.add(round(float(min(ramp[0], ramp[-1]) + 1) * 127.5 / 4))
    assert flips == {True, False}, "the random flip never (or always) happened"
    assert len(offsets) > 5, "the crop position does not vary"


def test_resize_and_crop_keeps_pairs_aligned_to_one_grey_level(pairs_root):
    dm = PairedImageDataModule(data_dir=str(pairs_root), direction="AtoB", load_size=40, crop_size=32, batch_size=3)
    dm.setup("fit")
    torch.manual_seed(1)
    batch = _first(dm)
    assert batch["input"].shape == batch["target"].shape == (3, 3, 32, 32)
    assert batch["input"].min() >= -1 and batch["input"].max() <= 1
    # bicubic resizing is linear and clipping symmetric, so B = 255 - A survives up to PIL's rounding
    assert (batch["input"] + batch["target"]).abs().max() <= 1 / 127.5 + 1e-6
    assert sorted(batch["name"]) == ["0.png", "1.png", "2.png"]


def test_evaluation_is_deterministic_unflipped_and_resized_to_crop_size(pairs_root):
    dm = PairedImageDataModule(data_dir=str(pairs_root), direction="AtoB", load_size=40, crop_size=32)
    dm.setup("fit")
    val = dm.datasets["val"]
    first = [val[i]["input"] for i in range(len(val))]
    assert all(torch.equal(x, val[i]["input"]) for i, x in enumerate(first))
    a = Image.open(pairs_root / "val" / "0.png").crop((0, 0, 48, 48)).resize((32, 32), Image.BICUBIC)
    expected = torch.from_numpy(np.asarray(a).copy()).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(first[0], expected)


def test_direction_picks_the_input_half(pairs_root):
    kw = dict(data_dir=str(pairs_root), preprocess="none")
    ab, ba = PairedImageDataModule(direction="AtoB", **kw), PairedImageDataModule(direction="BtoA", **kw)
    ab.setup("validate"), ba.setup("validate")
    s_ab, s_ba = ab.datasets["val"][1], ba.datasets["val"][1]
    assert torch.equal(s_ab["input"], s_ba["target"]) and torch.equal(s_ab["target"], s_ba["input"])
    left = np.asarray(Image.open(pairs_root / "val" / "1.png"))[:, :48]
    assert torch.equal(s_ab["input"], torch.from_numpy(left.copy()).permute(2, 0, 1).float() / 127.5 - 1)


def test_a_and_b_folders_are_paired_by_name(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("x", "y"):
        a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)  # non-square halves are fine in this layout
        for sub, img, ext in (("A", a, "png"), ("B", 255 - a, "png")):
            (tmp_path / "val" / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(tmp_path / "val" / sub / f"{name}.{ext}")
    dm = PairedImageDataModule(data_dir=str(tmp_path), direction="AtoB", preprocess="none", batch_size=2)
    dm.setup("validate")
    with pytest.warns(UserWarning, match="multiples of 4"):
        batch = _first(dm, "val")
    assert batch["input"].shape == (2, 3, 20, 32)  # 'none' rounds to multiples of 4, like the official code
    assert batch["name"] == ["x.png", "y.png"]


def _error(dm, stage="fit") -> str:
    with pytest.raises(DatasetNotFoundError) as info:
        dm.setup(stage)
    return str(info.value)


def test_bad_side_by_side_files_are_named(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train").mkdir()
    Image.fromarray(rng.integers(0, 256, (32, 63, 3), dtype=np.uint8)).save(tmp_path / "train" / "odd.png")
    msg = _error(PairedImageDataModule(data_dir=str(tmp_path)))
    assert "odd.png" in msg and "63x32" in msg and "even" in msg and "twice its height" in msg
    (tmp_path / "train" / "odd.png").unlink()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "train" / "square.png")
    msg = _error(PairedImageDataModule(data_dir=str(tmp_path)))
    assert "square.png" in msg and "not an A|B pair" in msg


def test_unmatched_names_between_a_and_b_are_listed(tmp_path):
    img = Image.new("RGB", (8, 8))
    for sub, names in (("A", ("1", "2", "3")), ("B", ("1", "2", "4"))):
        (tmp_path / "train" / sub).mkdir(parents=True)
        for n in names:
            img.save(tmp_path / "train" / sub / f"{n}.png")
    msg = _error(PairedImageDataModule(data_dir=str(tmp_path)))
    assert "only in A/ ['3']" in msg and "only in B/ ['4']" in msg and str(tmp_path / "train" / "A") in msg


def test_missing_or_empty_split_folder_is_named(pairs_root):
    import shutil

    shutil.rmtree(pairs_root / "val")
    msg = _error(PairedImageDataModule(data_dir=str(pairs_root)))
    assert "'val' split" in msg and str(pairs_root / "val") in msg and "data_dir" in msg
    (pairs_root / "val").mkdir()
    msg = _error(PairedImageDataModule(data_dir=str(pairs_root)), "validate")
    assert "'val' split" in msg and "val/A/" in msg


def test_bad_options_list_the_valid_values(tmp_path):
    with pytest.raises(ValueError, match="AtoB, BtoA"):
        PairedImageDataModule(direction="AB")
    with pytest.raises(ValueError, match="resize_and_crop, crop, scale_width, scale_width_and_crop, none"):
        PairedImageDataModule(preprocess="resize")
    with pytest.raises(ValueError, match=r"crop_size \(300\) must not exceed load_size \(286\)"):
        PairedImageDataModule(crop_size=300)
    with pytest.raises(ValueError, match="valid names: facades"):
        PairedImageDataModule(label_palette="cityscapes")
    with pytest.raises(ValueError, match="triplets"):
        PairedImageDataModule(label_palette=[[0, 0, 0], [1, 2]])


def test_label_palette_nearest_colour_and_nearest_resize(tmp_path):
    palette = [[0, 0, 0], [255, 0, 0], [0, 0, 255]]
    rng = np.random.default_rng(0)
    index = np.zeros((48, 48), dtype=np.uint8)
    index[8:30, 5:20], index[25:45, 28:46] = 1, 2
    colours = np.asarray(palette, dtype=np.int16)[index]
    noisy = np.clip(colours + rng.integers(-40, 41, colours.shape), 0, 255).astype(np.uint8)  # "JPEG" noise
    for split in ("train", "val"):
        _save_pair(tmp_path / split / "0.png", colours.astype(np.uint8), noisy)  # B = label map, A = "photo"
    dm = PairedImageDataModule(data_dir=str(tmp_path), label_palette=palette, load_size=40, crop_size=32)
    assert dm.num_classes == 3 and dm.input_channels == 3
    dm.setup("fit")
    val = dm.datasets["val"][0]
    expected = np.asarray(Image.fromarray(index).resize((32, 32), Image.NEAREST))
    assert torch.equal(val["label"], torch.from_numpy(expected.astype(np.int64)))
    assert val["input"].shape == (3, 32, 32) and torch.equal(val["input"].argmax(0), val["label"])
    assert torch.equal(val["input"].sum(0), torch.ones(32, 32))
    torch.manual_seed(0)
    for _ in range(5):  # training: label map and target share crop and flip
        s = dm.datasets["train"][0]
        assert set(s["label"].unique().tolist()) <= {0, 1, 2}
        diff = (labels_to_rgb(s["label"], palette) - s["target"]).abs().mean()
        assert diff < 0.05, f"label map and target are misaligned (mean abs diff {diff:.3f})"


def test_rgb_to_labels_picks_the_nearest_colour():
    palette = np.array([[0, 0, 0], [250, 250, 250]])
    rgb = np.array([[[10, 20, 5], [200, 240, 255], [126, 126, 126]]], dtype=np.uint8)
    assert rgb_to_labels(rgb, palette).tolist() == [[0, 1, 1]]


def test_predict_dir_keeps_names_and_original_sizes(tmp_path):
    (tmp_path / "in").mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "in" / "wide.png")
    Image.new("L", (20, 50), 0).save(tmp_path / "in" / "tall.jpg")
    dm = PairedImageDataModule(
        data_dir=str(tmp_path / "nowhere"), predict_dir=str(tmp_path / "in"), crop_size=64, load_size=64
    )
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    assert [b["name"] for b in batches] == [["tall.jpg"], ["wide.png"]]
    assert [b["size"].tolist() for b in batches] == [[[50, 20]], [[30, 40]]]
    assert all(b["input"].shape == (1, 3, 64, 64) and b["size"].dtype == torch.long for b in batches)
    assert torch.allclose(batches[1]["input"][0, 0], torch.ones(64, 64))


def test_default_predict_set_is_the_test_input_halves(pairs_root):
    dm = PairedImageDataModule(data_dir=str(pairs_root), direction="BtoA", crop_size=48, load_size=48)
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    assert [b["name"][0] for b in batches] == ["0.png", "1.png"]
    right = np.asarray(Image.open(pairs_root / "test" / "0.png"))[:, 48:]
    assert torch.equal(batches[0]["input"][0], torch.from_numpy(right.copy()).permute(2, 0, 1).float() / 127.5 - 1)
    assert batches[0]["size"].tolist() == [[48, 48]]


def test_every_constructor_argument_is_documented():
    doc = inspect.getdoc(PairedImageDataModule)
    documented = set(re.findall(r"^    (\w+):", doc.split("Args:")[1], flags=re.M))
    assert set(inspect.signature(PairedImageDataModule).parameters) == documented


# ---------------------------------------------------------------- real facades


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_real_facades_splits_are_official_and_disjoint():
    root = real_data_dir("facades")
    dm = PairedImageDataModule(data_dir=str(root))
    dm.setup("fit"), dm.setup("test")
    files = {s: [a for a, _ in dm.datasets[s].pairs] for s in ("train", "val", "test")}
    assert {s: len(f) for s, f in files.items()} == {"train": 400, "val": 100, "test": 106}
    for split, paths in files.items():
        assert all(p.parent == root / split for p in paths)
    # the same names (1.jpg ...) exist in every split: compare contents, not names
    hashes = {s: {_md5(p) for p in f} for s, f in files.items()}
    assert all(len(h) == len(files[s]) for s, h in hashes.items())
    assert not (hashes["train"] & hashes["val"]) and not (hashes["train"] & hashes["test"])
    assert not (hashes["val"] & hashes["test"])
    batch = _first(dm)
    assert batch["input"].shape == batch["target"].shape == (1, 3, 256, 256)
    assert -1 <= batch["input"].min() < batch["input"].max() <= 1


def test_real_facades_palette_fits_the_label_maps():
    root = real_data_dir("facades")
    palette, names = resolve_palette("facades")
    assert len(palette) == len(names) == 12 and palette.tolist() == [list(c) for c in FACADES_PALETTE]
    counts = np.zeros(12, dtype=np.int64)
    far_inside = total = 0
    for path in sorted((root / "val").glob("*.jpg"))[:40]:
        label_half = np.asarray(Image.open(path).convert("RGB"))[:, 256:]
        labels = rgb_to_labels(label_half, palette)
        counts += np.bincount(labels.ravel(), minlength=12)
        dist = np.sqrt(((label_half.astype(np.int32) - palette[labels]) ** 2).sum(-1))
        # pixels whose 5x5 neighbourhood has a single class and which are not at the seam with the photo
        inside = ndimage.maximum_filter(labels, 5) == ndimage.minimum_filter(labels, 5)
        inside[:, :3] = False
        far_inside += int(((dist > 40) & inside).sum())
        total += labels.size
    assert (counts > 0).all(), f"a palette colour never occurs: {counts}"
    assert far_inside / total < 0.005, "many pixels inside label regions are far from every palette colour"

    dm = PairedImageDataModule(data_dir=str(root), label_palette="facades")
    dm.setup("validate")
    s = dm.datasets["val"][0]
    assert s["input"].shape == (12, 256, 256) and s["label"].shape == (256, 256) and s["target"].shape[0] == 3
    assert s["label"].max() < 12 and torch.equal(s["input"].argmax(0), s["label"])
