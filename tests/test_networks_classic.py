"""Unit tests for the classic networks: ResNet (SNGAN / projection / SAGAN), BiGAN/ALI, autoencoder/VAE, blocks.

Tiny widths and batches keep the whole file to a few seconds on CPU.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_gans.networks.bigan import BiGANEncoder, BiGANGenerator, JointDiscriminator
from lightning_gans.networks.blocks import (
    ConditionalBatchNorm2d,
    MinibatchStdDev,
    ResBlockDown,
    ResBlockUp,
    SelfAttention,
    apply_spectral_norm,
    has_spectral_norm,
    maybe_spectral_norm,
)
from lightning_gans.networks.resnet_gan import ResNetDiscriminator, ResNetGenerator
from lightning_gans.networks.vae import ConvDecoder, ConvEncoder, gaussian_kl, reparameterize

LATENT = 8
SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 128, 128)]
SN_LAYERS = (nn.Conv2d, nn.Linear, nn.Embedding)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _largest_singular_value(weight: torch.Tensor) -> float:
    return torch.linalg.matrix_norm(weight.detach().flatten(1), ord=2).item()


# --------------------------------------------------------------------------------------------- ResNet G and D


@pytest.mark.parametrize("shape", SHAPES)
def test_resnet_translator_shape_and_range(shape: tuple[int, int, int]) -> None:
    g = ResNetGenerator(latent_dim=LATENT, image_shape=shape, base_channels=16)
    x = g(torch.randn(2, LATENT))
    assert x.shape == (2, *shape)
    assert x.min() >= -1 and x.max() <= 1
    g.eval()  # running statistics path
    assert g(torch.randn(2, LATENT)).shape == (2, *shape)


@pytest.mark.parametrize("shape", SHAPES)
def test_resnet_discriminator_logits_and_features(shape: tuple[int, int, int]) -> None:
    d = ResNetDiscriminator(image_shape=shape, base_channels=16).eval()  # eval: no power iteration between calls
    x = torch.randn(3, *shape)
    logits = d(x)
    assert logits.shape == (3, 1)
    logits2, features = d(x, return_features=True)
    assert features.shape == (3, d.feature_dim) and d.feature_dim == 16
    torch.testing.assert_close(logits, logits2)
    d_feat = ResNetDiscriminator(image_shape=shape, base_channels=16, return_features=True).eval()
    assert isinstance(d_feat(x), tuple) and isinstance(d_feat(x, return_features=False), torch.Tensor)


def test_default_widths_match_sngan_cifar() -> None:
    """The 32x32 defaults are the SNGAN CIFAR networks: 256-wide G (about 4.3M parameters), 128-wide D (1.05M)."""
    g, d = ResNetGenerator(), ResNetDiscriminator()
    assert g.start_channels == 256 and d.feature_dim == 128
    assert 4.2e6 < sum(p.numel() for p in g.parameters()) < 4.4e6
    assert 1.0e6 < sum(p.numel() for p in d.parameters()) < 1.1e6


def test_conditional_generator_uses_labels() -> None:
    g = ResNetGenerator(latent_dim=LATENT, image_shape=(3, 32, 32), base_channels=16, num_classes=4).eval()
    z = torch.randn(1, LATENT).expand(2, -1)
    with torch.no_grad():
        x = g(z, torch.tensor([0, 3]))
    assert not torch.allclose(x[0], x[1])
    with pytest.raises(ValueError, match="labels"):
        g(z)


def test_projection_discriminator_depends_on_label() -> None:
    d = ResNetDiscriminator(image_shape=(3, 32, 32), base_channels=16, num_classes=5)
    x = torch.randn(1, 3, 32, 32).expand(2, -1, -1, -1)
    logits = d(x, torch.tensor([0, 4]))
    assert logits.shape == (2, 1)
    assert not torch.allclose(logits[0], logits[1])
    with pytest.raises(ValueError, match="labels"):
        d(x)


def test_unconditional_discriminator_ignores_labels() -> None:
    d = ResNetDiscriminator(image_shape=(1, 28, 28), base_channels=16).eval()
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(d(x), d(x, torch.tensor([0, 1])))


def test_discriminator_spectral_norm_bounds_singular_values() -> None:
    d = ResNetDiscriminator(image_shape=(3, 32, 32), base_channels=16, num_classes=3)
    layers = [m for m in d.modules() if isinstance(m, SN_LAYERS)]
    assert layers and all(has_spectral_norm(m) for m in layers)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    for _ in range(10):  # each training-mode forward runs one more power iteration
        d(x, y)
    for m in layers:
        assert _largest_singular_value(m.weight) == pytest.approx(1.0, abs=0.05)


def test_spectral_norm_switches() -> None:
    plain = ResNetDiscriminator(image_shape=(3, 32, 32), base_channels=16, spectral_norm=False)
    assert not any(has_spectral_norm(m) for m in plain.modules())
    g = ResNetGenerator(latent_dim=LATENT, image_shape=(3, 32, 32), base_channels=16, spectral_norm=True)
    assert all(has_spectral_norm(m) for m in g.modules() if isinstance(m, SN_LAYERS))


def test_apply_spectral_norm_wraps_every_layer_once() -> None:
    g = ResNetGenerator(latent_dim=LATENT, image_shape=(3, 32, 32), base_channels=16, num_classes=3)
    layers = [m for m in g.modules() if isinstance(m, SN_LAYERS)]
    assert any(isinstance(m, nn.Embedding) for m in layers)  # conditional batch norm tables
    apply_spectral_norm(g)
    apply_spectral_norm(g)  # idempotent
    assert all(has_spectral_norm(m) and len(m.parametrizations["weight"]) == 1 for m in layers)
    for _ in range(10):
        x = g(torch.randn(4, LATENT), torch.tensor([0, 1, 2, 1]))
    assert torch.isfinite(x).all()
    for m in layers:
        assert _largest_singular_value(m.weight) == pytest.approx(1.0, abs=0.05)
    # Other families' networks, e.g. a DCGAN-style one with transposed convolutions:
    net = apply_spectral_norm(BiGANGenerator(LATENT, (1, 28, 28), base_channels=8))
    assert all(has_spectral_norm(m) for m in net.modules() if isinstance(m, (nn.ConvTranspose2d, nn.Linear)))
    assert not has_spectral_norm(maybe_spectral_norm(nn.Linear(2, 2), False))
    assert has_spectral_norm(maybe_spectral_norm(nn.Linear(2, 2), True))


@pytest.mark.parametrize(("size", "resolution"), [(28, 14), (32, 16), (32, 8), (64, 16), (128, 32)])
def test_sagan_attention_in_both_networks(size: int, resolution: int) -> None:
    shape = (3, size, size)
    base = 16 if size <= 32 else 128
    g = ResNetGenerator(
        latent_dim=LATENT, image_shape=shape, base_channels=base, attention_resolution=resolution, spectral_norm=True
    )
    d = ResNetDiscriminator(image_shape=shape, base_channels=base, attention_resolution=resolution)
    assert sum(isinstance(m, SelfAttention) for m in g.modules()) == 1
    assert sum(isinstance(m, SelfAttention) for m in d.modules()) == 1
    assert d(g(torch.randn(2, LATENT))).shape == (2, 1)


def test_invalid_attention_resolution_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: 8, 16, 32"):
        ResNetGenerator(image_shape=(3, 32, 32), base_channels=16, attention_resolution=4)
    with pytest.raises(ValueError, match="valid: 8, 16"):
        ResNetDiscriminator(image_shape=(3, 32, 32), base_channels=16, attention_resolution=32)


UNSUPPORTED = [(3, 48, 48), (3, 32, 64), (3, 16, 16)]
CONSTRUCTORS = {
    "ResNetGenerator": lambda s: ResNetGenerator(image_shape=s, base_channels=16),
    "ResNetDiscriminator": lambda s: ResNetDiscriminator(image_shape=s, base_channels=16),
    "BiGANEncoder": lambda s: BiGANEncoder(s, LATENT),
    "BiGANGenerator": lambda s: BiGANGenerator(LATENT, s),
    "JointDiscriminator": lambda s: JointDiscriminator(s, LATENT),
    "ConvEncoder": lambda s: ConvEncoder(s, LATENT),
    "ConvDecoder": lambda s: ConvDecoder(LATENT, s),
}


@pytest.mark.parametrize("name", CONSTRUCTORS)
@pytest.mark.parametrize("shape", UNSUPPORTED)
def test_unsupported_image_size_names_supported_ones(name: str, shape: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match=rf"{name} supports square images of size 28x28, 32x32, 64x64, 128x128"):
        CONSTRUCTORS[name](shape)


def test_too_narrow_base_channels_is_refused() -> None:
    with pytest.raises(ValueError, match="base_channels=8 is too small.*needs >= 16"):
        ResNetDiscriminator(image_shape=(3, 64, 64), base_channels=8)


def test_gradient_penalty_through_sagan_discriminator() -> None:
    """Double backward (WGAN-GP, R1) works through spectral norm and self-attention."""
    d = ResNetDiscriminator(image_shape=(3, 32, 32), base_channels=16, attention_resolution=16)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    grad.pow(2).sum().backward()
    weights = [p for name, p in d.named_parameters() if name.endswith("weight.original")]
    assert weights and all(p.grad is not None for p in weights)  # biases do not enter the input gradient
    assert d.blocks[1].gamma.grad is not None


# --------------------------------------------------------------------------------------------- blocks


def test_self_attention_is_identity_at_init() -> None:
    attention = SelfAttention(16)
    assert attention.gamma.item() == 0.0
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(attention(x), x)
    attention(x).sum().backward()
    assert attention.gamma.grad is not None and attention.gamma.grad.abs() > 0  # gamma can move away from 0
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    assert not torch.allclose(attention(x), x)
    assert SelfAttention(8, spectral_norm=False)(torch.randn(1, 8, 7, 7)).shape == (1, 8, 7, 7)  # odd map
    with pytest.raises(ValueError, match="at least 8"):
        SelfAttention(4)


def test_residual_blocks_shapes() -> None:
    x = torch.randn(2, 8, 8, 8)
    assert ResBlockUp(8, 4)(x).shape == (2, 4, 16, 16)
    assert ResBlockUp(8, 4, num_classes=3)(x, torch.tensor([0, 2])).shape == (2, 4, 16, 16)
    assert ResBlockDown(3, 8, optimized=True)(torch.randn(2, 3, 8, 8)).shape == (2, 8, 4, 4)
    assert ResBlockDown(8, 16)(x).shape == (2, 16, 4, 4)
    keep = ResBlockDown(8, 8, downsample=False)
    assert keep.shortcut is None and keep(x).shape == (2, 8, 8, 8)


def test_conditional_batch_norm_depends_on_label() -> None:
    cbn = ConditionalBatchNorm2d(4, num_classes=3)
    x = torch.randn(1, 4, 5, 5).expand(2, -1, -1, -1)
    out = cbn(x, torch.tensor([0, 2]))
    assert not torch.allclose(out[0], out[1])


def test_minibatch_stddev_adds_one_constant_channel() -> None:
    x = torch.randn(6, 3, 4, 4)  # 6 is not a multiple of 4: groups of 3
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (6, 4, 4, 4)
    torch.testing.assert_close(out[:, :3], x)
    assert torch.all(out[:, 3] == out[:, 3, :1, :1]) and out[:, 3].min() > 0


# --------------------------------------------------------------------------------------------- BiGAN / ALI


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_bigan_networks(shape: tuple[int, int, int]) -> None:
    encoder = BiGANEncoder(shape, LATENT, base_channels=8)
    generator = BiGANGenerator(LATENT, shape, base_channels=8)
    discriminator = JointDiscriminator(shape, LATENT, base_channels=8, hidden_dim=16)
    x = generator(torch.randn(3, LATENT))
    assert x.shape == (3, *shape) and x.min() >= -1 and x.max() <= 1
    z = encoder(x)
    assert z.shape == (3, LATENT)
    logits, features = discriminator(x, z, return_features=True)
    assert logits.shape == (3, 1) and features.shape == (3, discriminator.feature_dim)
    discriminator.eval()  # no dropout: the logit depends on both halves of the pair
    assert not torch.allclose(discriminator(x, z), discriminator(x, torch.randn_like(z)))
    assert not torch.allclose(discriminator(x, z), discriminator(torch.randn_like(x), z))
    with pytest.raises(ValueError, match="batch sizes differ"):
        discriminator(x, z[:2])


def test_bigan_encoder_deterministic_or_stochastic() -> None:
    x = torch.randn(2, 1, 28, 28)
    deterministic = BiGANEncoder((1, 28, 28), LATENT, base_channels=8).eval()
    torch.testing.assert_close(deterministic(x), deterministic(x))
    with pytest.raises(ValueError, match="stochastic"):
        deterministic.distribution(x)
    stochastic = BiGANEncoder((1, 28, 28), LATENT, base_channels=8, stochastic=True).eval()
    mu, logvar = stochastic.distribution(x)
    assert mu.shape == logvar.shape == (2, LATENT)
    assert not torch.allclose(stochastic(x), stochastic(x))


# --------------------------------------------------------------------------------------------- autoencoder / VAE


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_vae_encoder_decoder(shape: tuple[int, int, int]) -> None:
    x = torch.randn(2, *shape)
    mu, logvar = ConvEncoder(shape, LATENT, variational=True, base_channels=8)(x)
    assert mu.shape == logvar.shape == (2, LATENT)
    z = ConvEncoder(shape, LATENT, variational=False, base_channels=8)(x)
    assert isinstance(z, torch.Tensor) and z.shape == (2, LATENT)
    recon = ConvDecoder(LATENT, shape, base_channels=8)(reparameterize(mu, logvar))
    assert recon.shape == (2, *shape) and recon.min() >= -1 and recon.max() <= 1


def test_gaussian_kl_and_reparameterize() -> None:
    zeros = torch.zeros(4, LATENT)
    assert gaussian_kl(zeros, zeros).item() == pytest.approx(0.0)
    assert gaussian_kl(torch.ones(4, LATENT), zeros).item() == pytest.approx(0.5 * LATENT)
    mu = torch.zeros(3, LATENT, requires_grad=True)
    logvar = torch.zeros(3, LATENT, requires_grad=True)
    reparameterize(mu, logvar).pow(2).sum().backward()
    assert mu.grad is not None and logvar.grad is not None and logvar.grad.abs().sum() > 0
