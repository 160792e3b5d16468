"""Focused tests of the classic families: what makes each one that paper's algorithm (tiny shapes, CPU, < 1 s each).

CGAN: samples depend on the label, ``predict --writer.label 7`` makes only 7s, concat and projection D both see y.
ACGAN: D returns (source, class logits); the class loss trains D's class head and is part of G's loss; ``real`` keeps
the fakes out of the class head, ``tac`` adds TAC-GAN's twin head (learnt by D, played against by G).
WGAN: every critic parameter is in [-c, c] after a critic step; RMSprop 5e-5, n_critic 5 by default.
WGAN-GP: a critic without batch norm; the critic loss is the Wasserstein loss plus the logged gradient penalty.
SNGAN / SAGAN: spectral norm on every D layer (and every G layer for SAGAN); self-attention in SAGAN's G and D.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from unittest import mock

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lightning_gans.callbacks import ImageWriter
from lightning_gans.models import ACGAN, CGAN, SAGAN, SNGAN, WGAN, WGANGP
from lightning_gans.networks.blocks import SelfAttention, has_spectral_norm
from lightning_gans.networks.conditional import (
    AuxiliaryClassifierDiscriminator,
    ConditionalDiscriminator,
    ConditionalGenerator,
)
from tests.conftest import quiet_trainer
from tests.families import TINY, image_batch

MNIST = (1, 28, 28)


def _fit_one_batch(model: L.LightningModule, root: Path, batch=None) -> L.Trainer:
    batch = batch if batch is not None else image_batch(model.image_shape, n=4)()
    trainer = quiet_trainer(root, max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.fit(model, DataLoader([batch], batch_size=None))
    return trainer


def _capture(model, hook: str) -> list[dict]:
    """Record the keyword arguments (the losses) of ``model.<hook>`` while still running it."""
    calls: list[dict] = []
    original = getattr(model, hook)

    def spy(**losses):
        calls.append({k: v.detach().clone() for k, v in losses.items()})
        return original(**losses)

    setattr(model, hook, spy)
    return calls


def _zero_loss(*args, **kwargs):
    """An adversarial loss of 0 that still depends on the logits (so backward runs)."""
    return sum(a.sum() for a in args if isinstance(a, torch.Tensor)) * 0.0


# ---------------------------------------------------------------------------------------------------------- CGAN
@pytest.mark.parametrize("discriminator", ["concat", "projection"])
@pytest.mark.parametrize("backbone", ["dcgan", "mlp"])
def test_cgan_samples_and_scores_depend_on_the_label(discriminator: str, backbone: str):
    torch.manual_seed(0)
    model = CGAN(
        **{
            **TINY["CGAN"].kwargs,
            "discriminator": discriminator,
            "backbone": backbone,
            "g_hidden_dims": (16,),
            "d_hidden_dims": (16,),
        }
    )
    z = torch.randn(4, model.latent_dim)
    zeros, ones = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    # give the label paths non-trivial weights, as training would
    nn.init.normal_(model.generator.embedding.weight, std=1.0)
    nn.init.normal_(model.discriminator.embedding.weight, std=1.0)
    assert not torch.allclose(model.sample(z=z, labels=zeros), model.sample(z=z, labels=ones))
    assert torch.equal(model.sample(z=z, labels=ones), model.sample(z=z, labels=ones))
    x = torch.rand(4, *MNIST) * 2 - 1
    model.discriminator.eval()
    assert not torch.allclose(model.discriminator(x, zeros), model.discriminator(x, ones))


def test_cgan_trains_on_image_label_pairs(tmp_path: Path):
    model = CGAN(**TINY["CGAN"].kwargs)
    seen = []
    model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    model.generator.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    images, labels = image_batch(MNIST, n=4)()
    _fit_one_batch(model, tmp_path, (images, labels))
    # fakes made for, and real and fake scored with, the batch's labels: G twice, D three times
    assert len(seen) == 5 and all(torch.equal(y, labels) for y in seen)


def test_cgan_predict_with_a_label_generates_only_that_class(tmp_path: Path):
    model = CGAN(**TINY["CGAN"].kwargs)
    asked: list[torch.Tensor] = []
    model.generator.register_forward_pre_hook(lambda module, args: asked.append(args[1]))
    out = tmp_path / "sevens"
    writer = ImageWriter(output_dir=str(out), num_samples=5, batch_size=2, label=7)
    quiet_trainer(tmp_path, callbacks=[writer]).predict(model, return_predictions=False)
    assert sum(len(y) for y in asked) == 5 and all((y == 7).all() for y in asked)
    assert len(list(out.glob("0*.png"))) == 5


def test_conditional_networks_check_labels():
    with pytest.raises(ValueError, match="class-conditional"):
        ConditionalGenerator(8, 10, MNIST, 4, "dcgan", 4)(torch.randn(2, 8))
    with pytest.raises(ValueError, match="mode"):
        ConditionalDiscriminator(MNIST, 10, mode="sum")
    with pytest.raises(ValueError, match="backbone"):
        CGAN(**{**TINY["CGAN"].kwargs, "backbone": "resnet"})
    with pytest.raises(ValueError, match="unknown label_input 'add'. Valid: concat, multiply"):
        ConditionalGenerator(8, 10, MNIST, 4, "dcgan", 4, label_input="add")
    with pytest.raises(ValueError, match="Unknown ACGAN g_label_input 'add'. Valid: concat, multiply"):
        ACGAN(**{**TINY["ACGAN"].kwargs, "g_label_input": "add"})
    for family in (CGAN, ACGAN):
        with pytest.raises(ValueError, match="labels"):
            family(**TINY[family.__name__].kwargs).training_step(torch.zeros(2, *MNIST), 0)


@pytest.mark.parametrize("backbone", ["dcgan", "mlp"])
def test_conditional_generator_multiply_scales_z_by_the_label_embedding(backbone: str):
    torch.manual_seed(0)
    g = ConditionalGenerator(8, 10, MNIST, 4, backbone, 4, (16,), label_input="multiply").eval()
    assert g.embedding.weight.shape == (10, 8)  # one scale per noise dimension, whatever embed_dim says
    seen = []
    g.net.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    z, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        x = g(z, labels)
        assert torch.equal(seen[0], z * g.embedding(labels)) and x.shape == (4, *MNIST)
        assert torch.allclose(g(torch.zeros(4, 8), labels), g(torch.zeros(4, 8), labels.flip(0)))  # no z, no label


# --------------------------------------------------------------------------------------------------------- ACGAN
def test_acgan_discriminator_returns_source_and_class_logits():
    d = AuxiliaryClassifierDiscriminator(MNIST, num_classes=10, base_channels=4)
    source, classes = d(torch.rand(3, *MNIST))
    assert source.shape == (3,) and classes.shape == (3, 10)


@pytest.mark.parametrize("class_weight", [0.0, 1.0])
def test_acgan_class_loss_trains_the_class_head(class_weight: float, tmp_path: Path):
    torch.manual_seed(0)
    model = ACGAN(**{**TINY["ACGAN"].kwargs, "class_weight": class_weight})
    head = [p.detach().clone() for p in model.discriminator.class_head.parameters()]
    _fit_one_batch(model, tmp_path)
    changed = any(not torch.equal(a, b) for a, b in zip(head, model.discriminator.class_head.parameters()))
    assert changed == (class_weight > 0)


def test_acgan_generator_loss_includes_the_class_term(tmp_path: Path):
    torch.manual_seed(0)
    model = ACGAN(**{**TINY["ACGAN"].kwargs, "class_weight": 2.0})
    g_calls = _capture(model, "count_g_step")
    d_calls = _capture(model, "count_d_step")
    before = [p.detach().clone() for p in model.generator.parameters()]
    with (
        mock.patch("lightning_gans.models.acgan.generator_loss", _zero_loss),
        mock.patch("lightning_gans.models.acgan.discriminator_loss", _zero_loss),
    ):
        _fit_one_batch(model, tmp_path)
    (g,), (d,) = g_calls, d_calls
    assert g["g_class"] > 0 and torch.allclose(g["g_loss"], 2.0 * g["g_class"])
    assert torch.allclose(d["d_loss"], 2.0 * d["d_class"])  # real + fake cross-entropy
    # with the source loss switched off, G still learns: from the class term alone
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters()))


class _UniformLogits(nn.Module):
    """A classifier head without parameters whose logits are all 0: its cross-entropy is log(K) for any input."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.new_zeros(features.shape[0], 10)


@pytest.mark.parametrize("aux_classifier", ["ac", "real", "tac"])
def test_acgan_aux_classifier_decides_what_the_class_heads_learn(aux_classifier: str, tmp_path: Path):
    torch.manual_seed(0)
    model = ACGAN(**{**TINY["ACGAN"].kwargs, "class_weight": 2.0, "aux_classifier": aux_classifier})
    assert (model.discriminator.twin_head is not None) == (aux_classifier == "tac")
    if aux_classifier == "tac":
        model.discriminator.twin_head = _UniformLogits()  # its cross-entropy is exactly log(10)
    real, labels = image_batch(model.image_shape, n=4)()
    real_ce = F.cross_entropy(copy.deepcopy(model.discriminator)(real)[1], labels)  # D before its step, train mode
    g_calls, d_calls = _capture(model, "count_g_step"), _capture(model, "count_d_step")
    asked, class_logits = [], []  # the labels each step's fakes were made for; the class head's outputs
    random_labels = model.random_labels
    model.random_labels = lambda n: asked.append(random_labels(n)) or asked[-1]
    model.discriminator.class_head.register_forward_hook(lambda m, i, out: class_logits.append(out.detach()))
    with (
        mock.patch("lightning_gans.models.acgan.generator_loss", _zero_loss),
        mock.patch("lightning_gans.models.acgan.discriminator_loss", _zero_loss),
    ):
        _fit_one_batch(model, tmp_path, batch=(real, labels))
    (g,), (d,) = g_calls, d_calls
    fake_part = d["d_class"] - real_ce  # what the fakes added to D's class loss
    g_class_head = F.cross_entropy(class_logits[-1], asked[-1])  # G's fakes through the class head
    if aux_classifier == "ac":  # the paper: the class head also learns the fakes' labels
        assert torch.allclose(fake_part, F.cross_entropy(class_logits[1], asked[0]), atol=1e-5)
        assert torch.allclose(g["g_class"], g_class_head, atol=1e-5)
    elif aux_classifier == "real":  # the fakes never reach the class head's loss in D; G is still judged by it
        assert torch.allclose(fake_part, torch.tensor(0.0), atol=1e-5)
        assert torch.allclose(g["g_class"], g_class_head, atol=1e-5)
    else:  # TAC: the twin's cross-entropy of the fakes added in D's loss, subtracted in G's
        assert torch.allclose(fake_part, torch.tensor(math.log(10)), atol=1e-5)
        assert torch.allclose(g["g_class"], g_class_head - math.log(10), atol=1e-5)
    assert torch.allclose(g["g_loss"], 2.0 * g["g_class"])


def test_acgan_tac_trains_the_twin_head_in_the_d_step(tmp_path: Path):
    torch.manual_seed(0)
    model = ACGAN(**{**TINY["ACGAN"].kwargs, "aux_classifier": "tac"})
    twin = [p.detach().clone() for p in model.discriminator.twin_head.parameters()]
    _fit_one_batch(model, tmp_path)
    assert all(not torch.equal(a, b) for a, b in zip(twin, model.discriminator.twin_head.parameters()))


def test_acgan_rejects_an_unknown_aux_classifier():
    with pytest.raises(ValueError, match="unknown aux_classifier 'twin'.*ac, real, tac"):
        ACGAN(**{**TINY["ACGAN"].kwargs, "aux_classifier": "twin"})


def test_acgan_works_with_the_toolbox(tmp_path: Path):
    model = ACGAN(
        **{
            **TINY["ACGAN"].kwargs,
            "toolbox": {"gradient_penalty": 1.0, "feature_matching": 1.0, "diffaugment": "translation"},
        }
    )
    trainer = _fit_one_batch(model, tmp_path)
    assert {"train/gp", "train/feature_matching"} <= set(trainer.callback_metrics)


# ---------------------------------------------------------------------------------------------------------- WGAN
def test_wgan_defaults_are_the_papers():
    model = WGAN(image_shape=MNIST, latent_dim=8, g_channels=4, d_channels=4)
    assert (model.clip_value, model.n_critic) == (0.01, 5)
    opt_g, opt_d = model.configure_optimizers()
    for opt in (opt_g, opt_d):
        assert isinstance(opt, torch.optim.RMSprop) and opt.defaults["lr"] == 5e-5


def test_wgan_clips_every_critic_weight_after_a_critic_step(tmp_path: Path):
    torch.manual_seed(0)
    model = WGAN(**{**TINY["WGAN"].kwargs, "clip_value": 0.005})
    c = model.clip_value
    assert max(p.abs().max() for p in model.discriminator.parameters()) > c  # N(0, 0.02) init, BN scales near 1
    bounds = []
    original = model.count_d_step

    def check(**losses):  # right after the critic step, before anything else runs
        bounds.append(max(float(p.detach().abs().max()) for p in model.discriminator.parameters()))
        return original(**losses)

    model.count_d_step = check
    _fit_one_batch(model, tmp_path)
    assert bounds and bounds[0] <= c
    for p in model.discriminator.parameters():
        assert p.min() >= -c and p.max() <= c


def test_wgan_critic_warmup_follows_the_official_schedule(tmp_path: Path):
    model = WGAN(**{**TINY["WGAN"].kwargs, "n_critic": 5, "critic_warmup": True})
    before = [model.critic_steps_before(g) for g in (1, 25, 26, 500, 501, 502)]
    assert before == [100, 2500, 2505, 2500 + 475 * 5, 2500 + 475 * 5 + 100, 2500 + 476 * 5 + 100]
    assert WGAN(**TINY["WGAN"].kwargs).critic_steps_before(7) == 7  # off: n_critic (1 in the tiny entry) each
    batch = image_batch(MNIST, n=4)()
    quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(model, DataLoader([batch] * 101, batch_size=None))
    assert (model.d_steps, model.g_steps) == (101, 1)  # the first G step after the 100th critic step


# ------------------------------------------------------------------------------------------------------- WGAN-GP
def test_wgan_gp_defaults_are_the_papers():
    model = WGANGP(image_shape=MNIST, latent_dim=8, g_channels=4, d_channels=4)
    assert (model.toolbox.gradient_penalty, model.n_critic) == (10.0, 5)
    assert model.hparams["toolbox"]["gradient_penalty"] == 10.0 and tuple(model.hparams["betas"]) == (0.0, 0.9)
    # another toolbox option keeps the paper's penalty (a mapping changes the family's defaults, field by field)
    assert WGANGP(image_shape=MNIST, toolbox={"r1_gamma": 1.0}).toolbox.gradient_penalty == 10.0
    for opt in model.configure_optimizers():
        assert isinstance(opt, torch.optim.Adam)
        assert opt.defaults["lr"] == 1e-4 and tuple(opt.defaults["betas"]) == (0.0, 0.9)


def test_wgan_gp_critic_has_no_batch_norm_and_its_loss_has_the_penalty(tmp_path: Path):
    torch.manual_seed(0)
    model = WGANGP(**TINY["WGANGP"].kwargs)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.discriminator.modules())
    d_calls = _capture(model, "count_d_step")
    with mock.patch("lightning_gans.models.wgan_gp.discriminator_loss", _zero_loss):  # leave only the penalty
        trainer = _fit_one_batch(model, tmp_path)
    (d,) = d_calls
    assert d["gp"] > 0 and torch.allclose(d["d_loss"], d["gp"])  # the logged penalty is weighted (lambda = 10)
    assert "train/gp" in trainer.callback_metrics
    with pytest.raises(ValueError, match=r"toolbox.gradient_penalty must be positive"):  # at construction
        WGANGP(**{**TINY["WGANGP"].kwargs, "toolbox": {"gradient_penalty": 0.0}})


# -------------------------------------------------------------------------------------------------- SNGAN, SAGAN
def _weight_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]


def test_sngan_has_spectral_norm_on_every_d_layer_and_the_papers_defaults():
    model = SNGAN(**TINY["SNGAN"].kwargs)
    assert all(has_spectral_norm(m) for m in _weight_layers(model.discriminator))
    assert not any(has_spectral_norm(m) for m in _weight_layers(model.generator))
    assert model.loss == "hinge"
    defaults = SNGAN(image_shape=(3, 32, 32), g_channels=8, d_channels=8)
    assert defaults.n_critic == 5
    for opt in defaults.configure_optimizers():
        assert opt.defaults["lr"] == 2e-4 and tuple(opt.defaults["betas"]) == (0.0, 0.9)


def test_sagan_has_attention_and_spectral_norm_in_g_and_d_and_ttur():
    model = SAGAN(**TINY["SAGAN"].kwargs)
    for net in (model.generator, model.discriminator):
        assert any(isinstance(m, SelfAttention) for m in net.modules())
        assert all(has_spectral_norm(m) for m in _weight_layers(net))
    assert model.loss == "hinge" and model.n_critic == 1
    opt_g, opt_d = model.configure_optimizers()
    assert (opt_g.defaults["lr"], opt_d.defaults["lr"]) == (1e-4, 4e-4)
    assert tuple(opt_d.defaults["betas"]) == (0.0, 0.9)
