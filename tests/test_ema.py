"""The EMA generator and batch norm: statistics that belong to the averaged weights, and the three sampling modes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_gans.ema import EMA, batch_statistics, kept_buffers, standing_statistics
from lightning_gans.models import DCGAN
from tests.conftest import quiet_trainer, real_data_dir

TINY = dict(image_shape=(1, 28, 28), latent_dim=8, g_channels=4, d_channels=4)


def test_an_update_averages_weights_but_not_batch_norm_statistics():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EMA(net, decay=0.5)
    net(torch.randn(16, 3) * 5 + 3)  # train mode: moves the live running statistics
    ema.update(net)
    assert not torch.equal(ema.module[1].running_mean, net[1].running_mean)  # not the live weights' statistics
    assert ema.stale_statistics  # until they are recomputed for the average


def test_warmup_uses_min_of_decay_and_the_update_count_rule_and_resumes_with_its_count():
    """Update t uses min(decay, (1 + t) / (10 + t)); the count is in the state dict; an old state dict without it
    resumes at the constant decay."""
    net = nn.Linear(2, 1)
    ema = EMA(net, decay=0.5)
    for t in range(12):
        old = ema.module.weight.detach().clone()
        with torch.no_grad():
            net.weight.add_(1.0)
        ema.update(net)
        d = min(0.5, (1 + t) / (10 + t))  # 0.1, 0.18, ... then 0.5 from t = 8 on
        torch.testing.assert_close(ema.module.weight, d * old + (1 - d) * net.weight)
    assert int(ema.state_dict()["num_updates"]) == 12
    restored = EMA(net, decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored._num_updates == 12
    legacy = {k: v for k, v in ema.state_dict().items() if k != "num_updates"}
    restored.load_state_dict(legacy)  # a checkpoint written before the warm-up: no key, no error
    old = restored.module.weight.detach().clone()
    restored.update(net)
    torch.testing.assert_close(restored.module.weight, 0.5 * old + 0.5 * net.weight)


def test_standing_statistics_are_the_average_of_the_batches_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5)).eval()
    batches = [torch.randn(32, 3) for _ in range(4)]
    feed = iter(batches)
    standing_statistics(net, lambda: net(next(feed)), batches=4)
    with torch.no_grad():
        hidden = [net[0](x) for x in batches]
    torch.testing.assert_close(net[1].running_mean, torch.stack([h.mean(0) for h in hidden]).mean(0))
    torch.testing.assert_close(net[1].running_var, torch.stack([h.var(0) for h in hidden]).mean(0))
    assert not net[1].training and not net[2].training and net[1].momentum == 0.1  # modes and momentum restored


def test_batch_statistics_normalise_each_batch_without_touching_the_buffers():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).eval()
    before = net[1].running_mean.clone()
    with batch_statistics(net), torch.no_grad():
        out = net(torch.randn(64, 3) * 4 + 2)
    assert torch.allclose(out.mean(0), torch.zeros(4), atol=1e-5)  # normalised with the batch's own mean
    assert torch.equal(net[1].running_mean, before) and not net[1].training
    with kept_buffers(net):
        net[1].running_mean.add_(1)
    assert torch.equal(net[1].running_mean, before)


def test_sampling_modes():
    torch.manual_seed(0)
    model = DCGAN(ema_decay=0.9, **TINY)
    z = torch.randn(6, 8)
    live_stats = (
        model.generator.state_dict()["net.1.running_mean"].clone()
        if "net.1.running_mean" in model.generator.state_dict()
        else None
    )
    running, standing = model.sample(z=z, use_ema=False), model.sample(z=z, use_ema=False, bn="standing")
    assert not torch.allclose(running, standing)  # fresh statistics against the (initial) running ones
    if live_stats is not None:  # the live generator's own buffers are left alone
        assert torch.equal(model.generator.state_dict()["net.1.running_mean"], live_stats)
    batch = model.sample(z=z, bn="batch")
    assert not torch.allclose(model.sample(z=z[:2], bn="batch"), batch[:2])  # depends on its batch mates
    assert torch.equal(model.sample(z=z[:2]), model.sample(z=z)[:2])  # standing statistics do not
    with pytest.raises(ValueError, match="bn must be one of running, standing, batch"):
        model.sample(2, bn="eval")


def test_ema_statistics_are_refreshed_after_updates_and_loads(tmp_path):
    model = DCGAN(ema_decay=0.9, **TINY)
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=2)
    trainer.fit(model, DataLoader([torch.rand(8, 1, 28, 28) * 2 - 1] * 2, batch_size=None))
    assert model.generator_ema.stale_statistics
    model.sample(2)
    assert not model.generator_ema.stale_statistics
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = DCGAN.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    assert loaded.generator_ema.stale_statistics  # recomputed for the loaded weights before the first sample
    torch.testing.assert_close(loaded.sample(z=model.fixed_noise[:4]), model.sample(z=model.fixed_noise[:4]))


@pytest.mark.slow
def test_ema_with_warmup_scores_as_well_as_the_live_generator_on_mnist_and_without_it_far_worse(tmp_path):
    """At equal steps on real MNIST (1,500 G steps, ~2 CPU minutes), the EMA generator (decay 0.999, standing
    statistics) scores an FID on the project's classifier within measurement noise (10%) of the live one's with its
    warm-up, and far worse without it (measured: live 267, warm-up 270, constant 0.999 641)."""
    from datamodules import MNISTDataModule
    from lightning_gans.metrics.evaluator import GenerativeMetrics
    from lightning_gans.metrics.extractors import build_extractor

    root = real_data_dir("MNIST/raw").parent.parent
    torch.manual_seed(0)
    data = MNISTDataModule(data_dir=str(root), download=False, batch_size=64, val_size=2000)
    model = DCGAN(image_shape=(1, 28, 28), latent_dim=32, g_channels=16, d_channels=16, ema_decay=0.999)
    constant = EMA(model.generator, decay=0.999, warmup=False)  # updated alongside, from the same live weights
    update = model.generator_ema.update
    model.generator_ema.update = lambda g, decay=None: (update(g, decay), constant.update(g))
    quiet_trainer(tmp_path, max_steps=2 * 1500, limit_val_batches=0).fit(model, datamodule=data)
    assert model.generator_ema.num_updates == constant.num_updates == 1500

    extractor = build_extractor("mnist_classifier", None, "tf1")
    real = torch.cat([x for x, _ in data.val_dataloader()])

    def fid(**sample_kwargs) -> float:
        metrics = GenerativeMetrics(extractor, ["fid"])
        metrics.update_real_images(real)
        torch.manual_seed(1)
        for _ in range(4):
            metrics.update_fake_images(model.sample(500, **sample_kwargs))
        return float(metrics.compute()["fid"])

    live, warm = fid(use_ema=False), fid(use_ema=True)
    model.generator_ema.module.load_state_dict(constant.module.state_dict())
    model.generator_ema.stale_statistics = True  # standing statistics for these weights too
    plain = fid(use_ema=True)
    print(f"FID live {live:.1f}, EMA with warm-up {warm:.1f}, EMA at a constant 0.999 {plain:.1f}")
    assert warm <= 1.1 * live, (warm, live)
    assert plain > 1.5 * warm, (plain, warm)
