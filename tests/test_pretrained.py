"""Pretrained folders (lightning_gans.pretrained, `lightning-gans export --format pretrained`): every family round-trips
to the same images, loading reads no pickle, and bad input fails with a message before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

import lightning_gans
from lightning_gans.cli import main
from lightning_gans.models import FAMILIES
from lightning_gans.pretrained import CARD, CONFIG, GRID, WEIGHTS, PretrainedError, from_pretrained
from tests.conftest import quiet_trainer
from tests.families import TINY

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _trained(name: str, root: Path):
    """The tiny model after a few training steps (so EMA copies and batch-norm statistics differ from the start)."""
    torch.manual_seed(0)
    model = FAMILIES[name](**TINY[name].kwargs)
    batch = TINY[name].batch()
    quiet_trainer(root, max_steps=4, limit_val_batches=0).fit(model, DataLoader([batch] * 2, batch_size=None))
    return model, batch


def _outputs(model, batch, name: str) -> torch.Tensor:
    torch.manual_seed(1)
    if TINY[name].samples_from_noise:
        z = torch.randn(3, model.latent_dim)
        if model.takes_text:
            return model.sample(z=z, text=["a thick seven", "a thin one", "a one"])
        return model.sample(z=z, labels=torch.tensor([0, 1, 2]) if model.conditional else None)
    x = batch["A"] if isinstance(batch, dict) and "A" in batch else batch["input"]
    return model.translate(x)


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_family_round_trips_to_the_same_images(name: str, tmp_path: Path):
    model, batch = _trained(name, tmp_path)
    folder = model.save_pretrained(str(tmp_path / "pretrained"))
    assert sorted(p.name for p in folder.iterdir()) == sorted({CARD, CONFIG, WEIGHTS, GRID})
    with mock.patch("torch.load", side_effect=AssertionError("from_pretrained unpickled")):
        loaded = lightning_gans.from_pretrained(folder)
    assert type(loaded) is type(model) and not loaded.training
    assert torch.equal(_outputs(model, batch, name), _outputs(loaded, batch, name))  # exact on the CPU
    config = json.loads((folder / CONFIG).read_text())
    assert config["family"] == name and config["image_shape"] == list(model.image_shape)
    assert getattr(loaded, "discriminator", None) is None  # the sampling side only


def test_the_weights_file_holds_the_ema_generator_and_no_discriminator(tmp_path: Path):
    from safetensors.torch import load_file

    model, _ = _trained("ESRGAN", tmp_path)
    state = load_file(str(model.save_pretrained(str(tmp_path / "p")) / WEIGHTS))
    assert not any(k.startswith(("discriminator", "generator_ema", "fixed_batch")) for k in state)
    for key, value in model.generator_ema.module.state_dict().items():
        assert torch.equal(state[f"generator.{key}"], value)  # the EMA weights, not the raw G's
    raw = model.generator.state_dict()
    assert any(not torch.equal(state[f"generator.{k}"], v) for k, v in raw.items() if v.is_floating_point())


def test_a_changed_or_missing_file_fails_naming_it(tmp_path: Path):
    model, _ = _trained("DCGAN", tmp_path)
    folder = model.save_pretrained(str(tmp_path / "p"))
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[-1] ^= 0xFF  # one bit of one weight
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(PretrainedError, match=r"model.safetensors was changed.*SHA-256"):
        from_pretrained(folder)
    (folder / WEIGHTS).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    config = json.loads((folder / CONFIG).read_text())
    config["weights"].pop("sha256")
    (folder / CONFIG).write_text(json.dumps(config))
    with pytest.raises(PretrainedError, match=r"model.safetensors is damaged"):
        from_pretrained(folder)
    (folder / WEIGHTS).unlink()
    with pytest.raises(PretrainedError, match=r"model.safetensors is missing"):
        from_pretrained(folder)
    (folder / CONFIG).unlink()
    with pytest.raises(PretrainedError, match=r"config.json is missing"):
        from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match=r"neither a pretrained folder.*nor a Hugging Face Hub repo id"):
        from_pretrained(tmp_path / "nowhere")


def test_weights_of_another_export_are_refused(tmp_path: Path):
    model, _ = _trained("DCGAN", tmp_path)
    folder = model.save_pretrained(str(tmp_path / "p"))
    config = json.loads((folder / CONFIG).read_text())
    config["init_args"]["g_channels"] = 8
    config["weights"].pop("sha256")
    (folder / CONFIG).write_text(json.dumps(config))
    with pytest.raises(PretrainedError, match=r"does not fit the DCGAN that config.json builds.*different exports"):
        from_pretrained(folder)


def test_export_writes_the_runs_metrics_into_the_card_and_refuses_bad_input(tmp_path: Path, capsys):
    class KnownMetrics(L.Callback):  # a validation that logs known values
        def on_validation_epoch_end(self, trainer, pl_module):
            pl_module.log("val/fid", 12.5)
            pl_module.log("val/kid", 0.25)

    torch.manual_seed(0)
    model = FAMILIES["DCGAN"](**TINY["DCGAN"].kwargs)
    loader = DataLoader([TINY["DCGAN"].batch()] * 2, batch_size=None)
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=1, callbacks=[KnownMetrics()])
    trainer.fit(model, loader, loader)
    ckpt = tmp_path / "run.ckpt"
    trainer.save_checkpoint(ckpt)
    out = tmp_path / "out"
    main(["export", "--config", str(CONFIGS / "dcgan_mnist.yaml"), "--ckpt_path", str(ckpt), "--output", str(out)])
    card = (out / CARD).read_text()
    assert "| val/fid | 12.5 |" in card and "| val/kid | 0.25 |" in card
    assert "lightning-gans fit --config configs/dcgan_mnist.yaml" in card and "datamodules.MNISTDataModule" in card
    assert card.startswith("---\nlibrary_name: lightning-gans") and f"![samples]({GRID})" in card
    # bad input: a message, nothing written
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    for argv, message in [
        (["--format", "tflite", "--output", str(tmp_path / "a")], "unknown export format 'tflite'"),
        (["--output", str(tmp_path / "full")], "already holds files"),
        (["--config", str(CONFIGS / "wgan_mnist.yaml"), "--output", str(tmp_path / "b")], "holds a DCGAN, but the"),
    ]:
        with pytest.raises(SystemExit):
            main(["export", "--ckpt_path", str(ckpt), *argv])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_predict_takes_a_pretrained_folder_and_writes_the_python_apis_images(tmp_path: Path, monkeypatch):
    import numpy as np
    from PIL import Image

    from lightning_gans.callbacks.common import to_uint8
    from lightning_gans.core import PredictRequest

    model, _ = _trained("CGAN", tmp_path)
    folder = model.save_pretrained(str(tmp_path / "pre"))
    monkeypatch.setattr("sys.argv", ["lightning-gans"])
    out = tmp_path / "out"
    main(
        ["predict", "--pretrained", str(folder), "--writer.output_dir", str(out), "--writer.num_samples", "4"]
        + ["--writer.label", "3", "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.logger", "false"]
    )
    loaded = from_pretrained(folder)
    loaded.predict_request = PredictRequest(num_samples=4, label=3, seed=0)
    batch = next(iter(loaded.predict_dataloader()))
    want = to_uint8(loaded.predict_step(batch, 0)["images"])
    for i in range(4):  # (N, H, W, C) uint8; MNIST's one channel is a grey PNG
        written = np.asarray(Image.open(out / f"{i:06d}.png"))
        assert np.array_equal(written, want[i][..., 0].numpy())
    with pytest.raises(SystemExit):
        main(["fit", "--pretrained", str(folder)])


def test_a_hub_repo_id_loads_like_a_folder_and_push_uploads_the_folder(tmp_path: Path):
    """No network here: huggingface_hub's download and upload are replaced by stand-ins that record their calls."""
    model, _ = _trained("DCGAN", tmp_path)
    folder = model.save_pretrained(str(tmp_path / "p"))
    with mock.patch("huggingface_hub.snapshot_download", return_value=str(folder)) as download:
        loaded = from_pretrained("owner/dcgan-mnist", revision="v1")
    download.assert_called_once_with(repo_id="owner/dcgan-mnist", revision="v1")
    z = torch.randn(2, model.latent_dim)
    assert torch.equal(loaded.sample(z=z), model.sample(z=z))
    with mock.patch("huggingface_hub.HfApi") as api:
        url = lightning_gans.pretrained.push_to_hub(folder, "owner/dcgan-mnist")
    api.return_value.create_repo.assert_called_once_with("owner/dcgan-mnist", private=True, exist_ok=True)
    api.return_value.upload_folder.assert_called_once_with(folder_path=str(folder), repo_id="owner/dcgan-mnist")
    assert url == "https://huggingface.co/owner/dcgan-mnist"
    with pytest.raises(PretrainedError, match="config.json is missing"):
        lightning_gans.pretrained.push_to_hub(tmp_path, "owner/x")  # only pretrained folders
