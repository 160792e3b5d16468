"""Focused tests of the image-to-image families (Pix2Pix, CycleGAN, GauGAN): their losses against hand
computations, the image pool, the LR schedule and resume, predict files, size errors, and every config on real
facades (skipped without $LIGHTNING_GANS_DATA_DIR). Tiny shapes: the default run of this file takes seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from PIL import Image
from torch.utils.data import DataLoader

from lightning_gans.callbacks import ImageWriter
from lightning_gans.image2image import linear_decay, translate
from lightning_gans.models import CycleGAN, GauGAN, Pix2Pix
from lightning_gans.models.cyclegan import ImagePool
from lightning_gans.models.gaugan import discriminator_feature_matching, vgg_pyramid_loss
from lightning_gans.pairs import FixedPairs
from tests.conftest import quiet_trainer, real_data_dir
from tests.families import TINY, paired_batch, unpaired_batch

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _tiny(name: str, **overrides):
    torch.manual_seed(0)
    cls = {"Pix2Pix": Pix2Pix, "CycleGAN": CycleGAN, "GauGAN": GauGAN}[name]
    return cls(**{**TINY[name].kwargs, **overrides})


def _trainer(root: Path, **kwargs) -> L.Trainer:
    """The shared quiet trainer, without validation unless a test asks for it."""
    return quiet_trainer(root, **{"limit_val_batches": 0, **kwargs})


# ------------------------------------------------------------------------------------------------ Pix2Pix
def test_pix2pix_losses_are_the_official_ones_by_hand():
    model = _tiny("Pix2Pix")
    batch = paired_batch()()
    x, y = batch["input"], batch["target"]
    fake = model.generator(x)
    g = model.generator_losses(x, y, fake)
    fake_logits = model.discriminator(torch.cat([x, fake], 1))
    adv = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    l1 = (fake - y).abs().mean()
    assert model.lambda_l1 == 100.0
    torch.testing.assert_close(g["g_loss"], adv + 100.0 * l1)
    torch.testing.assert_close(g["g_l1"], l1)

    d = model.discriminator_losses(x, y, fake)
    real_logits = model.discriminator(torch.cat([x, y], 1))
    fake_logits = model.discriminator(torch.cat([x, fake.detach()], 1))
    bce_real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    bce_fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    torch.testing.assert_close(d["d_loss"], 0.5 * (bce_real + bce_fake))  # halved, as in the official code


def test_pix2pix_lambda_gan_zero_is_the_l1_ablation():
    """lambda_gan 0 (the paper's "L1" row): G's gradients are those of lambda_l1 * L1 alone, whatever D says."""
    model = _tiny("Pix2Pix", lambda_gan=0.0)
    batch = paired_batch()()
    x, y = batch["input"], batch["target"]
    torch.manual_seed(1)  # the same dropout masks in both passes
    fake = model.generator(x)
    losses = model.generator_losses(x, y, fake)
    assert losses["g_adv"].item() > 0  # still computed and logged
    torch.testing.assert_close(losses["g_loss"], 100.0 * (fake - y).abs().mean())
    grads = torch.autograd.grad(losses["g_loss"], list(model.generator.parameters()))
    with torch.no_grad():
        for p in model.discriminator.parameters():
            p.add_(torch.randn_like(p))
    torch.manual_seed(1)
    fake = model.generator(x)
    again = torch.autograd.grad(model.generator_losses(x, y, fake)["g_loss"], list(model.generator.parameters()))
    for a, b in zip(grads, again):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="both 0"):
        _tiny("Pix2Pix", lambda_gan=0.0, lambda_l1=0.0)
    with pytest.raises(ValueError, match="lambda_gan must be 0 or positive"):
        _tiny("Pix2Pix", lambda_gan=-1.0)


def test_pix2pix_discriminator_sees_the_input_concatenated(tmp_path: Path):
    model = _tiny("Pix2Pix")
    batch = paired_batch()()
    seen: list[torch.Tensor] = []
    model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    _trainer(tmp_path, max_epochs=1).fit(model, DataLoader([batch], batch_size=None))
    assert len(seen) == 3  # D step: fake pair, real pair; G step: fake pair
    for pair in seen:
        assert pair.shape[1] == 6
        torch.testing.assert_close(pair[:, :3], batch["input"])
    torch.testing.assert_close(seen[1][:, 3:], batch["target"])


def test_pix2pix_train_mode_sampling_is_deterministic_and_leaves_no_trace():
    model = _tiny("Pix2Pix")
    x = paired_batch(n=3)()["input"]
    stats = {k: v.clone() for k, v in model.generator.state_dict().items()}
    rng = torch.get_rng_state()
    a, b = model.translate(x), model.translate(x)
    torch.testing.assert_close(a, b)  # fixed dropout seed
    assert torch.equal(torch.get_rng_state(), rng)  # the training RNG stream is untouched
    for key, value in model.generator.state_dict().items():
        assert torch.equal(value, stats[key]), f"{key} changed"  # running statistics untouched
    # one image at a time, as in training at batch 1: an image's output does not depend on its batch mates
    torch.testing.assert_close(model.translate(x[:1]), a[:1])
    assert model.generator.training  # left as it was
    eval_out = translate(model.generator, x, mode="eval")
    assert not torch.allclose(eval_out, a)  # running statistics and no dropout give another image


def test_pix2pix_size_errors_name_the_size_and_the_fix():
    with pytest.raises(ValueError, match=r"48x48.*crop_size"):
        Pix2Pix(image_shape=(3, 48, 48), num_downs=5, g_channels=4, d_channels=4)
    assert Pix2Pix(image_shape=(3, 64, 64), g_channels=4, d_channels=4).generator.num_downs == 6
    # options of the noise families are not options of a translation family at all (not accepted, then refused)
    for option in ("n_critic", "latent_dim", "toolbox"):
        with pytest.raises(TypeError, match=option):
            Pix2Pix(image_shape=(3, 32, 32), g_channels=4, d_channels=4, **{option: 2})


def test_fixed_batch_prefers_validation_images_and_stores_them_exactly():
    fixed = FixedPairs(3, (3, 4, 4), (3, 4, 4))
    levels = torch.randint(0, 256, (5, 3, 4, 4)).float() / 127.5 - 1  # 8-bit images, as the datamodules make
    fixed.add(levels[:2], levels[:2], from_validation=False)
    assert fixed.get()[2] == 2 and int(fixed.source) == 2
    fixed.add(levels[2:4], levels[2:4], from_validation=True)  # validation replaces the training images
    fixed.add(levels[4:], levels[4:], from_validation=True)
    fixed.add(levels[:2], levels[:2], from_validation=False)  # ignored from now on
    inputs, targets, filled = fixed.get()
    assert filled == 3
    torch.testing.assert_close(inputs, levels[2:], rtol=0, atol=1e-6)
    one_hot = FixedPairs(2, (5, 4, 4), (3, 4, 4), one_hot_input=True)
    labels = torch.randint(5, (2, 4, 4))
    one_hot.add(F.one_hot(labels, 5).permute(0, 3, 1, 2).float(), levels[:2], from_validation=True)
    assert torch.equal(one_hot.get()[0].argmax(1), labels) and one_hot.inputs.dtype == torch.uint8


# ------------------------------------------------------------------------------------------------ CycleGAN
def test_image_pool_fills_then_returns_stored_images_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(4, (1, 1, 1))
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: everything is stored and returned
    history = set(range(4))
    from_pool = 0
    n = 2000
    for i in range(n):
        value = 100.0 + i
        out = float(pool.query(torch.full((1, 1, 1, 1), value)).item())
        if out != value:
            from_pool += 1
            assert out in history  # a stored image, returned once and replaced by the new one
            history.discard(out)
            history.add(value)
    assert abs(from_pool / n - 0.5) < 0.05, from_pool / n
    assert sorted(history) == sorted(float(v) for v in pool.images.flatten())
    assert torch.equal(ImagePool(0, (1, 1, 1)).query(first), first)


def test_cyclegan_losses_have_the_official_weights_by_hand():
    model = _tiny("CycleGAN")
    batch = unpaired_batch()()
    a, b = batch["A"], batch["B"]
    torch.manual_seed(1)
    g = model.generator_losses(a, b)
    fake_b, fake_a = model.generator_ab(a), model.generator_ba(b)
    rec_a, rec_b = model.generator_ba(fake_b), model.generator_ab(fake_a)
    d_b_fake, d_a_fake = model.discriminator_b(fake_b), model.discriminator_a(fake_a)
    official = (
        F.mse_loss(d_b_fake, torch.ones_like(d_b_fake))
        + F.mse_loss(d_a_fake, torch.ones_like(d_a_fake))
        + 10 * (rec_a - a).abs().mean()
        + 10 * (rec_b - b).abs().mean()
        + 0.5 * 10 * (model.generator_ab(b) - b).abs().mean()
        + 0.5 * 10 * (model.generator_ba(a) - a).abs().mean()
    )
    torch.testing.assert_close(g["g_loss"], official)

    d = model.discriminator_losses(a, b, fake_a, fake_b)
    real_b, real_a = model.discriminator_b(b), model.discriminator_a(a)
    d_b_fake, d_a_fake = model.discriminator_b(fake_b.detach()), model.discriminator_a(fake_a.detach())
    official_d = 0.5 * (F.mse_loss(real_b, torch.ones_like(real_b)) + F.mse_loss(d_b_fake, torch.zeros_like(d_b_fake)))
    official_d += 0.5 * (F.mse_loss(real_a, torch.ones_like(real_a)) + F.mse_loss(d_a_fake, torch.zeros_like(d_a_fake)))
    torch.testing.assert_close(d["d_loss"], official_d)


def test_linear_decay_matches_the_official_rule():
    factor = linear_decay(100, 100)
    assert [factor(e) for e in (0, 99)] == [1.0, 1.0]
    assert factor(100) == pytest.approx(1 - 1 / 101) and factor(199) == pytest.approx(1 / 101)
    assert factor(250) == 0.0
    assert linear_decay(50, 0)(500) == 1.0  # SPADE's niter_decay=0: no decay, however long the run


class _LRRecorder(L.Callback):
    def __init__(self):
        self.lrs: dict[int, tuple[float, float]] = {}
        self.pools: dict[int, tuple[torch.Tensor, int]] = {}

    def on_train_epoch_start(self, trainer, pl_module):
        opt_g, opt_d = pl_module.optimizers()
        self.lrs[trainer.current_epoch] = (opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"])
        self.pools[trainer.current_epoch] = (pl_module.pool_a.images.clone(), int(pl_module.pool_a.num_images))


def test_cyclegan_lr_is_constant_then_linear_and_resumes_with_pools(tmp_path: Path):
    """LR at each epoch of 2 + 3 epochs; a run stopped after 3 epochs and resumed from its checkpoint sees the same
    learning rates, the same image pools and ends with the same weights as an uninterrupted run."""
    kwargs = dict(n_epochs=2, n_epochs_decay=3, pool_size=3)
    data = DataLoader([unpaired_batch()() for _ in range(2)], batch_size=None)

    L.seed_everything(0)
    straight, rec = _tiny("CycleGAN", **kwargs), _LRRecorder()
    _trainer(tmp_path / "a", max_epochs=5, callbacks=[rec]).fit(straight, data)
    expected = [1.0, 1.0, 0.75, 0.5, 0.25]
    assert [rec.lrs[e][0] / 2e-4 for e in range(5)] == pytest.approx(expected)
    assert [rec.lrs[e][1] / 2e-4 for e in range(5)] == pytest.approx(expected)

    L.seed_everything(0)
    first = _tiny("CycleGAN", **kwargs)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    _trainer(tmp_path / "b", max_epochs=3, enable_checkpointing=True, callbacks=[ckpt]).fit(first, data)
    L.seed_everything(123)  # the checkpoint's RNG state must win
    resumed, rec2 = _tiny("CycleGAN", **kwargs), _LRRecorder()
    _trainer(tmp_path / "c", max_epochs=5, callbacks=[rec2]).fit(
        resumed, data, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
    )
    for epoch in (3, 4):
        assert rec2.lrs[epoch] == pytest.approx(rec.lrs[epoch])
        assert rec2.pools[epoch][1] == rec.pools[epoch][1] == 3
        assert torch.equal(rec2.pools[epoch][0], rec.pools[epoch][0])
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, msg=key)


def test_cyclegan_pools_are_in_the_checkpoint(tmp_path: Path):
    model = _tiny("CycleGAN")
    trainer = _trainer(tmp_path, max_epochs=1)
    trainer.fit(model, DataLoader([unpaired_batch()()], batch_size=None))
    assert int(model.pool_a.num_images) == 2 and model.pool_b.images.abs().sum() > 0
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = CycleGAN.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    assert int(loaded.pool_a.num_images) == 2
    assert torch.equal(loaded.pool_a.images, model.pool_a.images) and torch.equal(
        loaded.pool_b.images, model.pool_b.images
    )


def test_cyclegan_grid_has_six_rows():
    model = _tiny("CycleGAN")
    batch = unpaired_batch(n=3)()
    model.fixed_batch.add(batch["A"], batch["B"], from_validation=True)
    grid = model.grid_images()
    assert grid.shape == (6 * 8, 3, 32, 32)
    torch.testing.assert_close(grid[:3], batch["A"], rtol=0, atol=1 / 127.5)
    assert torch.equal(grid[3:8], torch.full_like(grid[3:8], -1.0))  # unfilled slots are black tiles
    torch.testing.assert_close(grid[8:11], model.translate(grid[:3], "AtoB"))


# ------------------------------------------------------------------------------------------------ GauGAN
def test_feature_matching_against_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    real = [
        [
            torch.randn(2, 3, 4, 4, generator=g),
            torch.randn(2, 5, 2, 2, generator=g),
            torch.randn(2, 1, 2, 2, generator=g),
        ]
        for _ in range(2)
    ]
    fake = [[torch.randn_like(t).requires_grad_() for t in scale] for scale in real]
    for scale in real:
        for t in scale:
            t.requires_grad_()
    loss = discriminator_feature_matching(real, fake)
    by_hand = sum((f - r).abs().mean() for rs, fs in zip(real, fake) for r, f in zip(rs[:-1], fs[:-1])) / 2
    torch.testing.assert_close(loss, by_hand)
    loss.backward()
    assert all(t.grad is None for scale in real for t in scale)  # the real features are targets only
    assert all(scale[-1].grad is None for scale in fake)  # the logits are not matched
    assert fake[0][0].grad is not None


def test_gaugan_hinge_and_feature_matching_by_hand():
    model = _tiny("GauGAN")
    batch = paired_batch(num_classes=4)()
    s, y = batch["input"], batch["target"]
    fake = model.generator(s)
    g = model.generator_losses(s, y, fake)
    outputs = model.discriminator(torch.cat([torch.cat([s, fake], 1), torch.cat([s, y], 1)], 0))
    fake_out = [[t[:2] for t in scale] for scale in outputs]
    real_out = [[t[2:] for t in scale] for scale in outputs]
    adv = sum(-f[-1].mean() for f in fake_out) / 2
    fm = sum((f - r).abs().mean() for rs, fs in zip(real_out, fake_out) for r, f in zip(rs[:-1], fs[:-1])) / 2
    torch.testing.assert_close(g["g_loss"], adv + 10.0 * fm, rtol=1e-4, atol=1e-5)

    d = model.discriminator_losses(s, y, fake)
    outputs = model.discriminator(torch.cat([torch.cat([s, fake.detach()], 1), torch.cat([s, y], 1)], 0))
    d_fake = sum(F.relu(1 + scale[-1][:2]).mean() for scale in outputs) / 2
    d_real = sum(F.relu(1 - scale[-1][2:]).mean() for scale in outputs) / 2
    torch.testing.assert_close(d["d_loss"], d_fake + d_real, rtol=1e-4, atol=1e-5)


def test_gaugan_defaults_and_errors(monkeypatch, tmp_path: Path):
    model = _tiny("GauGAN")
    assert (model.hparams.lr_g, model.hparams.lr_d, tuple(model.hparams.betas)) == (1e-4, 4e-4, (0.0, 0.9))
    assert model.lambda_d_features == 10.0
    assert model.lambda_vgg == 0.0 and model.generator_mode == "eval"
    with pytest.raises(ValueError, match="label_palette"):
        GauGAN(image_shape=(3, 32, 32), g_channels=2, spade_hidden=8)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    with pytest.raises(FileNotFoundError, match=r"VGG19.*IMAGENET1K_V1.*lambda_vgg: 0"):
        GauGAN(**{**TINY["GauGAN"].kwargs, "lambda_vgg": 10.0})
    with pytest.raises(FileNotFoundError, match="no such file"):
        GauGAN(**{**TINY["GauGAN"].kwargs, "lambda_vgg": 10.0, "vgg_weights": str(tmp_path / "nope.pth")})


def test_gaugan_vgg_loss_is_the_official_pyramid_and_loads_at_fit_setup(tmp_path: Path):
    """relu1_1..relu5_1 of torchvision's VGG19 on [-1, 1] images, weights 1/32..1, through perceptual.py's loader,
    which GauGAN uses at the setup of a fit (a checkpoint trained with it needs no weights to load)."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    net = vgg19(weights=None)
    weights = tmp_path / "vgg19-random.pth"
    torch.save(net.state_dict(), weights)
    model = GauGAN(**{**TINY["GauGAN"].kwargs, "lambda_vgg": 10.0, "vgg_weights": str(weights)})
    assert model._vgg == []  # not at construction
    model.setup("validate")
    assert model._vgg == []
    model.setup("fit")
    fake, real = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    expected, x, y, start = 0.0, fake, real, 0
    for end, weight in zip((2, 7, 12, 21, 30), (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)):  # the official slices
        x, y = net.features[start:end](x), net.features[start:end](y)
        expected, start = expected + weight * F.l1_loss(x, y), end
    got = vgg_pyramid_loss(model._vgg[0], fake, real)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ predict files
def _write_images(folder: Path, sizes: dict[str, tuple[int, int]], palette: np.ndarray | None = None) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, (h, w) in sizes.items():
        if palette is None:
            array = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        else:
            array = palette[rng.integers(0, len(palette), (h, w))].astype(np.uint8)
        Image.fromarray(array).save(folder / name)


@pytest.mark.parametrize("name", ["Pix2Pix", "CycleGAN", "GauGAN"])
def test_predict_writes_one_file_per_input_named_like_it_at_its_size(name: str, tmp_path: Path):
    paired = pytest.importorskip("datamodules.paired")
    unpaired = pytest.importorskip("datamodules.unpaired")
    sizes = {"a.jpg": (40, 50), "b.png": (32, 32), "c.jpg": (24, 60)}
    palette = np.asarray(paired.FACADES_PALETTE) if name == "GauGAN" else None
    _write_images(tmp_path / "inputs", sizes, palette)
    common = dict(data_dir=str(tmp_path), predict_dir=str(tmp_path / "inputs"), crop_size=32, load_size=32)
    if name == "CycleGAN":
        dm, folder = unpaired.UnpairedImageDataModule(**common, predict_direction="BtoA"), "BtoA/"
        model = _tiny(name)
    elif name == "GauGAN":
        dm, folder = paired.PairedImageDataModule(**common, label_palette="facades"), ""
        model = _tiny(name, num_classes=dm.num_classes)
    else:
        dm, folder = paired.PairedImageDataModule(**common), ""
        model = _tiny(name)
    out = tmp_path / "predictions"
    _trainer(tmp_path, callbacks=[ImageWriter(output_dir=str(out))]).predict(
        model, datamodule=dm, return_predictions=False
    )
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == [f"{folder}{Path(n).stem}.png" for n in sorted(sizes)]
    for n, (h, w) in sizes.items():
        with Image.open(out / f"{folder}{Path(n).stem}.png") as img:
            assert img.size == (w, h)


# ------------------------------------------------------------------------------------------------ FID of translations
@pytest.mark.parametrize("name", ["Pix2Pix", "CycleGAN"])
def test_evaluation_callback_scores_the_translations_of_the_validation_inputs(name: str, tmp_path: Path):
    """EvaluationCallback(source="translate"): the generated set is translate(batch[batch_keys.inputs]), one output
    per validation input, compared with batch[batch_keys.images]; a translation model with source="sample" fails at
    setup."""
    from datamodules.paired import PairedImageDataModule
    from datamodules.unpaired import UnpairedImageDataModule
    from lightning_gans.callbacks.evaluation import EvaluationCallback

    sizes, data = {f"{i}.png": (32, 32) for i in range(6)}, tmp_path / "data"
    if name == "CycleGAN":
        for folder in ("trainA", "trainB", "testA", "testB"):
            _write_images(data / folder, sizes)
        dm = UnpairedImageDataModule(data_dir=str(data), crop_size=32, load_size=32, batch_size=4, num_workers=0)
        keys = dict(inputs="A", images="B")
    else:
        for split in ("train", "val", "test"):
            _write_images(data / split, {n: (32, 64) for n in sizes})
        dm = PairedImageDataModule(data_dir=str(data), crop_size=32, load_size=32, batch_size=4, num_workers=0)
        keys = dict(inputs="input", images="target")
    model = _tiny(name)
    seen: list[torch.Tensor] = []
    translate_fn = model.translate
    model.translate = lambda x, *a: seen.append(x) or translate_fn(x, *a)  # type: ignore[method-assign]
    callback = EvaluationCallback(
        source="translate",
        batch_keys=keys,
        feature_extractor={"name": "identity"},
        metrics=["kid"],
        metric_options={"kid_subset_size": 4},
        real_cache={"enabled": False},
    )
    results = _trainer(tmp_path, callbacks=[callback], limit_val_batches=None).validate(
        model, datamodule=dm, verbose=False
    )[0]
    assert results["val/num_generated"] == results["val/num_real"] == 6
    assert math.isfinite(results["val/kid"])
    assert all(isinstance(x, torch.Tensor) and x.shape[1:] == (3, 32, 32) for x in seen)  # inputs, not batches

    sampling = EvaluationCallback(
        feature_extractor={"name": "identity"}, metrics=["kid"], real_cache={"enabled": False}
    )
    with pytest.raises(ValueError, match="source: translate"):
        _trainer(tmp_path, callbacks=[sampling]).validate(_tiny(name), datamodule=dm, verbose=False)


def test_fid_on_too_small_a_validation_set_fails_before_training(tmp_path: Path):
    """100 facades photos cannot give a 2048-feature FID: say so at setup, not after the first epoch."""
    from datamodules.paired import PairedImageDataModule
    from lightning_gans.callbacks.evaluation import EvaluationCallback

    for split in ("train", "val"):
        _write_images(tmp_path / "data" / split, {f"{i}.png": (32, 64) for i in range(6)})
    dm = PairedImageDataModule(data_dir=str(tmp_path / "data"), crop_size=32, load_size=32, num_workers=0)
    model = _tiny("Pix2Pix")
    callback = EvaluationCallback(
        source="translate",
        batch_keys={"inputs": "input", "images": "target"},
        feature_extractor={"name": "identity"},
        metrics=["fid", "kid"],
        real_cache={"enabled": False},
    )
    with pytest.raises(ValueError, match=r"real images \(validation set\)=6 is below the feature dimension 3072"):
        _trainer(tmp_path, max_steps=1, callbacks=[callback], limit_val_batches=1.0).fit(model, datamodule=dm)
    assert model.g_steps == 0


# ------------------------------------------------------------------------------------------------ real data (slow)
@pytest.mark.slow
def test_pix2pix_learns_facades_on_cpu(tmp_path: Path):
    """A few minutes of pix2pix on facades at 64x64: validation L1 falls clearly below the input's own L1."""
    real_data_dir("facades")
    from datamodules.paired import PairedImageDataModule

    L.seed_everything(0)
    dm = PairedImageDataModule(crop_size=64, load_size=72, batch_size=1)
    model = Pix2Pix(image_shape=dm.image_shape, g_channels=32, d_channels=32, n_epochs=3, n_epochs_decay=0)
    trainer = _trainer(tmp_path, max_epochs=3, limit_val_batches=1.0)
    trainer.fit(model, datamodule=dm)
    metrics = trainer.callback_metrics
    assert metrics["val/l1"] < 0.8 * metrics["val/l1_input"], {k: float(v) for k, v in metrics.items()}
