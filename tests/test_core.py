"""The shared base and the toolbox: sampling mode, EMA, counters and n_critic, the toolbox switches, optimizers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans.ema import EMA, ema_copy
from lightning_gans.models import DCGAN, GAN
from lightning_gans.networks.blocks import has_spectral_norm
from lightning_gans.toolbox import Toolbox
from tests.conftest import quiet_trainer

TINY = dict(image_shape=(1, 28, 28), latent_dim=8, g_channels=4, d_channels=4)


def _fit(model, batches: int = 4, epochs: int = 1, batch_size: int = 4):
    data = TensorDataset(
        torch.rand(batches * batch_size, *model.image_shape) * 2 - 1, torch.zeros(batches * batch_size)
    )
    trainer = quiet_trainer(Path.cwd(), max_epochs=epochs)
    trainer.fit(model, DataLoader(data, batch_size=batch_size))
    return trainer


def test_sample_uses_eval_mode_and_restores_train_mode():
    model = DCGAN(**TINY)
    model.train()
    z = torch.randn(6, 8)
    first, second = model.sample(z=z), model.sample(z=z)
    assert torch.equal(first, second), "eval-mode sampling must be deterministic for a fixed z"
    assert model.generator.training, "sample() must leave G in the mode it found it"
    # in train mode batch norm would use the batch's statistics: a single image would differ
    assert torch.allclose(model.sample(z=z[:1]), first[:1], atol=1e-6)
    assert first.shape == (6, 1, 28, 28) and first.min() >= -1 and first.max() <= 1


def test_sample_needs_n_or_z():
    with pytest.raises(ValueError, match="needs n"):
        DCGAN(**TINY).sample()


def test_ema_copy_is_off_at_zero_and_checks_the_decay():
    net = torch.nn.Linear(2, 1)
    assert ema_copy(net, 0.0) is None and isinstance(ema_copy(net, 0.5), EMA)
    with pytest.raises(ValueError, match="ema_decay"):
        ema_copy(net, -0.1)


def test_ema_update_formula():
    net = torch.nn.Linear(2, 1)
    ema = EMA(net, decay=0.9, warmup=False)
    old = ema.module.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    assert torch.allclose(ema.module.weight, 0.9 * old + 0.1 * net.weight)
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(ValueError, match="decay"):
        EMA(net, decay=1.0)


def test_ema_generator_is_used_for_sampling_and_saved():
    model = DCGAN(ema_decay=0.5, **TINY)
    assert model.generator_ema is not None
    assert any(k.startswith("generator_ema.") for k in model.state_dict())
    with torch.no_grad():
        for p in model.generator_ema.module.parameters():
            p.zero_()
    z = torch.randn(2, 8)
    assert not torch.equal(model.sample(z=z), model.sample(z=z, use_ema=False))


def test_ema_moves_during_training():
    model = DCGAN(ema_decay=0.5, **TINY)
    before = [p.clone() for p in model.generator_ema.module.parameters()]
    _fit(model, batches=2)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator_ema.module.parameters()))


def test_counters_and_n_critic():
    model = DCGAN(n_critic=3, **TINY)
    trainer = _fit(model, batches=6)
    assert model.d_steps == 6 and model.g_steps == 2
    # Lightning's global_step counts every optimizer step, G's and D's together
    assert trainer.global_step == 8
    assert trainer.callback_metrics["train/g_steps"] == 2


def test_fixed_noise_is_a_saved_buffer_and_independent_of_global_seed():
    torch.manual_seed(1)
    a = DCGAN(**TINY)
    torch.manual_seed(2)
    b = DCGAN(**TINY)
    assert torch.equal(a.fixed_noise, b.fixed_noise)
    assert "fixed_noise" in a.state_dict()
    assert a.grid_images().shape == (64, 1, 28, 28)


def test_toolbox_d_input_and_switches():
    model = DCGAN(toolbox=Toolbox(diffaugment="translation,cutout", instance_noise=0.5, spectral_norm_d=True), **TINY)
    x = torch.zeros(2, 1, 28, 28)
    assert not torch.equal(model.toolbox.d_input(x, model.g_steps), x)
    d_layers = [m for m in model.discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    g_layers = [m for m in model.generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert d_layers and all(has_spectral_norm(m) for m in d_layers)
    assert not any(has_spectral_norm(m) for m in g_layers)
    plain = DCGAN(**TINY)
    assert plain.toolbox == Toolbox() and torch.equal(plain.toolbox.d_input(x, 0), x)


def test_discriminator_sees_every_input_through_the_toolbox_in_both_steps():
    """D is called on real and fake in the D step and on fake in the G step, each through DiffAugment/noise."""
    model = DCGAN(toolbox={"instance_noise": 100.0}, **TINY)
    seen: list[float] = []
    model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(float(args[0].detach().std())))
    _fit(model, batches=1)
    assert len(seen) == 3 and min(seen) > 50  # inputs in [-1, 1] have std <= 1 without the noise


def test_instance_noise_anneals_to_zero():
    toolbox = Toolbox(instance_noise=1.0, instance_noise_anneal_steps=10)
    x = torch.zeros(4, 1, 28, 28)
    assert toolbox.d_input(x, g_steps=0).std() > 0.5
    assert torch.equal(toolbox.d_input(x, g_steps=10), x)


def test_toolbox_terms_are_logged_in_a_step():
    model = DCGAN(toolbox=dict(gradient_penalty=10.0, r1_gamma=1.0, feature_matching=1.0), d_batch_norm=False, **TINY)
    trainer = _fit(model, batches=1)
    for key in ("train/gp", "train/r1", "train/feature_matching", "train/d_loss", "train/g_loss"):
        assert key in trainer.callback_metrics, key


def test_toolbox_penalties_are_the_weighted_regularisers():
    from lightning_gans.regularizers import gradient_penalty, r1_penalty

    critic = torch.nn.Linear(3, 1)
    real, fake = torch.randn(5, 3), torch.randn(5, 3)
    torch.manual_seed(0)
    terms = Toolbox(gradient_penalty=10.0, r1_gamma=4.0).penalties(critic, real, fake)
    torch.manual_seed(0)
    expected_gp = 10.0 * gradient_penalty(critic, real, fake)
    torch.testing.assert_close(terms["gp"], expected_gp)
    torch.testing.assert_close(terms["r1"], 2.0 * r1_penalty(critic, real))
    assert Toolbox().penalties(critic, real, fake) == {}


def test_toolbox_is_stored_as_plain_data_in_checkpoints(tmp_path):
    model = DCGAN(toolbox=Toolbox(r1_gamma=2.0), **TINY)
    trainer = _fit(model, batches=1)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    hparams = torch.load(tmp_path / "m.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["toolbox"]["r1_gamma"] == 2.0
    loaded = DCGAN.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    assert loaded.toolbox == Toolbox(r1_gamma=2.0)
    with pytest.raises(ValueError, match="Unknown toolbox option"):
        DCGAN(toolbox={"r2_gamma": 1.0}, **TINY)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(optimizer_g="lion"), "Unknown optimizer 'lion'"),
        (dict(n_critic=0), "n_critic"),
        (dict(ema_decay=1.0), "ema_decay"),
        (dict(toolbox=dict(real_label=1.5)), "real_label"),
        (dict(toolbox=dict(diffaugment="colour")), "colour"),
        (dict(toolbox=dict(gradient_penalty=-1.0)), "gradient_penalty"),
        (dict(loss="hinge", toolbox=dict(real_label=0.9)), "no target"),
        (dict(loss="wgan"), "Valid losses"),
        (dict(image_shape=(1, 30, 30)), "4\\*2\\^k or 7\\*2\\^k"),
    ],
)
def test_bad_options_raise_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DCGAN(**{**TINY, **kwargs})


def test_optimizers_follow_names_and_learning_rates():
    model = GAN(image_shape=(1, 28, 28), latent_dim=8, optimizer_d="rmsprop", lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.9))
    opt_g, opt_d = model.configure_optimizers()
    assert isinstance(opt_g, torch.optim.Adam) and opt_g.param_groups[0]["betas"] == (0.0, 0.9)
    assert isinstance(opt_d, torch.optim.RMSprop)
    assert opt_g.param_groups[0]["lr"] == 1e-4 and opt_d.param_groups[0]["lr"] == 4e-4
    g_params = {id(p) for p in model.generator.parameters()}
    assert all(id(p) in g_params for p in opt_g.param_groups[0]["params"])
