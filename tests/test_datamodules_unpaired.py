"""UnpairedImageDataModule: independent B sampling, epoch length, channel conversion, val/test pairing, errors."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.base import DatasetNotFoundError
from datamodules.unpaired import UnpairedImageDataModule
from tests.conftest import real_data_dir


@pytest.fixture
def domains(tmp_path):
    """trainA: 3 images (RGB jpg, grey png, RGBA png); trainB: 5; testA: 2; testB: 3."""
    rng = np.random.default_rng(0)
    layout = {"trainA": 3, "trainB": 5, "testA": 2, "testB": 3}
    for folder, n in layout.items():
        (tmp_path / folder).mkdir()
        for i in range(n):
            img = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
            if i % 3 == 1:
                img.convert("L").save(tmp_path / folder / f"{i}_{folder[-1]}.png")
            elif i % 3 == 2:
                img.convert("RGBA").save(tmp_path / folder / f"{i}_{folder[-1]}.png")
            else:
                img.save(tmp_path / folder / f"{i}_{folder[-1]}.jpg")
    return tmp_path


def _kw(root, **extra):
    return dict(data_dir=str(root), load_size=36, crop_size=32) | extra


def test_shape_known_before_reading_files(tmp_path, monkeypatch):
    dm = UnpairedImageDataModule(data_dir=str(tmp_path / "nowhere"), output_nc=1, crop_size=128, load_size=143)
    assert dm.image_shape == (1, 128, 128) and dm.num_classes == 0 and dm.input_channels == 3
    monkeypatch.setenv("LIGHTNING_GANS_DATA_DIR", str(tmp_path))
    assert UnpairedImageDataModule().data_dir == tmp_path / "facades_unpaired"


def test_training_epoch_is_the_longer_domain_and_converts_to_rgb(domains):
    dm = UnpairedImageDataModule(**_kw(domains, batch_size=5))
    dm.setup("fit")
    train = dm.datasets["train"]
    assert len(train) == 5
    # A is indexed by the sample index modulo its length
    assert [train[i]["name_A"] for i in range(5)] == ["0_A.jpg", "1_A.png", "2_A.png", "0_A.jpg", "1_A.png"]
    batch = next(iter(dm.train_dataloader()))
    assert batch["A"].shape == batch["B"].shape == (5, 3, 32, 32)  # grey and RGBA files became RGB
    assert -1 <= batch["A"].min() and batch["A"].max() <= 1
    assert len(batch["name_A"]) == len(batch["name_B"]) == 5


def test_b_is_drawn_at_random_in_training(domains):
    dm = UnpairedImageDataModule(**_kw(domains))
    dm.setup("fit")
    torch.manual_seed(0)
    names_b = [dm.datasets["train"][0]["name_B"] for _ in range(30)]
    assert len(set(names_b)) > 2


def test_grey_channels_follow_input_nc_and_output_nc(domains):
    dm = UnpairedImageDataModule(**_kw(domains, input_nc=1))
    dm.setup("fit")
    s = dm.datasets["train"][2]  # an RGBA file
    assert s["A"].shape == (1, 32, 32) and s["B"].shape == (3, 32, 32)


def test_validation_pairs_deterministically_and_prefers_val_folders(domains):
    dm = UnpairedImageDataModule(**_kw(domains))
    dm.setup("validate")
    val = dm.datasets["val"]
    pairs = [(val[i]["name_A"], val[i]["name_B"]) for i in range(len(val))]
    assert pairs == [("0_A.jpg", "0_B.jpg"), ("1_A.png", "1_B.png"), ("0_A.jpg", "2_B.png")]  # testA/testB
    assert torch.equal(val[0]["A"], val[0]["A"])  # no random crop or flip
    for sub in ("valA", "valB"):
        (domains / sub).mkdir()
        Image.new("RGB", (40, 40)).save(domains / sub / f"v_{sub[-1]}.png")
    dm.setup("validate")
    assert dm.datasets["val"][0]["name_A"] == "v_A.png" and len(dm.datasets["val"]) == 1
    dm.setup("test")
    assert len(dm.datasets["test"]) == 3


def test_missing_or_empty_domain_folder_is_named(domains):
    import shutil

    shutil.rmtree(domains / "trainB")
    with pytest.raises(DatasetNotFoundError, match="'trainB/'") as info:
        UnpairedImageDataModule(**_kw(domains)).setup("fit")
    assert "data_dir" in str(info.value) and str(domains) in str(info.value)
    (domains / "trainB").mkdir()
    with pytest.raises(DatasetNotFoundError, match="holds no images") as info:
        UnpairedImageDataModule(**_kw(domains)).setup("fit")
    assert str(domains / "trainB") in str(info.value)


def test_bad_options_list_the_valid_values():
    with pytest.raises(ValueError, match="AtoB, BtoA, both"):
        UnpairedImageDataModule(predict_direction="AB")
    with pytest.raises(ValueError, match="choose 'AtoB' or 'BtoA'"):
        UnpairedImageDataModule(predict_dir="x", predict_direction="both")
    with pytest.raises(ValueError, match="scale_width_and_crop"):
        UnpairedImageDataModule(preprocess="zoom")
    with pytest.raises(ValueError, match="input_nc must be 1"):
        UnpairedImageDataModule(input_nc=4)


def test_predict_both_directions_by_default(domains):
    dm = UnpairedImageDataModule(**_kw(domains, predict_direction="both", output_nc=1))
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    assert [b["direction"][0] for b in batches] == ["AtoB"] * 2 + ["BtoA"] * 3
    assert batches[0]["name"] == ["0_A.jpg"] and batches[2]["name"] == ["0_B.jpg"]
    assert batches[0]["input"].shape == (1, 3, 32, 32) and batches[2]["input"].shape == (1, 1, 32, 32)
    assert batches[0]["size"].tolist() == [[40, 40]]


def test_predict_dir(tmp_path):
    (tmp_path / "in").mkdir()
    Image.new("RGB", (50, 20)).save(tmp_path / "in" / "a.png")
    dm = UnpairedImageDataModule(data_dir=str(tmp_path), predict_dir=str(tmp_path / "in"), predict_direction="BtoA")
    dm.setup("predict")
    (batch,) = list(dm.predict_dataloader())
    assert batch["name"] == ["a.png"] and batch["direction"] == ["BtoA"] and batch["size"].tolist() == [[20, 50]]
    assert batch["input"].shape == (1, 3, 256, 256)


def test_every_constructor_argument_is_documented():
    doc = inspect.getdoc(UnpairedImageDataModule)
    documented = set(re.findall(r"^    (\w+):", doc.split("Args:")[1], flags=re.M))
    assert set(inspect.signature(UnpairedImageDataModule).parameters) == documented


def test_real_facades_unpaired_loader_does_not_hand_back_the_hidden_pairs():
    root = real_data_dir("facades_unpaired")
    dm = UnpairedImageDataModule(data_dir=str(root), batch_size=8)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 400 and len(dm.datasets["val"]) == 106
    torch.manual_seed(0)
    names_a, matches = [], 0
    for batch in dm.train_dataloader():
        names_a += batch["name_A"]
        matches += sum(a.split("_")[0] == b.split("_")[0] for a, b in zip(batch["name_A"], batch["name_B"]))
    assert len(names_a) == 400 and len(set(names_a)) == 400  # every A once per epoch
    assert matches / 400 < 0.03, f"{matches} of 400 samples are the hidden pair (expected about 1)"
    assert batch["A"].shape[1:] == batch["B"].shape[1:] == (3, 256, 256)
    val = next(iter(dm.val_dataloader()))  # deterministic pairing: index i with i
    assert [a.split("_")[0] for a in val["name_A"]] == [b.split("_")[0] for b in val["name_B"]]
