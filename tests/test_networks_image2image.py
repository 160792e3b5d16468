"""Unit tests of the image-to-image networks: U-Net, PatchGAN, ResNet generator, SPADE, and the init helpers.

Parameter counts of the full-size official configurations are checked without running them; forward passes use
tiny widths. The official counts were derived from the official code (junyanz/pytorch-CycleGAN-and-pix2pix
models/networks.py) layer by layer, and agree with its printouts ("[Network G] Total number of parameters :
54.414 M", printed to three decimals).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from lightning_gans.networks.init import conv_bias, init_weights, norm_layer
from lightning_gans.networks.patchgan import MultiScaleDiscriminator, PatchDiscriminator, receptive_field
from lightning_gans.networks.resnet_translator import ResnetTranslator
from lightning_gans.networks.spade import (
    SPADE,
    SPADEGenerator,
    SPADEResBlock,
)
from lightning_gans.networks.unet import UNetGenerator

NETWORKS_DIR = Path(__file__).resolve().parents[1] / "lightning_gans" / "networks"
MY_FILES = ("init.py", "unet.py", "patchgan.py", "resnet_translator.py", "spade.py")


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def in_millions(n: int) -> str:
    """The official `print_networks` format."""
    return f"{n / 1e6:.3f}"


# --- init.py ------------------------------------------------------------------------------------------------------


def test_norm_layer_factory() -> None:
    batch = norm_layer("batch")(8)
    assert isinstance(batch, nn.BatchNorm2d) and batch.affine
    instance = norm_layer("instance")(8)
    assert isinstance(instance, nn.InstanceNorm2d) and not instance.affine and not instance.track_running_stats
    assert isinstance(norm_layer("none")(8), nn.Identity)
    with pytest.raises(ValueError, match="batch, instance, none"):
        norm_layer("group")
    assert conv_bias("batch") is False and conv_bias("instance") is True and conv_bias("none") is True


def test_init_weights_normal_matches_official() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64), nn.ConvTranspose2d(64, 32, 4), nn.Linear(100, 100))
    init_weights(net, "normal", 0.02)
    for layer in (net[0], net[2], net[3]):
        assert abs(layer.weight.std().item() - 0.02) < 0.002
        assert torch.all(layer.bias == 0)
    assert abs(net[1].weight.mean().item() - 1.0) < 0.01 and abs(net[1].weight.std().item() - 0.02) < 0.01
    assert torch.all(net[1].bias == 0)


@pytest.mark.parametrize("init_type", ["xavier", "kaiming", "orthogonal"])
def test_init_weights_other_types(init_type: str) -> None:
    net = nn.Sequential(nn.Conv2d(4, 8, 3), nn.Linear(8, 8))
    init_weights(net, init_type, 0.02)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert torch.all(net[0].bias == 0)


def test_init_weights_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match="normal, xavier, kaiming, orthogonal"):
        init_weights(nn.Linear(2, 2), "uniform")


def test_init_weights_reaches_spectrally_normalised_weight() -> None:
    torch.manual_seed(0)
    conv = nn.utils.parametrizations.spectral_norm(nn.Conv2d(16, 32, 3))
    init_weights(conv, "normal", 0.02)
    raw = conv.parametrizations.weight.original
    assert abs(raw.std().item() - 0.02) < 0.003
    conv.eval()  # eval mode uses the stored singular vectors, which init_weights refreshed
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=0.05)


# --- U-Net ------------------------------------------------------------------------------------------------------


def test_unet_256_official_parameter_count() -> None:
    # unet_256: batch norm, ngf 64, 8 downsamplings, 3 -> 3 channels. Summed from the official blocks:
    # outermost 3,072 + 6,147; then 393,600; 1,573,632; 6,292,992; 3 x 12,584,960 (dropout blocks); innermost 8,389,632.
    net = UNetGenerator(in_channels=3, out_channels=3, num_downs=8, base_channels=64, norm="batch")
    assert count(net) == 54_413_955
    assert in_millions(count(net)) == "54.414"  # the official printout
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 3
    assert count(UNetGenerator(num_downs=7)) == 41_828_995  # unet_128, printed "41.829 M"


def test_unet_256_maps_256_to_256() -> None:
    net = UNetGenerator(num_downs=8, base_channels=2)
    out = net(torch.randn(1, 3, 256, 256))
    assert out.shape == (1, 3, 256, 256)


def test_unet_output_shape_and_range() -> None:
    torch.manual_seed(0)
    net = UNetGenerator(in_channels=1, out_channels=2, num_downs=5, base_channels=4)
    out = net(torch.randn(2, 1, 64, 32) * 10)
    assert out.shape == (2, 2, 64, 32)
    assert out.abs().max() <= 1.0
    out.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_unet_skip_connections_carry_fine_detail() -> None:
    """The outermost decoder block sees the outermost encoder output, so detail reaches the output locally."""
    torch.manual_seed(0)
    net = UNetGenerator(num_downs=5, base_channels=4, norm="instance", dropout=False).double()
    seen: dict[str, torch.Tensor] = {}
    net.down[0].register_forward_hook(lambda m, i, o: seen.__setitem__("encoder", o))
    net.up[0].register_forward_hook(lambda m, i, o: seen.__setitem__("decoder_in", i[0]))
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    net(x)
    assert seen["decoder_in"].shape[1] == 2 * 4
    assert torch.equal(seen["decoder_in"][:, :4], seen["encoder"])

    # Cut every level below the first (bottleneck and deeper skips): the output still follows the input through
    # the 16x16 skip alone, and a one-pixel change moves only the output pixels that the 4x4 convolutions reach.
    for down in net.down[1:]:
        down.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    poked = x.clone()
    poked[..., 16, 16] += 1.0
    changed = (net(poked) - net(x)).abs().sum(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert rows.numel() > 0
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (13, 18, 13, 18)


def test_unet_rejects_sizes_it_cannot_map() -> None:
    net = UNetGenerator(num_downs=5, base_channels=2)
    with pytest.raises(ValueError, match=r"divisible by 2\*\*5 = 32, got 48x64"):
        net(torch.randn(1, 3, 48, 64))
    UNetGenerator(num_downs=8, base_channels=2).check_input_size(512, 256)
    with pytest.raises(ValueError, match="250x250"):
        UNetGenerator(num_downs=8, base_channels=2).check_input_size(250, 250)


# --- PatchGAN -----------------------------------------------------------------------------------------------------


def test_patchgan_official_parameter_counts() -> None:
    cyclegan_d = PatchDiscriminator(in_channels=3, norm="instance")  # printed "2.765 M"
    assert count(cyclegan_d) == 2_764_737
    pix2pix_d = PatchDiscriminator(in_channels=6, norm="batch")  # printed "2.769 M"
    assert count(pix2pix_d) == 2_768_705
    assert count(PatchDiscriminator(in_channels=3, norm="batch")) == 2_765_633


@pytest.mark.parametrize(("n_layers", "field"), [(1, 16), (3, 70), (5, 286)])
def test_patchgan_receptive_field_from_layers(n_layers: int, field: int) -> None:
    assert receptive_field(PatchDiscriminator(in_channels=3, base_channels=2, n_layers=n_layers)) == field


def test_patchgan_receptive_field_is_70_empirically() -> None:
    torch.manual_seed(0)
    net = PatchDiscriminator(in_channels=3, base_channels=2, norm="none").double()
    x = torch.randn(1, 3, 128, 128, dtype=torch.float64, requires_grad=True)
    logits = net(x)
    assert logits.shape == (1, 1, 14, 14)
    logits[0, 0, 7, 7].backward()
    rows, cols = torch.nonzero(x.grad.abs().sum(1)[0], as_tuple=True)
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


@pytest.mark.parametrize(("padding", "side"), [(1, 30), (2, 35)])
def test_patchgan_logit_map_for_256(padding: int, side: int) -> None:
    net = PatchDiscriminator(in_channels=6, base_channels=2, padding=padding)
    logits = net(torch.randn(2, 6, 256, 256))
    assert logits.shape == (2, 1, side, side)
    assert not any(isinstance(m, nn.Sigmoid) for m in net.modules())
    assert logits.min() < 0  # logits, not probabilities


def test_patchgan_features_end_with_logits() -> None:
    net = PatchDiscriminator(in_channels=3, base_channels=4, norm="instance")
    x = torch.randn(2, 3, 64, 64)
    features = net.features(x)
    assert len(features) == 5
    assert torch.equal(features[-1], net(x))


def test_multiscale_discriminator_returns_features_per_scale() -> None:
    torch.manual_seed(0)
    net = MultiScaleDiscriminator(in_channels=5, base_channels=4, num_D=2)
    assert sum(parametrize.is_parametrized(m, "weight") for m in net.modules()) == 2 * 3  # the normalised convs
    x = torch.randn(2, 5, 64, 64)
    outputs = net(x)
    assert len(outputs) == 2 and all(len(features) == 5 for features in outputs)
    assert outputs[0][-1].shape == (2, 1, 11, 11)  # padding 2: 64 -> 33 -> 17 -> 9 -> 10 -> 11
    assert outputs[1][-1].shape == (2, 1, 7, 7)  # on the 32x32 average-pooled input
    net.eval()
    half = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    torch.testing.assert_close(net(x)[1][-1], net.discriminators[1](half))
    sum(features[-1].mean() for features in outputs).backward()
    assert all(p.grad is not None for p in net.parameters())


# --- ResNet generator ---------------------------------------------------------------------------------------------


def test_resnet_translator_official_parameter_counts() -> None:
    assert count(ResnetTranslator(n_blocks=9, norm="instance")) == 11_378_179  # resnet_9blocks, printed "11.378 M"
    assert count(ResnetTranslator(n_blocks=6, norm="instance")) == 7_837_699  # resnet_6blocks, printed "7.838 M"


@pytest.mark.parametrize("size", [32, 128, 256])
def test_resnet_translator_shapes(size: int) -> None:
    net = ResnetTranslator(in_channels=3, out_channels=1, base_channels=2, n_blocks=1)
    out = net(torch.randn(1, 3, size, size) * 10)
    assert out.shape == (1, 1, size, size)
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize("padding", ["reflect", "replicate", "zero"])
def test_resnet_translator_options(padding: str) -> None:
    net = ResnetTranslator(base_channels=4, n_blocks=2, norm="batch", dropout=True, padding=padding)
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 2
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_resnet_translator_rejects_bad_sizes_and_options() -> None:
    net = ResnetTranslator(base_channels=2, n_blocks=1)
    with pytest.raises(ValueError, match="divisible by 4.*30x32"):
        net(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match="reflect, replicate or zero"):
        ResnetTranslator(base_channels=2, n_blocks=1, padding="circular")


# --- SPADE --------------------------------------------------------------------------------------------------------

TINY_SPADE = dict(label_nc=3, base_channels=4, image_size=32, hidden=8)


def one_hot_map(batch: int, classes: int, size: int, seed: int) -> torch.Tensor:
    labels = torch.randint(0, classes, (batch, size, size), generator=torch.Generator().manual_seed(seed))
    return F.one_hot(labels, classes).permute(0, 3, 1, 2).float()


def test_spade_layer_modulates_by_the_map() -> None:
    torch.manual_seed(0)
    layer = SPADE(norm_nc=6, label_nc=3, hidden=8)
    x = torch.randn(2, 6, 8, 8)
    out = layer(x, one_hot_map(2, 3, 32, seed=0))  # the map is resized to x's 8x8
    assert out.shape == x.shape
    assert not torch.allclose(out, layer(x, one_hot_map(2, 3, 32, seed=1)))
    assert count(layer.norm) == 0  # parameter-free normalisation
    assert isinstance(SPADE(4, 3, param_free_norm="instance").norm, nn.InstanceNorm2d)


def test_spade_resblock_shortcut_and_spectral_norm() -> None:
    segmap = one_hot_map(2, 3, 16, seed=0)
    same = SPADEResBlock(8, 8, label_nc=3, hidden=8)
    assert not same.learned_shortcut and not hasattr(same, "conv_s")
    changing = SPADEResBlock(8, 4, label_nc=3, hidden=8)
    assert changing.learned_shortcut and changing.conv_s.bias is None
    assert changing.conv_0.out_channels == 4  # middle width min(fin, fout)
    assert all(parametrize.is_parametrized(c, "weight") for c in (changing.conv_0, changing.conv_1, changing.conv_s))
    assert not parametrize.is_parametrized(SPADEResBlock(8, 4, 3, spectral_norm=False, hidden=8).conv_0, "weight")
    assert changing(torch.randn(2, 8, 16, 16), segmap).shape == (2, 4, 16, 16)


def test_spade_generator_tiny_shapes_and_label_dependence() -> None:
    torch.manual_seed(0)
    net = SPADEGenerator(**TINY_SPADE)
    assert net.image_shape == (32, 32)
    segmap = one_hot_map(2, 3, 32, seed=0)
    out = net(segmap)
    assert out.shape == (2, 3, 32, 32)
    assert out.abs().max() <= 1.0
    out.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()  # (in training mode each call also runs one spectral-norm power iteration)
    with torch.no_grad():
        assert torch.equal(net(segmap), net(segmap))  # no noise without the VAE
        assert not torch.allclose(net(segmap), net(one_hot_map(2, 3, 32, seed=1)))


def test_spade_generator_copies_for_ema() -> None:
    net = SPADEGenerator(**TINY_SPADE).eval()
    segmap = one_hot_map(2, 3, 32, seed=0)
    torch.testing.assert_close(copy.deepcopy(net)(segmap), net(segmap))
    clone = SPADEGenerator(**TINY_SPADE).eval()
    clone.load_state_dict(net.state_dict())
    torch.testing.assert_close(clone(segmap), net(segmap))


@pytest.mark.parametrize(
    ("layers", "image_size", "aspect_ratio", "shape"),
    [("more", 64, 1.0, (64, 64)), ("most", 128, 1.0, (128, 128)), ("normal", 64, 2.0, (32, 64))],
)
def test_spade_generator_upsampling_options(layers: str, image_size: int, aspect_ratio: float, shape: tuple) -> None:
    net = SPADEGenerator(
        label_nc=2,
        base_channels=2,
        image_size=image_size,
        num_upsampling_layers=layers,
        aspect_ratio=aspect_ratio,
        hidden=4,
    )
    assert net.image_shape == shape
    assert net(torch.rand(2, 2, *shape)).shape == (2, 3, *shape)


@pytest.mark.parametrize("image_size", [48, 16, 100])
def test_spade_generator_rejects_sizes_it_cannot_make(image_size: int) -> None:
    with pytest.raises(ValueError, match=rf"cannot make a {image_size}-wide image.*multiples of 2\*\*5 = 32"):
        SPADEGenerator(label_nc=3, base_channels=2, image_size=image_size, hidden=4)
    with pytest.raises(ValueError, match="normal, more or most"):
        SPADEGenerator(label_nc=3, base_channels=2, image_size=32, num_upsampling_layers="many", hidden=4)


# --- conventions --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MY_FILES)
def test_networks_are_plain_torch(name: str) -> None:
    source = (NETWORKS_DIR / name).read_text()
    assert not re.search(r"^\s*(import|from)\s+(lightning|pytorch_lightning)\b", source, re.MULTILINE)
    assert source.lstrip().startswith('"""')


@pytest.mark.parametrize(
    "cls",
    [
        UNetGenerator,
        PatchDiscriminator,
        MultiScaleDiscriminator,
        ResnetTranslator,
        SPADE,
        SPADEResBlock,
        SPADEGenerator,
    ],
)
def test_public_classes_document_their_arguments(cls: type) -> None:
    assert "Args:" in (cls.__doc__ or "")
