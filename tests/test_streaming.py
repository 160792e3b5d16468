"""Streaming from LitData chunks (datamodules.streaming, ``lightning-gans optimize``): round trips folder -> chunks
-> batches for every streamable datamodule, DDP sharding, mid-epoch resume with workers, and the bad inputs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import (
    CaptionFolderDataModule,
    CelebADataModule,
    DatasetNotFoundError,
    MNISTDataModule,
    PairedImageDataModule,
    SuperResolutionDataModule,
)
from datamodules.streaming import MANIFEST, optimize
from lightning_gans.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ tiny datasets
def _noise(rng, h: int, w: int, channels: int = 3) -> Image.Image:
    shape = (h, w, channels) if channels == 3 else (h, w)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


def _faces(root: Path, n: int = 24) -> dict:
    """n noise 'faces' (20 x 24, PNG and JPEG) with a 40-attribute file: CelebADataModule's arguments."""
    rng = np.random.default_rng(0)
    (root / "imgs").mkdir(parents=True)
    names = [f"{i:06d}.{'png' if i % 2 else 'jpg'}" for i in range(n)]
    for name in names:
        _noise(rng, 24, 20).save(root / "imgs" / name)
    attrs = [f"A{k}" for k in range(40)]
    rows = [f"{name} " + " ".join(str(v) for v in rng.choice([-1, 1], 40)) for name in names]
    (root / "attr.txt").write_text(f"{n}\n{' '.join(attrs)}\n" + "\n".join(rows) + "\n")
    return dict(data_dir=str(root), image_folder="imgs", attr_file="attr.txt", partition_file=None, image_size=16)


def _pairs(root: Path) -> dict:
    rng = np.random.default_rng(1)
    for split, n in (("train", 8), ("val", 4), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            _noise(rng, 40, 80).save(root / split / f"{i}.jpg")
    return dict(data_dir=str(root), load_size=36, crop_size=32)


def _superres(root: Path) -> dict:
    rng = np.random.default_rng(2)
    (root / "hr").mkdir(parents=True)
    for i in range(10):
        _noise(rng, 40 + i, 36).save(root / "hr" / f"{i}.png")
    return dict(data_dir=str(root), train_dir="hr", val_dir=None, val_fraction=0.3, scale=2, hr_size=16)


def _mnist(root: Path) -> dict:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(3)

    def idx(name: str, array: np.ndarray) -> None:
        header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        (raw / name).write_bytes(header + array.astype(np.uint8).tobytes())

    for split, n in (("train", 40), ("t10k", 12)):
        idx(f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        idx(f"{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    return dict(data_dir=str(root), download=False, val_size=8)


def _captions(root: Path) -> dict:
    rng = np.random.default_rng(4)
    words = ["red", "blue", "small", "large", "bird", "flower", "with", "a"]
    for i in range(12):
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "text").mkdir(parents=True, exist_ok=True)
        _noise(rng, 20, 20).save(root / "images" / f"{i}.png")
        lines = [" ".join(rng.choice(words, 4)) for _ in range(3)]
        (root / "text" / f"{i}.txt").write_text("\n".join(lines) + "\n")
    return dict(data_dir=str(root), image_size=16, val_fraction=0.25)


KINDS = {
    "celeba": (CelebADataModule, _faces),
    "paired": (PairedImageDataModule, _pairs),
    "superres": (SuperResolutionDataModule, _superres),
    "mnist": (MNISTDataModule, _mnist),
    "captions": (CaptionFolderDataModule, _captions),
}


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _images(batch) -> torch.Tensor:
    return batch["target"] if isinstance(batch, dict) else batch[0]


# ------------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_round_trip_folder_chunks_batches(kind: str, tmp_path: Path):
    cls, make = KINDS[kind]
    kwargs = make(tmp_path / "data") | {"batch_size": 2}
    folder = cls(**kwargs)
    manifest = optimize(folder, str(tmp_path / "chunks"))
    assert manifest["datamodule"] == cls.__name__ and manifest["splits"]["val"] > 0
    streamed = cls(**kwargs, streaming_dir=str(tmp_path / "chunks"))
    folder.setup("fit")
    streamed.setup("fit")

    # validation: the same batches, in the same order, through the same transforms (workers 0)
    expected, got = list(folder.val_dataloader()), list(streamed.val_dataloader())
    assert len(got) == len(expected) > 0
    for a, b in zip(expected, got):
        assert _equal(a, b)
        assert -1 <= float(_images(b).min()) and float(_images(b).max()) <= 1

    # training: shuffled by LitData, every batch full; the epoch's images are the split's (up to the dropped tail)
    batches = list(streamed.train_dataloader())
    assert batches and all(len(_images(b)) == 2 for b in batches)
    if kind in ("celeba", "mnist"):  # deterministic transforms: the very tensors of the folder's items
        pool = {tuple(x.flatten()[:32].tolist()) for x in (item[0] for item in folder.datasets_train())}
        for b in batches:
            assert all(tuple(x.flatten()[:32].tolist()) in pool for x in b[0])
    if kind == "captions":
        assert streamed.vocabulary == folder.vocabulary
        assert streamed.example_captions == folder.example_captions
        known = {t for cs in folder._raw_split("train")[1] for t in cs}
        assert all(text in known for b in batches for text in b[2])


@pytest.fixture(autouse=True)
def _train_items(monkeypatch):
    """``datasets_train()``: the folder datamodule's training items, whatever its attribute names."""

    def items(self):
        train = getattr(self, "train_set", None) or self.datasets["train"]
        return [train[i] for i in range(len(train))]

    for cls, _ in KINDS.values():
        monkeypatch.setattr(cls, "datasets_train", items, raising=False)


def test_celeba_targets_and_attribute_names_come_with_the_chunks(tmp_path: Path):
    kwargs = _faces(tmp_path / "data") | {"batch_size": 4, "val_fraction": 0.25}
    folder = CelebADataModule(**kwargs)
    optimize(folder, str(tmp_path / "chunks"), splits=("train", "val"))
    streamed = CelebADataModule(**kwargs, streaming_dir=str(tmp_path / "chunks"))
    streamed.setup("fit")
    assert streamed.attribute_names == folder.attribute_names == [f"A{k}" for k in range(40)]
    images, targets = next(iter(streamed.train_dataloader()))
    assert images.shape == (4, 3, 16, 16) and targets.shape == (4, 40) and set(targets.unique().tolist()) <= {0, 1}
    # the same chunks at another resolution: transforms apply when reading
    bigger = CelebADataModule(**(kwargs | {"image_size": 20}), streaming_dir=str(tmp_path / "chunks"))
    bigger.setup("fit")
    assert next(iter(bigger.val_dataloader()))[0].shape[-1] == 20


def test_reencoded_chunks_are_smaller_and_refuse_a_larger_image_size(tmp_path: Path):
    kwargs = _faces(tmp_path / "data", n=12) | {"batch_size": 2}
    folder = CelebADataModule(**kwargs)
    optimize(folder, str(tmp_path / "source"), splits=("train",))
    optimize(folder, str(tmp_path / "small"), splits=("train",), min_side=8, image_format="jpeg", quality=80)

    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*.bin"))

    assert size(tmp_path / "small") < size(tmp_path / "source")
    streamed = CelebADataModule(**kwargs, streaming_dir=str(tmp_path / "small"))
    with pytest.raises(ValueError, match=r"shorter side at 8 pixels.*image_size=16.*--min_side >= 16"):
        streamed.setup("fit")


# ------------------------------------------------------------------------------------------------ the command
def test_optimize_command_writes_chunks_and_refuses_a_second_run(tmp_path: Path, capsys):
    kwargs = _faces(tmp_path / "data", n=8)
    config = tmp_path / "exp.yaml"
    config.write_text(
        "trainer:\n  max_epochs: 1\nmodel:\n  class_path: lightning_gans.models.DCGAN\n"
        "data:\n  class_path: datamodules.CelebADataModule\n  init_args:\n    attr_file: null\n    val_fraction: 0.25\n"
    )
    out = tmp_path / "chunks"
    args = ["optimize", "--config", str(config), "--data.init_args.data_dir", kwargs["data_dir"]]
    args += ["--data.init_args.image_folder", "imgs", "--data.init_args.partition_file", "null"]
    cli_main([*args, "--output_dir", str(out), "--splits", "[train, val]"])
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "train", "val"])
    assert "wrote CelebADataModule (train 6, val 2)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main([*args, "--output_dir", str(out)])
    assert "is not empty" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_streaming_dirs_are_clear_errors(tmp_path: Path):
    faces = _faces(tmp_path / "faces", n=8) | {"batch_size": 2, "val_fraction": 0.25}
    pairs = _pairs(tmp_path / "pairs")

    with pytest.raises(DatasetNotFoundError, match=r"'.*nowhere' does not exist.*lightning-gans optimize"):
        CelebADataModule(**faces, streaming_dir=str(tmp_path / "nowhere")).setup("fit")

    optimize(PairedImageDataModule(**pairs), str(tmp_path / "paired_chunks"))
    with pytest.raises(DatasetNotFoundError, match=r"written from a PairedImageDataModule.*this datamodule is Celeb"):
        CelebADataModule(**faces, streaming_dir=str(tmp_path / "paired_chunks")).setup("fit")

    optimize(CelebADataModule(**faces), str(tmp_path / "half"))
    for f in (tmp_path / "half" / MANIFEST).iterdir():  # optimize killed before its last step
        f.unlink()
    (tmp_path / "half" / MANIFEST).rmdir()
    with pytest.raises(DatasetNotFoundError, match=r"no finished optimize output.*interrupted.*run optimize again"):
        CelebADataModule(**faces, streaming_dir=str(tmp_path / "half")).setup("fit")

    optimize(CelebADataModule(**faces), str(tmp_path / "no_test"), splits=("train", "val"))
    with pytest.raises(DatasetNotFoundError, match=r"has no 'test' split \(it has train, val\)"):
        CelebADataModule(**faces, streaming_dir=str(tmp_path / "no_test")).setup("test")


def test_unreachable_uri_is_a_clear_error_before_training(tmp_path: Path, monkeypatch):
    # a bucket behind an endpoint that refuses connections: fails fast instead of after the network's timeouts
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    dm = CelebADataModule(data_dir=str(tmp_path), streaming_dir="s3://no-such-bucket/celeba", batch_size=2)
    with pytest.raises(
        DatasetNotFoundError, match=r"cannot read the streaming dataset at 's3://no-such-bucket/celeba'"
    ):
        dm.setup("fit")


# ------------------------------------------------------------------------------------------------ DDP, resume
DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch, lightning as L
    from pathlib import Path
    from datamodules import CelebADataModule

    class Record(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []
        def training_step(self, batch, batch_idx):
            self.seen += [round(float(x.sum()), 3) for x in batch[0]]
            return (self.w * batch[0].mean()).sum()
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    out, data, chunks = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    L.seed_everything(0)
    dm = CelebADataModule(data_dir=data, image_folder="imgs", attr_file=None, partition_file=None, image_size=16,
                          val_fraction=0.0, batch_size=2, streaming_dir=chunks)
    model = Record()
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        limit_val_batches=0)
    trainer.fit(model, dm)
    (out / f"rank{trainer.global_rank}.txt").write_text(" ".join(map(str, model.seen)))
    """
)


@pytest.mark.ddp
def test_ddp_ranks_read_disjoint_shards_that_cover_the_epoch(tmp_path: Path):
    kwargs = _faces(tmp_path / "data", n=16) | {"attr_file": None, "val_fraction": 0.0, "batch_size": 2}
    folder = CelebADataModule(**kwargs)
    optimize(folder, str(tmp_path / "chunks"))  # no validation images: an empty val split
    folder.setup("fit")
    every = sorted(round(float(item[0].sum()), 3) for item in folder.datasets_train())
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), kwargs["data_dir"], str(tmp_path / "chunks")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rank0 = [float(v) for v in (tmp_path / "rank0.txt").read_text().split()]
    rank1 = [float(v) for v in (tmp_path / "rank1.txt").read_text().split()]
    assert len(rank0) == len(rank1) == 8  # 16 images, 2 ranks: as many batches on each
    assert not set(rank0) & set(rank1)
    assert sorted(rank0 + rank1) == every


def _fit(root: Path, data: dict, chunks: Path, max_steps: int, ckpt_path: str | None = None):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_gans.models import DCGAN

    L.seed_everything(3)
    dm = CelebADataModule(**data, streaming_dir=str(chunks))
    model = DCGAN(image_shape=(3, 16, 16), latent_dim=8, g_channels=4, d_channels=4)
    seen: list[float] = []
    model.on_train_batch_start = lambda batch, i: seen.extend(round(float(x.sum()), 3) for x in batch[0])
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        deterministic=True,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        limit_val_batches=0,
        callbacks=[ModelCheckpoint(dirpath=root / "ckpt", every_n_train_steps=6, save_top_k=-1)],
    )
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    return model, seen


def test_mid_epoch_resume_with_workers_continues_with_the_same_batches(tmp_path: Path):
    """k steps, a checkpoint in the middle of an epoch, resumed to 2k == 2k straight (2 workers, LitData's state)."""
    data = _faces(tmp_path / "data", n=20) | {"attr_file": None, "val_fraction": 0.0, "batch_size": 2}
    data |= {"num_workers": 2}
    chunks = tmp_path / "chunks"
    optimize(CelebADataModule(**data), str(chunks))
    # 10 batches an epoch, 2 optimizer steps a batch: step 6 is batch 3 of epoch 0, step 26 batch 3 of epoch 1
    straight, seen_straight = _fit(tmp_path / "a", data, chunks, max_steps=26)
    _fit(tmp_path / "b", data, chunks, max_steps=6)
    ckpt = tmp_path / "b" / "ckpt" / "epoch=0-step=6.ckpt"
    assert ckpt.is_file()
    resumed, seen_resumed = _fit(tmp_path / "b", data, chunks, max_steps=26, ckpt_path=str(ckpt))
    assert seen_resumed == seen_straight[6:]  # the batch after the checkpoint comes next, then the next epoch's
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), f"{key} differs after resume"


def test_fit_and_validate_from_chunks_through_the_cli(tmp_path: Path, monkeypatch):
    """The shipped config with ``--data.init_args.streaming_dir``: trains, checkpoints, validates."""
    from lightning_gans.cli import GANCLI

    kwargs = _faces(tmp_path / "data", n=16) | {"attr_file": None, "val_fraction": 0.25, "image_size": 32}
    optimize(CelebADataModule(**kwargs), str(tmp_path / "chunks"))
    monkeypatch.setattr(sys, "argv", ["lightning-gans"])
    common = ["--config", str(ROOT / "configs" / "dcgan_celeba32.yaml"), "--trainer.callbacks", "[]"]
    common += ["--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.enable_progress_bar", "false"]
    common += ["--data.init_args.data_dir", str(tmp_path / "nowhere"), "--data.init_args.batch_size", "4"]
    common += ["--data.init_args.streaming_dir", str(tmp_path / "chunks"), "--model.init_args.g_channels", "8"]
    common += ["--model.init_args.d_channels", "8"]
    cli = GANCLI(args=["fit", *common, "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "1"])
    assert cli.model.g_steps == 3  # 12 training faces, batch 4; the image folder is never read
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    cli = GANCLI(args=["validate", *common, "--ckpt_path", str(tmp_path / "run" / "checkpoints" / "last.ckpt")])
    assert cli.trainer.state.finished
