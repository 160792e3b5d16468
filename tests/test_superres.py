"""Super-resolution: the Y-channel metrics against hand computations, the networks against the reference layouts,
the perceptual losses (VGG19 with a random state dict saved to a file: no download), the datamodule, and what makes
SRResNet, SRGAN and ESRGAN what they are (losses by hand, init_from, tiled upscaling, predict sizes, bf16).
Tiny shapes; the contract and resume tests run the three families too (tests/families.py).
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from datamodules.base import DatasetNotFoundError
from datamodules.superres import SuperResolutionDataModule, SuperResolutionDataset
from lightning_gans.callbacks import ImageWriter
from lightning_gans.checkpointing import CheckpointMismatchError
from lightning_gans.metrics.superres import SRMetrics, crop_border, psnr, rgb_to_y, sr_scores, ssim, to_unit
from lightning_gans.models import ESRGAN, SRGAN, SRResNet
from lightning_gans.networks.rrdb import ResidualDenseBlock, RRDBNet
from lightning_gans.networks.srresnet import SRResNetGenerator, interpolate
from lightning_gans.networks.vgg_discriminator import VGGStyleDiscriminator
from lightning_gans.perceptual import VGG19_LAYERS, ContentLoss, VGGFeatures, resolve_vgg_weights, vgg19_features
from lightning_gans.superres import interpolated, upscale
from tests.conftest import quiet_trainer
from tests.families import TINY, sr_batch

FAMILY = {"SRResNet": SRResNet, "SRGAN": SRGAN, "ESRGAN": ESRGAN}


def _tiny(name: str, **overrides):
    """The family's tiny model; for SRGAN/ESRGAN a content term given by name changes that field of ``content``."""
    torch.manual_seed(0)
    kwargs = {**TINY[name].kwargs, **overrides}
    if name in ("SRGAN", "ESRGAN"):
        terms = {k: kwargs.pop(k) for k in list(kwargs) if k in ContentLoss.names()}
        kwargs["content"] = {**kwargs.get("content", {}), **terms}
    return FAMILY[name](**kwargs)


def _default(cls, option: str):
    return inspect.signature(cls.__init__).parameters[option].default


def _trainer(root: Path, **kwargs):
    return quiet_trainer(root, **{"limit_val_batches": 0, **kwargs})


def _write_images(folder: Path, sizes: dict[str, tuple[int, int]], seed: int = 0) -> None:
    """Smooth RGB images (so bicubic has something to interpolate) of the given (H, W), named as given."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, (h, w) in sizes.items():
        small = rng.integers(0, 256, (max(h // 4, 1), max(w // 4, 1), 3), dtype=np.uint8)
        Image.fromarray(small).resize((w, h), Image.BILINEAR).save(folder / name)


# ------------------------------------------------------------------------------------------------ metrics by hand
def test_y_channel_is_matlab_bt601_studio_range():
    x = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).view(3, 3, 1, 1)
    y = rgb_to_y(x).flatten().tolist()
    assert y == pytest.approx([235 / 255, 16 / 255, (16 + 65.481) / 255], abs=1e-6)  # 16 + 219 for white


def test_psnr_and_ssim_against_hand_computations():
    a, b = torch.zeros(2, 1, 16, 16), torch.full((2, 1, 16, 16), 0.1)
    assert psnr(a, b).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)  # MSE 0.01 -> 10 log10(1 / 0.01)
    assert psnr(a, a).tolist() == pytest.approx([100.0, 100.0])  # identical: the MSE floor, not inf
    # constant images have no variance: SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)
    c1 = 0.01**2
    a, b = torch.full((1, 1, 12, 12), 0.2, dtype=torch.float64), torch.full((1, 1, 12, 12), 0.6, dtype=torch.float64)
    assert ssim(a, b).item() == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1), rel=1e-5)
    x = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 1, 10, 10), torch.zeros(1, 1, 10, 10))


def test_ssim_is_torchmetrics_ssim_map_over_the_valid_positions():
    """The same SSIM map as torchmetrics' (11x11 Gaussian, sigma 1.5), averaged over the positions whose window lies
    inside the image, as BasicSR and the MATLAB reference do; torchmetrics also averages its reflect-padded border."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    g = torch.Generator().manual_seed(1)
    a = torch.rand(3, 3, 32, 32, generator=g, dtype=torch.float64)
    b = (a + 0.2 * torch.randn(3, 3, 32, 32, generator=g, dtype=torch.float64)).clamp(0, 1)
    _, full = structural_similarity_index_measure(b, a, data_range=1.0, reduction="none", return_full_image=True)
    torch.testing.assert_close(ssim(b, a), full[..., 5:-5, 5:-5].flatten(1).mean(1))


def test_sr_scores_crop_the_border_quantise_and_score_y_and_rgb():
    hr = torch.zeros(1, 3, 24, 24)
    sr = hr.clone()
    sr[..., :4, :] = 1.0  # a wrong top border, 4 pixels: cropped away at scale 4 ...
    assert sr_scores(sr, hr, scale=4)["psnr_y"].item() == pytest.approx(100.0)
    assert sr_scores(sr, hr, scale=3)["psnr_y"].item() < 40  # ... but not at scale 3
    # black HR, SR at 51/255 = 0.2 on every channel: RGB PSNR 10 log10(1 / 0.04); Y moves by 0.2 * 219/255
    hr, sr = torch.full((1, 3, 24, 24), -1.0), torch.full((1, 3, 24, 24), 2 * 51 / 255 - 1)
    scores = sr_scores(sr, hr, scale=2)
    assert scores["psnr"].item() == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-4)
    assert scores["psnr_y"].item() == pytest.approx(10 * math.log10(1 / 0.04) + 20 * math.log10(255 / 219), abs=1e-4)
    assert to_unit(torch.tensor([0.0013])).item() == pytest.approx(128 / 255)  # rounded to 8 bits
    assert crop_border(torch.zeros(1, 1, 10, 12), 2).shape == (1, 1, 6, 8)


def test_sr_metrics_average_per_image_values_under_each_name():
    metrics = SRMetrics(scale=2, names=("", "bicubic"))
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(4, 3, 20, 20, generator=g) * 2 - 1
    sr = (hr + 0.1 * torch.randn(4, 3, 20, 20, generator=g)).clamp(-1, 1)
    metrics.update(sr[:2], hr[:2])
    metrics.update(sr[2:], hr[2:])
    metrics.update(hr, hr, "bicubic")
    expected = sr_scores(sr, hr, 2)["psnr_y"].mean().item()
    assert metrics.means["psnr_y"].compute().item() == pytest.approx(expected, rel=1e-5)
    assert metrics.means["ssim_bicubic"].compute().item() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------ networks
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_generators_upscale_any_size_by_their_scale(scale: int):
    x = torch.rand(2, 3, 7, 5) * 2 - 1
    for net in (SRResNetGenerator(scale, channels=4, num_blocks=1), RRDBNet(scale, channels=4, num_blocks=1, growth=4)):
        assert net(x).shape == (2, 3, 7 * scale, 5 * scale)
    with pytest.raises(ValueError, match="2, 3 or 4"):
        SRResNetGenerator(8)


def test_srresnet_skip_adds_the_interpolated_input():
    torch.manual_seed(0)
    net = SRResNetGenerator(4, channels=4, num_blocks=1, skip="bicubic").eval()
    nn.init.zeros_(net.tail.weight)
    nn.init.zeros_(net.tail.bias)  # the residual branch silenced: the output is bicubic upscaling itself
    x = torch.rand(1, 3, 6, 6) * 2 - 1
    torch.testing.assert_close(net(x), interpolate(x, 4, "bicubic"))


def test_rrdbnet_matches_esrgan_size_residual_scaling_and_small_init():
    net = RRDBNet(4)  # ESRGAN's x4 RRDB_ESRGAN network: 64 channels, 23 RRDBs, growth 32
    assert sum(p.numel() for p in net.parameters()) == 16_697_987
    torch.manual_seed(0)
    block = ResidualDenseBlock(64, 32)
    conv = block.convs[2]
    kaiming_std = math.sqrt(2.0 / (conv.in_channels * 9))
    assert conv.weight.std().item() == pytest.approx(0.1 * kaiming_std, rel=0.05)  # Kaiming x 0.1
    x = torch.randn(1, 64, 4, 4)
    out, inner = block(x), None
    features = [x]
    for c in block.convs[:4]:
        features.append(F.leaky_relu(c(torch.cat(features, 1)), 0.2))
    inner = block.convs[4](torch.cat(features, 1))
    torch.testing.assert_close(out, x + 0.2 * inner)  # residual scaling 0.2


def test_vgg_style_discriminator_matches_basicsr_at_128_and_works_from_small_sizes():
    # BasicSR's VGGStyleDiscriminator(num_in_ch=3, num_feat=64) for 128x128 inputs: 14,499,401 parameters
    d = VGGStyleDiscriminator(3, 128, 64, down_kernel=4, dense_features=100)
    assert d.num_halvings == 5 and sum(p.numel() for p in d.parameters()) == 14_499_401
    for size, halvings in ((64, 4), (96, 4), (256, 6), (32, 3)):
        d = VGGStyleDiscriminator(3, size, 4, down_kernel=3, dense_features=8)
        logits, features = d(torch.randn(2, 3, size, size), return_features=True)
        assert logits.shape == (2, 1) and len(features) == halvings == d.num_halvings
    with pytest.raises(ValueError, match="at least 16x16"):
        VGGStyleDiscriminator(3, 8)


# ------------------------------------------------------------------------------------------------ perceptual loss
@pytest.fixture(scope="module")
def random_vgg19_file(tmp_path_factory) -> Path:
    """A randomly initialised VGG19 ``features`` state dict under torchvision's key names, saved like the real file."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    torch.save({f"features.{k}": v for k, v in vgg19_features("conv5_4").state_dict().items()}, path)
    return path


def test_vgg19_layers_are_torchvisions_and_named_as_in_the_papers():
    from torchvision.models.vgg import cfgs, make_layers

    theirs = make_layers(cfgs["E"]).state_dict()  # torchvision's vgg19().features
    ours = vgg19_features("relu5_4").state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items() if k in ours}
    assert VGG19_LAYERS.index("conv5_4") == 34 and VGG19_LAYERS.index("relu5_4") == 35  # ESRGAN, SRGAN's VGG54
    assert VGG19_LAYERS.index("relu2_2") == 8 and VGG19_LAYERS[-1] == "pool5"  # SRGAN's VGG22


def test_vgg_features_normalise_like_imagenet_and_stay_frozen(random_vgg19_file: Path):
    vgg = VGGFeatures("conv1_2", random_vgg19_file)
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(vgg(x), vgg.features(((x + 1) / 2 - mean) / std))
    assert not any(p.requires_grad for p in vgg.parameters())
    assert not vgg.train().training  # stays in eval mode


def test_vgg_weights_missing_or_wrong_is_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match=r"(?s)vgg19-dcbb9e9d.pth.*vgg_weights.*lambda_d_features.*lambda_ssim"):
        resolve_vgg_weights(None, "ESRGAN")
    with pytest.raises(FileNotFoundError, match="no such file"):
        resolve_vgg_weights(str(tmp_path / "nope.pth"))
    torch.save({"weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a torchvision VGG19 state dict"):
        VGGFeatures("conv5_4", tmp_path / "other.pth")
    # The model itself builds without the weights (a checkpoint loads offline); a fit fails at setup, before any step.
    model = _tiny("ESRGAN", lambda_vgg=1.0)
    with pytest.raises(FileNotFoundError, match="lambda_vgg > 0"):
        _trainer(tmp_path, max_steps=1).fit(model, DataLoader([sr_batch()()], batch_size=None))
    assert model.g_steps == 0


@pytest.mark.parametrize("name", ["SRGAN", "ESRGAN"])
def test_vgg_loss_trains_from_a_local_weights_file_and_stays_out_of_checkpoints(name, random_vgg19_file, tmp_path):
    model = _tiny(name, lambda_vgg=1.0, vgg_weights=str(random_vgg19_file), vgg_layer="conv2_2")
    trainer = _trainer(tmp_path, max_steps=2)
    trainer.fit(model, DataLoader([sr_batch()()], batch_size=None))
    assert model.g_steps == 1 and math.isfinite(float(trainer.callback_metrics["train/g_vgg"]))
    assert model.vgg is not None and not any(k.startswith(("_vgg", "vgg")) for k in model.state_dict())
    # the term is the chosen criterion between the features of SR and HR
    batch = sr_batch()()
    sr = model.generator(batch["input"])
    feats = model.vgg(sr), model.vgg(batch["target"])
    want = F.mse_loss(*feats) if name == "SRGAN" else F.l1_loss(*feats)
    torch.testing.assert_close(model.generator_losses(sr, batch["target"])["g_vgg"], want)


# ------------------------------------------------------------------------------------------------ the families
def test_srgan_loss_is_content_plus_1e3_adversarial_by_hand():
    model = _tiny("SRGAN")
    assert model.hparams.lambda_adv == 1e-3 and _default(SRGAN, "content").vgg_layer == "relu5_4"
    batch = sr_batch()()
    lr, hr = batch["input"], batch["target"]
    sr = model.generator(lr)
    losses = model.generator_losses(sr, hr)
    fake_logits, fake_feats = model.discriminator(sr, return_features=True)
    real_feats = model.discriminator(hr, return_features=True)[1]
    adv = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    dfeat = torch.stack([F.l1_loss(f, r) for f, r in zip(fake_feats, real_feats)]).mean()
    ssim_term = 1 - ssim((sr.clamp(-1, 1) + 1) / 2, (hr + 1) / 2).mean()
    torch.testing.assert_close(losses["g_loss"], F.mse_loss(sr, hr) + dfeat + ssim_term + 1e-3 * adv)
    d = model.discriminator_losses(sr, hr)
    real_logits, fake_logits = model.discriminator(hr), model.discriminator(sr.detach())
    want = F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    torch.testing.assert_close(d["d_loss"], want)


def test_esrgan_defaults_are_the_official_ones_and_its_loss_is_relativistic_by_hand():
    defaults = {name: p.default for name, p in inspect.signature(ESRGAN.__init__).parameters.items()}
    content = defaults["content"]
    assert (content.lambda_pixel, content.pixel_loss, content.lambda_vgg, defaults["lambda_adv"]) == (
        1e-2,
        "l1",
        1.0,
        5e-3,
    )
    assert content.vgg_layer == "conv5_4" and content.vgg_criterion == "l1" and defaults["ema_decay"] == 0.999
    assert defaults["betas"] == (0.9, 0.99) and defaults["lr_g"] == defaults["lr_d"] == 1e-4
    assert (defaults["num_blocks"], defaults["growth"], defaults["g_channels"]) == (23, 32, 64)
    model = _tiny("ESRGAN", lambda_d_features=0.0, lambda_ssim=0.0, lambda_vgg=0.0)
    batch = sr_batch()()
    lr, hr = batch["input"], batch["target"]
    sr = model.generator(lr)
    real, fake = model.discriminator(hr).detach(), model.discriminator(sr)
    bce = F.binary_cross_entropy_with_logits
    g_ra = 0.5 * (bce(real - fake.mean(), torch.zeros_like(real)) + bce(fake - real.mean(), torch.ones_like(fake)))
    losses = model.generator_losses(sr, hr)
    torch.testing.assert_close(losses["g_loss"], 1e-2 * F.l1_loss(sr, hr) + 5e-3 * g_ra)
    fake = model.discriminator(sr.detach())
    real = model.discriminator(hr)
    d_ra = 0.5 * (bce(real - fake.mean(), torch.ones_like(real)) + bce(fake - real.mean(), torch.zeros_like(fake)))
    torch.testing.assert_close(model.discriminator_losses(sr, hr)["d_loss"], d_ra)
    # relativistic: false is the standard GAN (the paper's ablation)
    standard = _tiny("ESRGAN", relativistic=False)
    logits = standard.discriminator(sr.detach())
    torch.testing.assert_close(
        standard.generator_losses(sr, hr)["g_adv"], bce(standard.discriminator(sr), torch.ones_like(logits))
    )


def test_bad_options_fail_at_construction_naming_the_fix():
    with pytest.raises(ValueError, match="every term of G's loss is off"):
        _tiny("SRGAN", lambda_adv=0.0, lambda_pixel=0.0, lambda_d_features=0.0, lambda_ssim=0.0)
    with pytest.raises(ValueError, match="lambda_ssim must be 0"):
        _tiny("ESRGAN", lambda_ssim=-1.0)
    with pytest.raises(ValueError, match="multiples of scale=3"):
        _tiny("SRResNet", scale=3)  # 32 is not a multiple of 3
    with pytest.raises(ValueError, match="unknown pixel_loss"):
        _tiny("SRResNet", pixel_loss="l3")


def test_setup_refuses_a_datamodule_of_another_scale(tmp_path: Path):
    _write_images(tmp_path / "hr", {f"{i}.png": (24, 24) for i in range(4)})
    dm = SuperResolutionDataModule(
        data_dir=str(tmp_path), train_dir="hr", val_dir=None, val_fraction=0.5, scale=3, hr_size=24, batch_size=2
    )
    model = SRResNet(image_shape=dm.image_shape, scale=4, g_channels=4, num_blocks=1)
    with pytest.raises(ValueError, match=r"x4 but the datamodule makes x3.*scale: 3"):
        _trainer(tmp_path, max_steps=1).fit(model, datamodule=dm)


def _srresnet_checkpoint(root: Path, **overrides) -> tuple[Path, SRResNet]:
    model = _tiny("SRResNet", **overrides)
    trainer = _trainer(root, max_steps=1)
    trainer.fit(model, DataLoader([sr_batch()()], batch_size=None))
    path = root / "srresnet.ckpt"
    trainer.save_checkpoint(path)
    return path, model


def test_srgan_starts_from_an_srresnet_checkpoint_and_refuses_others(tmp_path: Path):
    path, srresnet = _srresnet_checkpoint(tmp_path, ema_decay=0.5)
    seen = {}

    class Peek(L.Callback):
        def on_train_start(self, trainer, pl_module):
            seen.update({k: v.clone() for k, v in pl_module.generator.state_dict().items()})

    srgan = _tiny("SRGAN", init_from=str(path))
    _trainer(tmp_path, max_steps=2, callbacks=[Peek()]).fit(srgan, DataLoader([sr_batch()()], batch_size=None))
    for key, value in srresnet.generator_ema.module.state_dict().items():  # the EMA network its validation scored
        assert torch.equal(seen[key], value), key
    assert srgan.g_steps == 1  # and then it trained

    def fit(model):
        _trainer(tmp_path, max_steps=2).fit(model, DataLoader([sr_batch()()], batch_size=None))

    with pytest.raises(FileNotFoundError, match="init_from.*no such checkpoint.*SRResNet or SRGAN"):
        fit(_tiny("SRGAN", init_from=str(tmp_path / "missing.ckpt")))
    esrgan_ckpt = tmp_path / "esrgan.ckpt"
    trainer = _trainer(tmp_path, max_steps=2)
    trainer.fit(_tiny("ESRGAN"), DataLoader([sr_batch()()], batch_size=None))
    trainer.save_checkpoint(esrgan_ckpt)
    with pytest.raises(CheckpointMismatchError, match="holds a ESRGAN.*SRResNet or SRGAN"):
        fit(_tiny("SRGAN", init_from=str(esrgan_ckpt)))
    with pytest.raises(CheckpointMismatchError, match=r"does not fit.*channels=4 \(here 8\)"):
        fit(_tiny("SRGAN", init_from=str(path), g_channels=8))


def test_a_resumed_srgan_keeps_its_own_weights_not_init_from(tmp_path: Path):
    path, _ = _srresnet_checkpoint(tmp_path)
    from lightning.pytorch.callbacks import ModelCheckpoint

    ckpt_dir = tmp_path / "ckpt"
    model = _tiny("SRGAN", init_from=str(path))
    data = DataLoader([sr_batch()()], batch_size=None)
    _trainer(
        tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[ModelCheckpoint(dirpath=ckpt_dir, save_last=True)]
    ).fit(model, data)
    path.unlink()  # init_from is gone: a resumed fit must not need it
    resumed = _tiny("SRGAN", init_from=str(path))
    _trainer(tmp_path, max_epochs=3).fit(resumed, data, ckpt_path=str(ckpt_dir / "last.ckpt"))
    assert resumed.g_steps == 3


def test_tiled_upscaling_equals_whole_image_upscaling_and_keeps_exact_sizes():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 12, 3, padding=1), nn.ReLU(), nn.Conv2d(12, 48, 3, padding=1), nn.PixelShuffle(4)
    ).eval()  # receptive field: 2 LR pixels each side
    x = torch.rand(2, 3, 37, 23) * 2 - 1
    whole = upscale(net, x, 4)
    tiled = upscale(net, x, 4, tile_size=8, tile_overlap=2)
    assert tiled.shape == (2, 3, 148, 92)
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)
    assert not torch.allclose(upscale(net, x, 4, tile_size=8, tile_overlap=0), whole, atol=1e-3)  # seams without it
    net.train()
    upscale(net, x, 4, tile_size=8)
    assert net.training  # left as it was


def test_predict_upscales_a_folder_of_any_size_to_exactly_scale_times_and_never_overwrites(tmp_path: Path):
    sizes = {"a.jpg": (13, 9), "b.png": (8, 8), "big.png": (40, 21)}  # big: tiled at tile_size 16
    _write_images(tmp_path / "lr", sizes)
    _write_images(tmp_path / "hr", {f"{i}.png": (32, 32) for i in range(4)})
    dm = SuperResolutionDataModule(
        data_dir=str(tmp_path),
        train_dir="hr",
        val_dir=None,
        val_fraction=0.5,
        hr_size=32,
        predict_dir="lr",
        batch_size=2,
    )
    model = _tiny("SRResNet", tiling={"size": 16})
    out = tmp_path / "predictions"
    writer = ImageWriter(output_dir=str(out))
    _trainer(tmp_path, callbacks=[writer]).predict(model, datamodule=dm, return_predictions=False)
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a.png", "b.png", "big.png"]  # PNGs named like their inputs, no grid of mixed sizes
    for name, (h, w) in sizes.items():
        with Image.open(out / f"{Path(name).stem}.png") as img:
            assert img.size == (4 * w, 4 * h)
    with pytest.raises(FileExistsError, match="already holds files"):
        _trainer(tmp_path, callbacks=[ImageWriter(output_dir=str(out))]).predict(model, datamodule=dm)


def test_validation_logs_psnr_ssim_of_the_model_and_of_bicubic_and_a_four_row_grid(tmp_path: Path):
    _write_images(tmp_path / "hr", {f"{i}.png": (40, 36) for i in range(6)})
    dm = SuperResolutionDataModule(
        data_dir=str(tmp_path), train_dir="hr", val_dir=None, val_fraction=0.5, hr_size=32, batch_size=2
    )
    model = _tiny("SRResNet")
    results = _trainer(tmp_path, limit_val_batches=None).validate(model, datamodule=dm, verbose=False)[0]
    lr = torch.stack([dm.datasets["val"][i]["input"] for i in range(3)])
    hr = torch.stack([dm.datasets["val"][i]["target"] for i in range(3)])
    bicubic = sr_scores(interpolated(lr, 4), hr, 4)
    assert results["val/psnr_y_bicubic"] == pytest.approx(bicubic["psnr_y"].mean().item(), rel=1e-5)
    assert results["val/ssim_bicubic"] == pytest.approx(bicubic["ssim"].mean().item(), rel=1e-5)
    assert {"val/psnr_y", "val/ssim_y", "val/psnr", "val/ssim"} <= set(results)
    grid = model.grid_images()
    assert grid.shape == (4 * 2, 3, 32, 32)  # LR | bicubic | SR | HR rows of num_grid_samples=2
    torch.testing.assert_close(grid[6:8], hr[:2], atol=1 / 127.5, rtol=0)  # the HR row: validation images (uint8)


@pytest.mark.parametrize("name", ["SRResNet", "SRGAN", "ESRGAN"])
def test_a_bf16_autocast_step_on_cpu_is_finite(name: str, tmp_path: Path):
    model = _tiny(name)
    trainer = _trainer(tmp_path, max_steps=1 if name == "SRResNet" else 2, precision="bf16-mixed")
    trainer.fit(model, DataLoader([sr_batch()()], batch_size=None))  # count_*_step stops on a non-finite loss
    assert model.g_steps == 1
    assert all(math.isfinite(float(v)) for k, v in trainer.callback_metrics.items() if k.startswith("train/"))
    assert all(p.isfinite().all() for p in model.parameters())


def test_evaluation_callback_scores_kid_of_the_sr_outputs(tmp_path: Path):
    from lightning_gans.callbacks.evaluation import EvaluationCallback

    _write_images(tmp_path / "hr", {f"{i}.png": (32, 32) for i in range(12)})
    dm = SuperResolutionDataModule(
        data_dir=str(tmp_path), train_dir="hr", val_dir=None, val_fraction=0.5, hr_size=32, batch_size=4
    )
    callback = EvaluationCallback(
        source="translate",
        batch_keys={"inputs": "input", "images": "target"},
        feature_extractor={"name": "identity"},
        metrics=["kid"],
        metric_options={"kid_subset_size": 4},
        real_cache={"enabled": False},
    )
    results = _trainer(tmp_path, callbacks=[callback], limit_val_batches=None).validate(
        _tiny("ESRGAN"), datamodule=dm, verbose=False
    )[0]
    assert results["val/num_generated"] == results["val/num_real"] == 6 and math.isfinite(results["val/kid"])


# ------------------------------------------------------------------------------------------------ the datamodule
def test_pairs_are_bicubic_downscaled_patches_fixed_for_validation(tmp_path: Path):
    _write_images(tmp_path / "faces", {f"{i:02d}.jpg": (109, 89) for i in range(8)})
    dm = SuperResolutionDataModule(
        data_dir=str(tmp_path),
        train_dir="faces",
        val_dir=None,
        val_fraction=0.25,
        hr_size=64,
        load_size=64,
        batch_size=4,
    )
    assert dm.image_shape == (3, 64, 64) and dm.scale == 4 and dm.num_classes == 0
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 6 and len(dm.datasets["val"]) == 2
    assert not set(dm.datasets["train"].hr_files) & set(dm.datasets["val"].hr_files)
    item = dm.datasets["val"][0]
    assert item["input"].shape == (3, 16, 16) and item["target"].shape == (3, 64, 64)
    assert item["target"].min() >= -1 and item["target"].max() <= 1
    torch.testing.assert_close(dm.datasets["val"][0]["target"], item["target"])  # the same fixed crop every time
    with Image.open(dm.datasets["val"].hr_files[0]) as img:  # whole aligned face: centre square -> 64 -> LR by PIL
        hr = img.convert("RGB").crop((0, 10, 89, 99)).resize((64, 64), Image.BICUBIC)
    lr = np.asarray(hr.resize((16, 16), Image.BICUBIC))
    torch.testing.assert_close(item["input"], torch.from_numpy(lr.copy()).permute(2, 0, 1).float() / 127.5 - 1)
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (4, 3, 16, 16) and batch["target"].shape == (4, 3, 64, 64)


def test_training_patches_are_random_on_the_scale_grid_and_match_ready_lr_images(tmp_path: Path):
    """DIV2K's layout: HR/0001.png pairs with LR/0001x4.png; the LR patch is the HR patch's place / 4."""
    _write_images(tmp_path / "HR", {f"{i:04d}.png": (48, 40) for i in range(1, 4)})
    (tmp_path / "LR").mkdir()
    for f in sorted((tmp_path / "HR").iterdir()):
        with Image.open(f) as img:
            img.resize((10, 12), Image.BICUBIC).save(tmp_path / "LR" / f"{f.stem}x4.png")
    hr_files = sorted((tmp_path / "HR").iterdir())
    from datamodules.superres import lr_partners

    lr_files = lr_partners(hr_files, tmp_path / "LR", 4)
    data = SuperResolutionDataset(hr_files, lr_files, scale=4, hr_size=16, train=True, flip=False)
    torch.manual_seed(0)
    corners = set()
    for _ in range(12):
        item = data[0]
        hr = np.asarray(Image.open(hr_files[0]).convert("RGB"), dtype=np.float32) / 127.5 - 1
        lr = np.asarray(Image.open(lr_files[0]).convert("RGB"), dtype=np.float32) / 127.5 - 1
        target = item["target"].permute(1, 2, 0).numpy()
        found = [
            (top, left)
            for top in range(0, 48 - 16 + 1, 4)
            for left in range(0, 40 - 16 + 1, 4)
            if np.allclose(hr[top : top + 16, left : left + 16], target)
        ]
        assert len(found) == 1
        top, left = found[0]
        corners.add(found[0])
        lr_patch = lr[top // 4 : top // 4 + 4, left // 4 : left // 4 + 4]
        np.testing.assert_allclose(item["input"].permute(1, 2, 0).numpy(), lr_patch)
    assert len(corners) > 3  # random positions


def test_datamodule_errors_name_the_problem_and_the_fix(tmp_path: Path):
    with pytest.raises(ValueError, match=r"hr_size 30 is not a multiple of scale 4.*28 or 32"):
        SuperResolutionDataModule(hr_size=30)
    with pytest.raises(ValueError, match="scale must be 2, 3 or 4"):
        SuperResolutionDataModule(scale=8)
    with pytest.raises(ValueError, match="load_size resizes"):
        SuperResolutionDataModule(load_size=128, train_lr_dir="lr")
    with pytest.raises(DatasetNotFoundError, match=r"(?s)The train images not found.*nothing.*train_dir"):
        SuperResolutionDataModule(data_dir=str(tmp_path), train_dir="nothing").setup("fit")
    _write_images(tmp_path / "small", {"a.png": (20, 20), "b.png": (20, 20)})
    dm = SuperResolutionDataModule(
        data_dir=str(tmp_path), train_dir="small", val_dir=None, val_fraction=0.5, hr_size=32
    )
    dm.setup("fit")
    with pytest.raises(DatasetNotFoundError, match="smaller than hr_size=32"):
        dm.datasets["val"][0]
    (tmp_path / "lr").mkdir()
    Image.new("RGB", (6, 6)).save(tmp_path / "lr" / "ax4.png")
    with pytest.raises(DatasetNotFoundError, match=r"HR images have no LR image.*'b.png'"):
        SuperResolutionDataModule(
            data_dir=str(tmp_path), train_dir="small", val_dir=None, val_fraction=0.5, train_lr_dir="lr", hr_size=16
        ).setup("fit")
    Image.new("RGB", (6, 6)).save(tmp_path / "lr" / "bx4.png")
    with pytest.raises(DatasetNotFoundError, match="must be 5x5"):
        SuperResolutionDataModule(
            data_dir=str(tmp_path), train_dir="small", val_dir=None, val_fraction=0.5, train_lr_dir="lr", hr_size=16
        ).setup("fit")


# ------------------------------------------------------------------------------------------------ the benchmark
def test_superres_table_scores_baselines_and_checkpoints_on_the_configs_validation_split(tmp_path: Path):
    """benchmarks/superres_table.py: the bicubic row is sr_scores of bicubic upscaling, a checkpoint's row is that of
    its translate, on the validation split of the config's datamodule; the table, KID and the figure are written."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import superres_table as st

    _write_images(tmp_path / "hr", {f"{i}.png": (32, 32) for i in range(8)})
    config = tmp_path / "sr.yaml"
    config.write_text(
        "data:\n  class_path: datamodules.superres.SuperResolutionDataModule\n  init_args:\n"
        f"    data_dir: {tmp_path}\n    train_dir: hr\n    val_dir: null\n    val_fraction: 0.5\n"
        "    hr_size: 32\n    num_workers: 4\n"
    )
    model = _tiny("SRResNet")
    trainer = _trainer(tmp_path, max_steps=1)
    trainer.fit(model, DataLoader([sr_batch()()], batch_size=None))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    out, fig = tmp_path / "table.md", tmp_path / "fig.png"
    report = st.main(
        [
            "--config",
            str(config),
            "--data_dir",
            str(tmp_path),
            "--ckpt",
            f"tiny={tmp_path / 'm.ckpt'}",
            "--extractor",
            "identity",
            "--kid_subset_size",
            "2",
            "--out",
            str(out),
            "--figure",
            str(fig),
            "--figure_images",
            "2",
        ]
    )
    lr, hr, _ = st.validation_pairs(st.datamodule_from_config(str(config)))
    rows = {line.split("|")[1].strip(): line.split("|")[2:] for line in report.splitlines() if line.startswith("| ")}
    assert list(rows) == ["output", "nearest", "bicubic", "tiny (SRResNet)"]
    bicubic = sr_scores(interpolated(lr, 4), hr, 4)["psnr_y"].mean().item()
    assert float(rows["bicubic"][0]) == pytest.approx(bicubic, abs=0.006)
    tiny = sr_scores(model.translate(lr), hr, 4)["psnr_y"].mean().item()
    assert float(rows["tiny (SRResNet)"][0]) == pytest.approx(tiny, abs=0.006)
    assert "+-" in rows["bicubic"][4] and out.read_text().strip() == report.strip()
    with Image.open(fig) as img:  # 2 faces x (LR, bicubic, tiny, HR) under a header (one line of titles)
        assert img.size == (4 * 34 + 2, 2 * 34 + 2 + 15)


# ------------------------------------------------------------------------------------------------ real data (slow)
@pytest.mark.slow
def test_srresnet_beats_bicubic_on_real_faces_within_minutes(tmp_path: Path):
    """configs/srresnet_celeba.yaml's network and recipe, 200 steps (~3 minutes on one idle CPU thread): PSNR-Y on
    256 held-out faces rises more than 1 dB above bicubic upscaling (measured: +1.5 dB at 200 steps, +2.0 at 300)."""
    from tests.conftest import real_data_dir

    real_data_dir("celeba_small/img_align_celeba_89x109")
    L.seed_everything(0)
    dm = SuperResolutionDataModule(
        train_dir="celeba_small/img_align_celeba_89x109", val_dir=None, val_fraction=0.25, hr_size=64, load_size=64
    )
    model = SRResNet(image_shape=dm.image_shape, skip="bicubic", pixel_loss="l1", lr=2e-4)
    trainer = quiet_trainer(tmp_path, max_steps=200, val_check_interval=200, limit_val_batches=16)
    trainer.fit(model, datamodule=dm)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    assert metrics["val/psnr_y"] > metrics["val/psnr_y_bicubic"] + 1.0, metrics
    assert metrics["val/ssim_y"] > metrics["val/ssim_y_bicubic"], metrics
