"""``fit --ckpt_path`` continues exactly: k steps + a resumed k steps == 2k steps straight (CPU, deterministic)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from datamodules.base import ResumableDataLoader
from lightning_gans.models import DCGAN, FAMILIES
from tests.conftest import quiet_trainer
from tests.families import TINY

KWARGS = dict(image_shape=(1, 28, 28), latent_dim=8, g_channels=4, d_channels=4, ema_decay=0.9, n_critic=2)


def _data() -> DataLoader:
    g = torch.Generator().manual_seed(123)
    images = torch.rand(32, 1, 28, 28, generator=g) * 2 - 1
    return DataLoader(TensorDataset(images, torch.zeros(32, dtype=torch.long)), batch_size=8, shuffle=True)


def _run(root: Path, epochs: int, ckpt_path: str | None = None) -> DCGAN:
    L.seed_everything(7)
    model = DCGAN(**KWARGS)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        deterministic=True,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[ModelCheckpoint(dirpath=root / "ckpt", save_last=True, save_top_k=0)],
    )
    trainer.fit(model, _data(), ckpt_path=ckpt_path)
    return model


def test_resume_equals_straight_run(tmp_path: Path):
    straight = _run(tmp_path / "straight", epochs=2)
    _run(tmp_path / "split", epochs=1)
    resumed = _run(tmp_path / "split", epochs=2, ckpt_path=str(tmp_path / "split" / "ckpt" / "last.ckpt"))

    assert (resumed.d_steps, resumed.g_steps) == (straight.d_steps, straight.g_steps) == (8, 4)
    straight_state, resumed_state = straight.state_dict(), resumed.state_dict()
    assert straight_state.keys() == resumed_state.keys()
    for key in straight_state:  # G, D, EMA, fixed noise, batch-norm statistics
        assert torch.equal(straight_state[key], resumed_state[key]), f"{key} differs after resume"


def test_checkpoint_holds_optimizers_counters_rng(tmp_path: Path):
    _run(tmp_path, epochs=1)
    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert len(ckpt["optimizer_states"]) == 2
    assert ckpt["lightning_gans"]["g_steps"] == 2 and ckpt["lightning_gans"]["d_steps"] == 4
    assert set(ckpt["lightning_gans"]["rng_states"]) >= {"torch", "numpy", "python"}
    assert any(k.startswith("generator_ema.") for k in ckpt["state_dict"])
    assert "fixed_noise" in ckpt["state_dict"]


class _Samples(torch.utils.data.Dataset):
    """The samples of a family's tiny batch (tests/families.py), one by one, so a DataLoader can re-batch them."""

    def __init__(self, batch, repeats: int = 3) -> None:
        self.batch, self.repeats = batch, repeats
        first = batch[0] if isinstance(batch, (tuple, list)) else next(v for v in batch.values() if torch.is_tensor(v))
        self.n = len(first)

    def __len__(self) -> int:
        return self.n * self.repeats

    def __getitem__(self, index: int):
        i = index % self.n
        if isinstance(self.batch, dict):
            return {k: v[i] for k, v in self.batch.items()}
        return tuple(v[i] for v in self.batch)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_resumes_mid_epoch_exactly_with_workers(name: str, tmp_path: Path):
    """k steps, a checkpoint in the middle of an epoch, then resumed to 2k == 2k straight; 2 DataLoader workers."""
    spec = TINY[name]
    samples = _Samples(spec.batch())

    class StopAt(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            if trainer.global_step and pl_module.g_steps == 4:
                trainer.save_checkpoint(tmp_path / "mid.ckpt")
                raise InterruptedError

    def run(callbacks=(), ckpt_path=None):
        L.seed_everything(11)
        model = FAMILIES[name](**spec.kwargs)
        loader = ResumableDataLoader(samples, batch_size=spec.extra.get("batch_size", 2), num_workers=2)
        trainer = quiet_trainer(tmp_path, max_epochs=2, limit_val_batches=0, callbacks=list(callbacks))
        try:
            trainer.fit(model, loader, ckpt_path=ckpt_path)
        except InterruptedError:
            pass
        return model

    straight = run()
    run(callbacks=[StopAt()])
    resumed = run(ckpt_path=str(tmp_path / "mid.ckpt"))
    assert (resumed.g_steps, resumed.d_steps) == (straight.g_steps, straight.d_steps)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), f"{name}: {key} differs after resume"
