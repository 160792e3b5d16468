"""BiGAN/ALI, the autoencoder and the VAE: what the shared contract does not check.

BiGAN's discriminator scores (x, z) pairs and the encoder learns only in the G/E step; ``encode``; grids with
reconstructions of a fixed real batch; the VAE's loss by hand and its prior sampling; the autoencoder learning and
sampling from the Gaussian fitted to its codes; and each MNIST config through the CLI on real data.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lightning_gans.losses import reconstruction_loss
from lightning_gans.models import FAMILIES, VAE, Autoencoder
from lightning_gans.models.autoencoder import CodeGaussian
from lightning_gans.models.bigan import joint_generator_loss
from tests.conftest import quiet_trainer
from tests.families import TINY

REPO = Path(__file__).resolve().parents[1]
LATENT = ("BiGAN", "Autoencoder", "VAE")


def _batch(n: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.randint(10, (n,), generator=g)


def _fit(model: L.LightningModule, batches: list, root: Path) -> L.Trainer:
    trainer = quiet_trainer(root, max_epochs=1, limit_val_batches=0)
    trainer.fit(model, DataLoader(batches, batch_size=None))
    return trainer


def _tiny(name: str, **overrides):
    torch.manual_seed(0)
    return FAMILIES[name](**{**TINY[name].kwargs, **overrides})


# ---------------------------------------------------------------------------------------------- BiGAN / ALI
def test_bigan_discriminator_scores_pairs():
    model = _tiny("BiGAN").eval()
    x, _ = _batch()
    z = torch.randn(4, model.latent_dim)
    logits = model.discriminator(x, z)
    assert logits.shape == (4, 1)
    assert not torch.allclose(logits, model.discriminator(x, torch.randn(4, model.latent_dim)))  # z matters
    assert not torch.allclose(logits, model.discriminator(-x, z))  # and so does x
    with pytest.raises(ValueError, match="batch sizes"):
        model.discriminator(x, z[:3])


def test_bigan_encoder_learns_only_in_the_generator_step(tmp_path):
    model = _tiny("BiGAN")
    seen: dict[str, dict[str, bool]] = {}

    def grads(net):
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())

    def record(step, original):
        def hook(**losses):
            seen[step] = {n: grads(getattr(model, n)) for n in ("encoder", "generator", "discriminator")}
            original(**losses)

        return hook

    model.count_d_step = record("d", model.count_d_step)
    model.count_g_step = record("g", model.count_g_step)
    _fit(model, [_batch()], tmp_path)
    # D step: only D has gradients (E(x) and G(z) are computed without them)
    assert seen["d"] == {"encoder": False, "generator": False, "discriminator": True}
    # G/E step: one optimizer over G and E, both receive gradient through D(x, E(x)) and D(G(z), z)
    assert seen["g"]["encoder"] and seen["g"]["generator"]
    assert {id(p) for p in model.optimizers()[0].param_groups[0]["params"]} == {
        id(p) for p in [*model.generator.parameters(), *model.encoder.parameters()]
    }


def test_joint_generator_loss_is_the_inverted_labels_game():
    real, fake = torch.randn(6, 1), torch.randn(6, 1)
    inverted = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)) + F.binary_cross_entropy_with_logits(
        real, torch.zeros_like(real)
    )
    assert torch.allclose(joint_generator_loss("nonsaturating", real, fake), inverted)
    assert torch.allclose(joint_generator_loss("hinge", real, fake), real.mean() - fake.mean())
    lsgan = 0.5 * (fake - 1).pow(2).mean() + 0.5 * real.pow(2).mean()
    assert torch.allclose(joint_generator_loss("lsgan", real, fake), lsgan)


def test_bigan_toolbox_penalties_on_pairs(tmp_path):
    model = _tiny(
        "BiGAN",
        stochastic_encoder=True,
        n_critic=2,
        toolbox=dict(gradient_penalty=10.0, r1_gamma=1.0, feature_matching=1.0),
    )
    _fit(model, [_batch(seed=0), _batch(seed=1)], tmp_path)
    assert (model.d_steps, model.g_steps) == (2, 1)
    metrics = model.trainer.callback_metrics
    assert {"train/gp", "train/r1", "train/feature_matching"} <= set(metrics)


@pytest.mark.parametrize("stochastic", [False, True])
def test_bigan_encode(stochastic):
    model = _tiny("BiGAN", stochastic_encoder=stochastic)
    x, _ = _batch()
    codes = model.encode(x)
    assert codes.shape == (4, model.latent_dim) and not codes.requires_grad
    assert torch.equal(codes, model.encode(x))  # eval mode; ALI gives the posterior mean
    if stochastic:
        assert not torch.equal(model.encode(x, sample=True), codes)
    assert model.encoder.training  # the mode is restored


@pytest.mark.parametrize("name", ["Autoencoder", "VAE"])
def test_autoencoder_encode(name):
    model = _tiny(name)
    codes = model.encode(_batch()[0])
    assert codes.shape == (4, model.latent_dim)


# ---------------------------------------------------------------------------------------------- grids
@pytest.mark.parametrize("name", LATENT)
def test_grid_shows_reconstructions_after_a_step(name, tmp_path):
    model = _tiny(name)
    n_samples, k = model.fixed_noise.shape[0], model.fixed_real.images.shape[0]
    assert model.grid_images().shape[0] == n_samples  # no real batch yet: samples only
    batch = _batch(n=6)
    trainer = _fit(model, [batch], tmp_path)
    grid = model.grid_images()
    assert grid.shape == (n_samples + 2 * k, *model.image_shape)
    real, recon = grid[n_samples : n_samples + k], grid[n_samples + k :]
    assert torch.equal(real, batch[0][:k])  # the first training batch, kept
    assert torch.equal(recon, model.reconstruct(batch[0][:k]))
    assert grid.min() >= -1 and grid.max() <= 1
    # the fixed batch is part of the checkpoint
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = type(model).load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    assert torch.equal(loaded.grid_images(), grid)


# ---------------------------------------------------------------------------------------------- VAE
def test_vae_loss_is_reconstruction_plus_weighted_kl_by_hand():
    model = _tiny("VAE", kl_weight=0.5)
    x, _ = _batch()
    torch.manual_seed(1)
    terms, z_model = model.loss_terms(x)

    torch.manual_seed(1)
    mu, logvar = model.encoder(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    p = (model.generator(z) + 1) / 2  # P(pixel on) of the Bernoulli decoder
    t = (x + 1) / 2
    recon = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).sum() / 4
    kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)).mean()
    assert torch.equal(z, z_model)
    assert torch.allclose(terms["recon_loss"], recon, rtol=1e-4)
    assert torch.allclose(terms["kl"], kl, rtol=1e-5)
    assert torch.allclose(terms["loss"], recon + 0.5 * kl, rtol=1e-4)


def test_mse_reconstruction_is_the_sum_of_squared_errors():
    a, x = torch.randn(3, 1, 4, 4), torch.rand(3, 1, 4, 4) * 2 - 1
    assert torch.allclose(reconstruction_loss(a, x, "mse"), (torch.tanh(a) - x).pow(2).sum() / 3)


def test_vae_samples_decode_the_prior():
    model = _tiny("VAE")
    torch.manual_seed(3)
    images = model.sample(5)
    torch.manual_seed(3)
    z = torch.randn(5, model.latent_dim)
    model.generator.eval()
    assert torch.allclose(images, model.generator(z).clamp(-1, 1))


# ---------------------------------------------------------------------------------------------- autoencoder
def test_autoencoder_learns_and_samples_from_its_fitted_code_gaussian(tmp_path):
    model = _tiny("Autoencoder", reconstruction="mse", lr=5e-3, betas=(0.9, 0.999))
    # smooth random blobs: images with structure to compress (uniform noise can only be learned as its mean)
    g = torch.Generator().manual_seed(0)
    x = torch.tanh(3 * F.interpolate(torch.randn(8, 1, 4, 4, generator=g), size=28, mode="bilinear"))
    y = torch.zeros(8, dtype=torch.long)
    with torch.no_grad():
        before = model.loss_terms(x)[0]["recon_loss"]
    _fit(model, [(x, y)] * 30, tmp_path)
    with torch.no_grad():
        after = model.loss_terms(x)[0]["recon_loss"]
    batch_mean_error = (x - x.mean(0)).pow(2).sum() / 8  # what "decode the average image" would score
    assert after < 0.5 * before and after < 0.7 * batch_mean_error, (before, after, batch_mean_error)
    assert model.g_steps == 30 and model.d_steps == 0 and int(model.code_gaussian.updates) == 30
    # the fit follows the codes: not N(0, I)
    fit = model.code_gaussian
    assert not torch.allclose(fit.mean, torch.zeros_like(fit.mean), atol=1e-3)
    # sampling decodes standard noise mapped through the fit
    eps = model.fixed_noise[:3]
    model.generator.eval()
    expected = model.generator(fit.mean + eps @ fit.scale().T).clamp(-1, 1)
    assert torch.allclose(model.sample(z=eps), expected, atol=1e-6)


def test_code_gaussian_recovers_mean_and_covariance():
    torch.manual_seed(0)
    mean, scale = torch.tensor([1.0, -2.0]), torch.tensor([[2.0, 0.0], [1.0, 0.5]])
    fit = CodeGaussian(2, momentum=1e-3)  # a plain average over these batches
    for _ in range(50):
        fit.update(mean + torch.randn(200, 2) @ scale.T)
    assert torch.allclose(fit.mean, mean, atol=0.05)
    assert torch.allclose(fit.covariance, scale @ scale.T, atol=0.1)
    assert torch.allclose(fit.scale() @ fit.scale().T, fit.covariance, atol=1e-4)


@pytest.mark.parametrize("cls", [Autoencoder, VAE])
@pytest.mark.parametrize("option", ["toolbox", "n_critic", "lr_d", "optimizer_d"])
def test_reconstruction_baselines_take_no_discriminator_options(cls, option):
    """No discriminator, so no option of one: not accepted, rather than accepted and then refused."""
    with pytest.raises(TypeError, match=option):
        cls(**{**TINY[cls.__name__].kwargs, option: 1})
