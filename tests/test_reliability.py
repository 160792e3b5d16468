"""Long runs that survive: divergence stops training with a message, and diverged weights are never saved."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans.core import DivergenceError
from lightning_gans.metrics.evaluator import GenerativeMetrics
from lightning_gans.metrics.extractors import IdentityExtractor
from lightning_gans.models import DCGAN
from tests.conftest import quiet_trainer

TINY = dict(image_shape=(1, 28, 28), latent_dim=8, g_channels=4, d_channels=4)


def _data(n: int = 64) -> DataLoader:
    return DataLoader(TensorDataset(torch.rand(n, 1, 28, 28) * 2 - 1), batch_size=8)


def test_a_non_finite_loss_stops_training_with_the_step_network_and_loss(tmp_path: Path):
    torch.manual_seed(0)
    model = DCGAN(optimizer_g="sgd", optimizer_d="sgd", lr_g=1e30, lr_d=1e30, **TINY)
    trainer = quiet_trainer(tmp_path, max_epochs=3, log_every_n_steps=4)
    with pytest.raises(
        DivergenceError, match=r"diverged at G step \d+, D step \d+ .*(generator|discriminator).*nan"
    ) as err:
        trainer.fit(model, _data())
    assert int(re.search(r"G step (\d+)", str(err.value)).group(1)) <= 2  # it names the update that gave the NaN
    # The losses are read on the host at each report (log_every_n_steps), not at every step: stopped at the first
    # report after the NaN, not at the end of the run.
    assert model.g_steps <= 4 and model.d_steps <= 4


def test_a_nan_between_two_reports_stops_the_next_checkpoint_before_it_is_written(tmp_path: Path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    torch.manual_seed(0)
    model = DCGAN(optimizer_g="sgd", optimizer_d="sgd", lr_g=1e30, lr_d=1e30, **TINY)
    every_step = ModelCheckpoint(tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1, save_last=True)
    trainer = quiet_trainer(tmp_path, max_epochs=3, enable_checkpointing=True, callbacks=[every_step])
    with pytest.raises(DivergenceError, match=r"diverged at G step [12], D step \d+ .*nan") as err:
        trainer.fit(model, _data())
    assert "refusing" not in str(err.value)  # the loss check, naming the update, comes before the weight check
    assert model.g_steps <= 2  # the checkpoint of the step stopped the run, not the report at batch 8
    for path in (tmp_path / "ckpt").glob("*.ckpt"):  # whatever was written before the NaN holds finite weights
        state = torch.load(path, weights_only=True)["state_dict"]
        assert all(bool(v.isfinite().all()) for v in state.values() if v.is_floating_point()), path


def test_an_exploding_but_finite_run_is_stopped_by_the_guard(tmp_path: Path):
    from lightning_gans.callbacks.divergence import DivergenceGuard

    torch.manual_seed(0)
    model = DCGAN(lr_g=1e4, lr_d=1e4, **TINY)  # Adam at lr 1e4: weights run towards 1e22, losses stay finite
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[DivergenceGuard(max_abs_loss=1e3)])
    with pytest.raises(DivergenceError, match=r"exploding at G step \d+.*max_abs_loss=1000"):
        trainer.fit(model, _data())
    assert model.g_steps < 24  # stopped before the end of the three epochs


def test_non_finite_weights_are_never_written_over_a_good_checkpoint(tmp_path: Path):
    model = DCGAN(**TINY)
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=2)
    trainer.fit(model, _data())
    good = tmp_path / "last.ckpt"
    trainer.save_checkpoint(good)
    before = good.read_bytes()
    with torch.no_grad():
        next(model.generator.parameters()).fill_(math.nan)
    with pytest.raises(DivergenceError, match="refusing to save a checkpoint"):
        trainer.save_checkpoint(good)
    assert good.read_bytes() == before


def test_metrics_refuse_non_finite_features_instead_of_crashing():
    metrics = GenerativeMetrics(IdentityExtractor(2), ["fid", "kid"], kid_subset_size=4)
    metrics.update_real(torch.randn(8, 2))
    with pytest.raises(FloatingPointError, match="generated samples contain NaN"):
        metrics.update_fake(torch.full((8, 2), math.nan))


# ------------------------------------------------------------------------------------------- data errors
def test_a_truncated_mnist_gz_names_the_file_and_the_fix(tmp_path: Path):
    import gzip

    from datamodules import MNISTDataModule
    from datamodules.base import DatasetNotFoundError

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, shape in (
        ("train-images-idx3-ubyte", (64, 28, 28)),
        ("train-labels-idx1-ubyte", (64,)),
        ("t10k-images-idx3-ubyte", (16, 28, 28)),
        ("t10k-labels-idx1-ubyte", (16,)),
    ):
        header = (0x0800 | len(shape)).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
        with gzip.open(raw / f"{name}.gz", "wb") as f:
            f.write(header + bytes(math.prod(shape)))
    whole = (raw / "train-images-idx3-ubyte.gz").read_bytes()
    (raw / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])  # a cut download
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False, val_size=8)
    with pytest.raises(DatasetNotFoundError, match=r"train-images-idx3-ubyte\.gz.*truncated or corrupt.*download"):
        dm.setup("fit")


def test_verify_finds_a_corrupt_image_before_training(tmp_path: Path):
    from PIL import Image

    from datamodules.base import DatasetNotFoundError
    from datamodules.unpaired import UnpairedImageDataModule

    for folder in ("trainA", "trainB", "testA", "testB"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 40), (i * 40, 0, 0)).save(tmp_path / folder / f"{i}.jpg")
    good = (tmp_path / "trainB" / "1.jpg").read_bytes()
    (tmp_path / "trainB" / "1.jpg").write_bytes(good[: len(good) // 3])  # truncated JPEG: its header still reads
    lazy = UnpairedImageDataModule(data_dir=str(tmp_path), load_size=36, crop_size=32)
    lazy.setup("fit")  # without verify the file is found only when its batch is loaded
    checked = UnpairedImageDataModule(data_dir=str(tmp_path), load_size=36, crop_size=32, verify=True)
    with pytest.raises(DatasetNotFoundError, match=r"1 of 12 images .* cannot be read: '.*trainB/1\.jpg'"):
        checked.setup("fit")


# ------------------------------------------------------------------------------------------- exact resume
class _RandomAugment(torch.utils.data.Dataset):
    """Each item: its index and a random number drawn in the worker (an augmentation's randomness)."""

    def __len__(self) -> int:
        return 24

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([float(index), float(torch.rand(()))])


@pytest.mark.parametrize("saved, now", [((8, 1), (4, 1)), ((4, 1), (8, 1)), ((4, 1), (3, 1)), ((4, 2), (4, 1))])
def test_resuming_with_another_batch_size_or_process_count_maps_the_position_by_samples(saved, now, recwarn):
    """A checkpoint of batch size b on p processes, resumed with b' on p': the samples already trained (a prefix of
    the epoch's order) are not trained again, beyond the part of one new batch, every other sample comes once, and
    a warning says how the position was mapped."""
    from datamodules.base import ResumableDataLoader

    (batch, processes), (new_batch, _) = saved, now
    torch.manual_seed(0)
    whole = torch.cat([b[:, 0] for b in ResumableDataLoader(_RandomAugment(), batch_size=1)]).long().tolist()
    torch.manual_seed(0)
    first = ResumableDataLoader(_RandomAugment(), batch_size=1)
    next(iter(first))  # the same epoch seeds, in a checkpoint taken 2 batches of b on p processes into the epoch:
    state = {**first.state_dict(), "batches": 2, "batch_size": batch, "world_size": processes}
    trained = whole[: 2 * batch * processes]  # the order's prefix that p processes of batch b trained
    resumed = ResumableDataLoader(_RandomAugment(), batch_size=new_batch)
    resumed.load_state_dict(state)
    rest = torch.cat([b[:, 0] for b in resumed]).long().tolist()
    again = len(trained) % new_batch
    assert rest == whole[len(trained) - again :]  # continues in the same order, redrawing less than a batch
    assert sorted(set(trained) | set(rest)) == list(range(24))
    message = " ".join(str(w.message) for w in recwarn)
    assert (
        f"resuming with batch size {new_batch} on 1 process(es) where the checkpoint had batch size {batch} on "
        f"{processes}: the {len(trained)} samples already trained in this epoch map to " in message
    ), message


@pytest.mark.parametrize("workers", [0, 2])
def test_resumable_loader_rebuilds_the_epoch_and_skips_what_was_trained(workers: int):
    from datamodules.base import ResumableDataLoader

    def loader():
        return ResumableDataLoader(_RandomAugment(), batch_size=4, num_workers=workers)

    torch.manual_seed(0)
    straight = loader()
    first_epoch = [b.clone() for b in straight]
    second_epoch = [b.clone() for b in straight]
    assert not torch.equal(torch.cat(first_epoch)[:, 0], torch.cat(second_epoch)[:, 0])  # reshuffled per epoch

    torch.manual_seed(0)
    interrupted = loader()
    iterator = iter(interrupted)
    seen = [next(iterator).clone() for _ in range(2)]
    state, rng = interrupted.state_dict(), torch.get_rng_state()  # what a checkpoint after 2 batches holds
    assert state["batches"] == 2
    torch.manual_seed(123)  # a new process...
    resumed = loader()
    resumed.load_state_dict(state)
    torch.set_rng_state(rng)  # ... restores the checkpoint's RNG state (GANModule.on_load_checkpoint does)
    rest = [b.clone() for b in resumed]
    assert len(rest) == 4
    for a, b in zip(first_epoch, seen + rest):  # same order, same worker randomness
        assert torch.equal(a, b)


def test_mid_epoch_resume_with_workers_equals_the_straight_run(tmp_path: Path):
    """k G steps, stopped mid-epoch and resumed to 2k, equal 2k straight, with 2 DataLoader workers."""
    import lightning as L

    from datamodules import GaussianMixtureDataModule
    from lightning_gans.models import GAN

    class StopAt(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            if pl_module.g_steps == 7:
                trainer.save_checkpoint(tmp_path / "mid.ckpt")
                raise InterruptedError

    def run(callbacks=(), ckpt_path=None) -> GAN:
        L.seed_everything(3)
        data = GaussianMixtureDataModule(num_samples=256, num_val_samples=64, batch_size=32, num_workers=2)
        model = GAN(image_shape=(2,), latent_dim=4, g_hidden_dims=(16,), d_hidden_dims=(16,), ema_decay=0.9)
        trainer = quiet_trainer(tmp_path, max_steps=28, limit_val_batches=0, callbacks=list(callbacks))
        try:
            trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
        except InterruptedError:
            pass
        return model

    straight = run()
    run(callbacks=[StopAt()])  # 8 batches an epoch: stops in the middle of the first epoch
    resumed = run(ckpt_path=str(tmp_path / "mid.ckpt"))
    assert straight.g_steps == resumed.g_steps == 14
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


# ------------------------------------------------------------------------------------------- checkpoints vs configs
def _fit_and_save(model, root: Path, **trainer_kwargs) -> Path:
    trainer = quiet_trainer(root, max_epochs=1, limit_train_batches=2, **trainer_kwargs)
    trainer.fit(model, _data())
    path = root / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_a_checkpoint_of_another_family_or_shape_is_refused_naming_both(tmp_path: Path):
    from lightning_gans.checkpointing import CheckpointMismatchError
    from lightning_gans.models import WGANGP

    path = _fit_and_save(DCGAN(**TINY), tmp_path)
    with pytest.raises(CheckpointMismatchError, match="holds a DCGAN, but the config builds a WGANGP.*config.yaml"):
        quiet_trainer(tmp_path).validate(WGANGP(**TINY), _data(), ckpt_path=str(path))
    wider = DCGAN(**{**TINY, "g_channels": 8})
    with pytest.raises(CheckpointMismatchError, match=r"do not fit the DCGAN.*trained with g_channels=4 \(config: 8\)"):
        quiet_trainer(tmp_path, max_epochs=2).fit(wider, _data(), ckpt_path=str(path))


def test_learning_rates_changed_on_resume_take_effect_and_adam_moments_are_kept(tmp_path: Path):
    path = _fit_and_save(DCGAN(**TINY), tmp_path)
    saved = torch.load(path, weights_only=True)["optimizer_states"][0]
    seen = {}

    class Record(__import__("lightning").Callback):
        def on_train_start(self, trainer, pl_module):
            opt_g, opt_d = pl_module.optimizers()
            seen["lr"] = (opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"])
            seen["betas"] = opt_g.param_groups[0]["betas"]
            first = opt_g.optimizer.param_groups[0]["params"][0]
            seen["exp_avg"] = opt_g.optimizer.state[first]["exp_avg"].clone()

    resumed = DCGAN(**{**TINY, "lr_g": 1e-4, "betas": (0.0, 0.9)})
    quiet_trainer(tmp_path, max_epochs=2, limit_train_batches=2, callbacks=[Record()]).fit(
        resumed, _data(), ckpt_path=str(path)
    )
    assert seen["lr"] == (1e-4, 2e-4) and tuple(seen["betas"]) == (0.0, 0.9)
    assert torch.equal(seen["exp_avg"], saved["state"][0]["exp_avg"])  # Adam's moments came from the checkpoint


def test_a_changed_learning_rate_keeps_its_place_in_the_lr_schedule(tmp_path: Path):
    from lightning_gans.checkpointing import adopt_optimizer_settings

    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.Adam(params, lr=2e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.5)  # half-way through a decay
    checkpoint = {"optimizer_states": [optimizer.state_dict()], "lr_schedulers": [scheduler.state_dict()]}
    configured = torch.optim.Adam(params, lr=1e-4)
    changes = adopt_optimizer_settings(([configured], []), checkpoint)
    assert changes == ["optimizer 0 lr 0.0002 -> 0.0001"]
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.5e-4)
    assert checkpoint["lr_schedulers"][0]["base_lrs"] == [1e-4]


def test_the_last_checkpoint_is_refreshed_on_a_timer(tmp_path: Path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_gans.callbacks.preemption import Preemption

    saved: list[int] = []

    class Spy(ModelCheckpoint):
        def _save_last_checkpoint(self, trainer, monitor_candidates):
            saved.append(trainer.lightning_module.g_steps)
            super()._save_last_checkpoint(trainer, monitor_candidates)

    timer = Preemption(save_every_minutes=1e-9)  # due after every batch
    checkpoint = Spy(dirpath=tmp_path / "checkpoints", save_last=True, save_top_k=0, every_n_epochs=0)
    quiet_trainer(
        tmp_path, max_epochs=1, limit_train_batches=3, enable_checkpointing=True, callbacks=[timer, checkpoint]
    ).fit(DCGAN(**TINY), _data())
    assert saved[:3] == [1, 2, 3]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["lightning_gans"]["g_steps"] == 3


@pytest.mark.parametrize("saves", ["every_2_epochs", "at_validation"])
def test_the_last_checkpoint_holds_the_final_step_when_training_stops_between_saves(saves: str, tmp_path: Path):
    """A run stopped by max_steps between two of the ModelCheckpoint's saves (here G step 25 of 10-batch epochs,
    checkpoints every 2 epochs; or G step 6 with validation, hence saving, every 4 batches) ends with last.ckpt at
    the final step (Lightning's ModelCheckpoint alone leaves it at step 20, or 4); the CLI's max_time stops alike."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_gans.callbacks.preemption import Preemption

    if saves == "every_2_epochs":
        checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True, every_n_epochs=2)
        settings, final = dict(max_steps=2 * 25, limit_val_batches=0), 25
    else:
        checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True, every_n_epochs=1)
        settings, final = dict(max_steps=2 * 6, val_check_interval=4, limit_val_batches=1), 6
    trainer = quiet_trainer(
        tmp_path, max_epochs=10, enable_checkpointing=True, callbacks=[Preemption(), checkpoint], **settings
    )
    data = _data(80)  # 10 batches an epoch
    trainer.fit(DCGAN(**TINY), train_dataloaders=data, val_dataloaders=data)
    saved = sorted(int(p.stem.split("step=")[1]) for p in (tmp_path / "checkpoints").glob("epoch=*.ckpt"))
    assert saved and saved[-1] < 2 * final  # the ModelCheckpoint's own last save is older than the final step
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["lightning_gans"]["g_steps"] == final
    assert ckpt["global_step"] == trainer.global_step == 2 * final
