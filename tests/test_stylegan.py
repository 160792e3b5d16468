"""What makes StyleGAN StyleGAN (tiny shapes, CPU): equalised LR, demodulation, AdaIN, noise, style mixing,
truncation and w_avg, lazy R1 and path length, the EMA half-life, grids, interpolation, projection, bf16.

The exact resume (tests/test_resume.py), the contract (tests/test_contract.py) and 2-process DDP
(tests/test_ddp.py) run StyleGAN with the other families.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lightning_gans.callbacks import ImageWriter, SampleGrid
from lightning_gans.cli import GANCLI
from lightning_gans.models import StyleGAN
from lightning_gans.models.stylegan import ema_beta
from lightning_gans.networks.stylegan import (
    AdaINLayer,
    EqualConv2d,
    EqualLinear,
    StyleDiscriminator,
    StyleGenerator,
    conv2d_resample,
    modulated_conv2d,
    modulated_weight,
)
from lightning_gans.projection import project
from tests.conftest import quiet_trainer
from tests.families import TINY, image_batch
from tests.test_cli import tiny_mnist  # noqa: F401  (the fixture: a fake MNIST in torchvision's layout)

SHAPE = (3, 16, 16)


def tiny_generator(style_block: str = "modulated", **kwargs) -> StyleGenerator:
    torch.manual_seed(0)
    return StyleGenerator(
        8, SHAPE, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8, style_block=style_block, **kwargs
    )


def tiny_model(**kwargs) -> StyleGAN:
    torch.manual_seed(0)
    return StyleGAN(**{**TINY["StyleGAN"].kwargs, **kwargs})


def fit_batches(model: StyleGAN, root: Path, batches: int, n: int = 8, **trainer_kwargs):
    data = [image_batch(model.image_shape, n=n)() for _ in range(batches)]
    trainer = quiet_trainer(root, max_epochs=1, limit_val_batches=0, **trainer_kwargs)
    trainer.fit(model, DataLoader(data, batch_size=None))
    return trainer


# ---------------------------------------------------------------------------------------------- the networks
@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equalised_lr_stores_unit_weights_and_scales_them_at_run_time(lr_mul: float):
    torch.manual_seed(0)
    layer = EqualLinear(256, 64, bias_init=0.5, lr_mul=lr_mul)
    # stored as N(0, 1) / lr_mul, used as stored * lr_mul / sqrt(fan_in); the bias as stored * lr_mul
    assert layer.weight.std().item() == pytest.approx(1 / lr_mul, rel=0.05)
    x = torch.randn(4, 256)
    expected = F.linear(x, layer.weight * lr_mul / 16, torch.full((64,), 0.5 * lr_mul))
    torch.testing.assert_close(layer(x), expected)
    # The gradient step in stored units is lr_mul / sqrt(fan_in) in used units: Adam's first step moves every stored
    # weight by its lr, so every used weight moves by lr * lr_mul / sqrt(fan_in), whatever the fan-in.
    used = layer.weight.detach() * layer.weight_gain
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    layer(x).square().sum().backward()
    opt.step()
    moved = (layer.weight.detach() * layer.weight_gain - used).abs()  # (Adam's eps shortens the tiniest gradients')
    assert moved.median().item() == pytest.approx(0.1 * lr_mul / 16, rel=1e-3)
    assert moved.max().item() == pytest.approx(0.1 * lr_mul / 16, rel=1e-3)


def test_equalised_conv_scales_by_fan_in_and_the_mapping_uses_lr_mul_001():
    torch.manual_seed(0)
    conv = EqualConv2d(6, 5, 3, activation="lrelu")
    x = torch.randn(2, 6, 8, 8)
    expected = F.leaky_relu(F.conv2d(x, conv.weight / math.sqrt(6 * 9), conv.bias, padding=1), 0.2) * math.sqrt(2)
    torch.testing.assert_close(conv(x), expected)
    mapping = tiny_generator().mapping
    assert all(layer.weight_gain == pytest.approx(0.01 / math.sqrt(8)) for layer in mapping.layers)
    z = torch.randn(5, 8) * 7  # z is normalised by its second moment first: its scale does not matter
    torch.testing.assert_close(mapping.eval()(z), mapping(z / 7))


def test_resampling_keeps_sizes_and_blurs():
    torch.manual_seed(0)
    up = EqualConv2d(4, 4, 3, up=2)
    down = EqualConv2d(4, 4, 3, down=2)
    skip = EqualConv2d(4, 4, 1, bias=False, down=2)
    x = torch.randn(2, 4, 8, 8)
    assert up(x).shape == (2, 4, 16, 16) and down(x).shape == skip(x).shape == (2, 4, 4, 4)
    # a constant image stays constant inside after filtered up/downsampling (the filter sums to 1, up has gain 4)
    ones = torch.ones(1, 1, 8, 8)
    identity = torch.ones(1, 1, 1, 1)
    inner = conv2d_resample(ones, identity, up.resample_filter, down=2)[..., 1:-1, 1:-1]
    torch.testing.assert_close(inner, torch.ones_like(inner))


@pytest.mark.parametrize("up", [1, 2])
def test_demodulation_gives_unit_norm_weights_and_equals_the_grouped_convolution(up: int):
    torch.manual_seed(0)
    weight, styles, x = torch.randn(6, 4, 3, 3), torch.randn(3, 4) * 3, torch.randn(3, 4, 8, 8)
    w = modulated_weight(weight, styles)
    norms = w.square().sum(dim=(2, 3, 4)).sqrt()  # one per sample and output channel
    torch.testing.assert_close(norms, torch.ones(3, 6))
    f = EqualConv2d(1, 1, 3).resample_filter
    got = modulated_conv2d(x, weight, styles, up=up, resample_filter=f, padding=1)
    per_sample = torch.cat([conv2d_resample(x[i : i + 1], w[i], f, up=up, padding=1) for i in range(3)])
    torch.testing.assert_close(got, per_sample, rtol=1e-4, atol=1e-5)
    # without demodulation (ToRGB) the norms follow the styles
    plain = modulated_weight(weight, styles, demodulate=False)
    assert not torch.allclose(plain.square().sum((2, 3, 4)), torch.ones(3, 6))


def test_adain_normalises_each_channel_then_applies_the_style():
    torch.manual_seed(0)
    layer = AdaINLayer(4, 6, w_dim=8, resolution=8)
    with torch.no_grad():
        layer.style.weight.normal_(0, 3)
        layer.style.bias.normal_()
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 8)
    out = layer(x, w, noise_mode="none")
    scale, shift = layer.style(w).chunk(2, dim=1)
    torch.testing.assert_close(out.mean(dim=(2, 3)), shift, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.std(dim=(2, 3), unbiased=False), (1 + scale).abs(), rtol=1e-3, atol=1e-3)
    # the input's scale is normalised away (zero bias at initialisation)
    torch.testing.assert_close(layer(x * 9, w, noise_mode="none"), out, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("style_block", ["modulated", "adain"])
def test_zero_noise_strength_makes_the_output_independent_of_the_noise(style_block: str):
    g = tiny_generator(style_block).eval()
    z = torch.randn(3, 8)
    strengths = [m for n, m in g.named_parameters() if n.endswith("noise.strength")]
    assert strengths and all(bool((s == 0).all()) for s in strengths)  # zero at initialisation
    reference = g(z, noise_mode="none")
    for mode in ("random", "const", "random"):
        torch.testing.assert_close(g(z, noise_mode=mode), reference)
    with torch.no_grad():
        for s in strengths:
            s.fill_(0.5)
    assert not torch.allclose(g(z, noise_mode="random"), g(z, noise_mode="random"))
    torch.testing.assert_close(g(z, noise_mode="const"), g(z, noise_mode="const"))


@pytest.mark.parametrize("style_block", ["modulated", "adain"])
def test_style_mixing_changes_only_the_layers_after_the_cutoff(style_block: str):
    g = tiny_generator(style_block).train()
    z, mix_z = torch.randn(4, 8), torch.randn(4, 8)
    w_z, w_mix = g.mapping.eval()(z)[:, 0], g.mapping(mix_z)[:, 0]
    g.train()
    style_inputs = []  # every style affine's input, in the order the layers run
    names = ("affine",) if style_block == "modulated" else ("style",)
    hooks = [
        m.register_forward_pre_hook(lambda mod, args: style_inputs.append(args[0].detach()))
        for n, m in g.synthesis.named_modules()
        if n.rsplit(".", 1)[-1] in names
    ]
    layer_index = []  # which style input each affine reads (ToRGB shares the next block's first)
    start = 0
    for block in g.synthesis.blocks:
        layer_index += [start + i for i in range(block.num_conv)] + [start + block.num_conv] * block.num_torgb
        start += block.num_conv
    assert len(hooks) == len(layer_index) and max(layer_index) == g.num_ws - 1
    w_avg = g.w_avg.clone()
    cutoff = 3
    _, ws = g(z, mix_z=mix_z, mixing_cutoff=cutoff, return_ws=True)
    torch.testing.assert_close(ws[:, :cutoff], w_z[:, None].expand(-1, cutoff, -1))
    torch.testing.assert_close(ws[:, cutoff:], w_mix[:, None].expand(-1, g.num_ws - cutoff, -1))
    for index, w in zip(layer_index, style_inputs):
        torch.testing.assert_close(w, w_z if index < cutoff else w_mix)
    # w_avg moved towards the batch's own w only (decay 0.995), never towards the mixed-in w
    torch.testing.assert_close(g.w_avg, w_z.mean(0).lerp(w_avg, 0.995))
    for h in hooks:
        h.remove()


def test_w_avg_is_tracked_in_training_mode_only():
    g = tiny_generator()
    z = torch.randn(4, 8)
    g.eval()(z)
    assert bool((g.w_avg == 0).all())
    g.train()(z)
    assert not bool((g.w_avg == 0).all())


def test_truncation_psi_zero_gives_the_w_avg_image_for_every_z_and_the_cutoff_limits_it():
    model = tiny_model(ema_kimg=0)
    with torch.no_grad():
        model.generator.mapping.w_avg.normal_()
    z = torch.randn(4, model.latent_dim)
    images = model.sample(z=z, truncation_psi=0.0)
    w_avg_image = model.generator.eval().synthesis(model.generator.w_avg.expand(1, model.num_ws, -1), "const")
    for image in images:
        torch.testing.assert_close(image, w_avg_image[0].clamp(-1, 1))
    assert not torch.allclose(model.sample(z=z)[0], model.sample(z=z)[1])
    ws = model.generator.mapping(z, truncation_psi=0.0, truncation_cutoff=2)
    torch.testing.assert_close(ws[:, :2], model.generator.w_avg.expand(4, 2, -1))
    assert not torch.allclose(ws[:, 2:], model.generator.w_avg.expand(4, model.num_ws - 2, -1))
    # the model's own settings reach sample(), predict and evaluation
    truncated = tiny_model(ema_kimg=0, truncation_psi=0.0)
    truncated.load_state_dict(model.state_dict())
    torch.testing.assert_close(truncated.sample(z=z), images)


def test_discriminator_and_generator_build_for_powers_of_two_and_refuse_the_rest():
    for size in (8, 32):
        torch.manual_seed(0)
        d = StyleDiscriminator((3, size, size), channel_base=64, channel_max=8)
        assert d(torch.randn(4, 3, size, size)).shape == (4, 1)
    with pytest.raises(ValueError, match="power of two from 8"):
        StyleGenerator(8, (3, 28, 28))
    with pytest.raises(ValueError, match="power of two from 8"):
        StyleGAN(image_shape=(1, 4, 4))


# ------------------------------------------------------------------------------------------------- training
def test_lazy_regularisation_runs_on_the_right_steps_with_the_right_scale(tmp_path: Path):
    model = tiny_model(r1_interval=3, pl_interval=2, r1_gamma=4.0, ema_kimg=0)
    opt_g, opt_d = model.configure_optimizers()
    # Adam's lr and betas corrected for the extra steps: k / (k + 1)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(0.002 * 3 / 4)
    assert opt_d.param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** (3 / 4)))
    assert opt_g.param_groups[0]["lr"] == pytest.approx(0.002 * 2 / 3)

    logged: list[tuple[str, int, set[str]]] = []
    for hook, net in (("count_g_step", "G"), ("count_d_step", "D")):
        original = getattr(model, hook)

        def spy(_original=original, _net=net, **losses):
            logged.append((_net, getattr(model, f"{_net.lower()}_steps"), set(losses)))
            return _original(**losses)

        setattr(model, hook, spy)
    d_steps: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []  # (weights before, gradients) per D step

    class Spy(SampleGrid):  # records each D optimizer step (weights before it, the gradients it applies)
        def on_train_start(self, trainer, pl_module):
            opt = trainer.optimizers[1]
            step = opt.step

            def recorded(*args, **kwargs):
                d_steps.append(
                    (
                        [p.detach().clone() for p in pl_module.discriminator.parameters()],
                        [p.grad.clone() for p in pl_module.discriminator.parameters()],
                    )
                )
                return step(*args, **kwargs)

            opt.step = recorded

    batch = image_batch(model.image_shape, n=8)()
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[Spy(every_n_steps=0)])
    trainer.fit(model, DataLoader([batch] * 7, batch_size=None))

    r1_at = [step for net, step, names in logged if net == "D" and "r1_penalty" in names]
    pl_at = [step for net, step, names in logged if net == "G" and "pl_penalty" in names]
    assert r1_at == [0, 3, 6] and pl_at == [0, 2, 4, 6]  # counted before the step: D steps 0, 3, 6; G steps 0, 2, ...
    assert len(d_steps) == 7 + 3  # a main step per batch, a regularisation step on 3 of them
    # The R1 step's gradient is that of interval * gamma / 2 * |grad_x D(x)|^2 on the real batch.
    weights, grads = d_steps[1]  # the second D step: the R1 step after the first main step
    d = StyleDiscriminator(model.image_shape, 64, 8)
    with torch.no_grad():
        for p, w in zip(d.parameters(), weights):
            p.copy_(w)
    x = batch[0].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    loss = 3 * 4.0 / 2 * g.square().sum(dim=(1, 2, 3)).mean()
    expected = torch.autograd.grad(loss, list(d.parameters()), allow_unused=True)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, torch.zeros_like(got) if want is None else want, rtol=1e-4, atol=1e-6)
    assert model.pl_mean > 0 and model.images_seen == 7 * 8


def test_path_length_regularisation_is_refused_on_small_batches(tmp_path: Path):
    model = tiny_model()
    with pytest.raises(ValueError, match="pl_weight 0"):
        fit_batches(model, tmp_path, batches=1, n=6)
    assert model.g_steps == 0
    fit_batches(tiny_model(pl_weight=0.0), tmp_path, batches=1, n=2)  # off: any batch

    class SmallBatches(L.LightningDataModule):  # with a datamodule: at setup, before any loader is built
        batch_size = 6

        def train_dataloader(self):
            raise AssertionError("the batch size must be refused before the loader is built")

    with pytest.raises(ValueError, match="pl_weight 0"):
        quiet_trainer(tmp_path, max_steps=1).fit(tiny_model(), datamodule=SmallBatches())


def test_ema_half_life_in_images_with_ramp_up():
    # official: beta = 0.5 ** (batch / ema_nimg), ema_nimg = min(ema_kimg * 1000, images_seen * rampup)
    assert ema_beta(32, 0, 10, None) == pytest.approx(0.5 ** (32 / 10_000))
    assert ema_beta(32, 0, 10, 0.05) == 0.0  # the first update copies G
    assert ema_beta(32, 64_000, 10, 0.05) == pytest.approx(0.5 ** (32 / 3200))
    assert ema_beta(32, 10**9, 10, 0.05) == pytest.approx(0.5 ** (32 / 10_000))


def test_ema_follows_the_generator_with_the_official_decay(tmp_path: Path):
    model = tiny_model(ema_kimg=0.1, ema_rampup=None, r1_gamma=0.0, pl_weight=0.0)
    before = [p.detach().clone() for p in model.generator_ema.module.parameters()]
    fit_batches(model, tmp_path, batches=1)
    beta = 0.5 ** (8 / 100)
    for old, ema, new in zip(before, model.generator_ema.module.parameters(), model.generator.parameters()):
        torch.testing.assert_close(ema, new.detach().lerp(old, beta))
    torch.testing.assert_close(model.generator_ema.module.w_avg, model.generator.w_avg)  # buffers copied


def test_bf16_mixed_precision_trains_with_finite_losses_on_cpu(tmp_path: Path):
    model = tiny_model(diffaugment="color,translation,cutout")
    losses = []
    original = model.report
    model.report = lambda network, values: (
        losses.append({k: float(v) for k, v in values.items()}),
        original(network, values),
    )
    fit_batches(model, tmp_path, batches=2, precision="bf16-mixed")
    assert {"g_loss", "pl_penalty", "d_loss", "r1_penalty"} <= {k for step in losses for k in step}
    assert all(math.isfinite(v) for step in losses for v in step.values())
    assert all(bool(p.isfinite().all()) for p in model.parameters())


def test_adain_family_trains_all_phases(tmp_path: Path):
    model = tiny_model(style_block="adain")
    before = [p.detach().clone() for p in model.generator.synthesis.parameters()]
    fit_batches(model, tmp_path, batches=2)
    assert model.pl_mean > 0 and all(bool(p.isfinite().all()) for p in model.parameters())
    changed = [not torch.equal(a, b) for a, b in zip(before, model.generator.synthesis.parameters())]
    assert sum(changed) > len(changed) // 2


@pytest.mark.slow
def test_networks_compile_as_one_graph():
    """No graph breaks (``fullgraph=True``) in G's forward and D's forward and backward (aot_eager: no compiler)."""
    g, d = tiny_generator(), StyleDiscriminator(SHAPE, 64, 8)
    z = torch.randn(4, 8)
    images = torch.compile(g, backend="aot_eager", fullgraph=True)(z, noise_mode="const")
    torch.testing.assert_close(images, g(z, noise_mode="const"))
    torch.compile(d, backend="aot_eager", fullgraph=True)(images).sum().backward()


# ------------------------------------------------------------------------------------------- using the model
def test_grids_are_logged_beside_the_samples(tmp_path: Path):
    model = tiny_model()
    grid, nrow = model.style_mixing_grid(model.fixed_noise[:2], model.fixed_noise[2:5], cutoff=2)
    assert grid.shape == (3 * 4, *SHAPE) and nrow == 4
    cells = grid.view(3, 4, *SHAPE)
    assert bool((cells[0, 0] == 1).all())  # the blank corner
    # a cell takes the coarse styles of its row and the rest from its column
    rows, cols = model.mapped(model.fixed_noise[:2]), model.mapped(model.fixed_noise[2:5])
    ws = torch.cat([rows[1:2, :2], cols[2:3, 2:]], dim=1)
    torch.testing.assert_close(cells[2, 3], model._synthesize(ws)[0])
    torch.testing.assert_close(cells[2, 0], model.sample(z=model.fixed_noise[1:2])[0])
    sweep, columns = model.truncation_sweep(model.fixed_noise[:3])
    sweep = sweep.view(3, columns, *SHAPE)
    torch.testing.assert_close(sweep[0, -1], sweep[2, -1])  # psi 0: the w_avg image for every z
    assert not torch.allclose(sweep[0, 0], sweep[2, 0])
    callback = SampleGrid(every_n_steps=0)
    fit_batches(model, tmp_path, batches=1, callbacks=[callback])
    written = sorted(str(p.relative_to(tmp_path)) for p in callback.written)
    assert written == ["samples/final.png", "samples/style_mixing/final.png", "samples/truncation/final.png"]


def test_predict_writes_interpolation_frames_in_w(tmp_path: Path):
    model = tiny_model(interpolation_frames=4)
    writer = ImageWriter(output_dir=str(tmp_path / "frames"), num_samples=3, batch_size=5)
    quiet_trainer(tmp_path, callbacks=[writer]).predict(model, return_predictions=False)
    frames = sorted((tmp_path / "frames" / "interpolation").glob("*.png"))
    assert [p.name for p in frames] == [f"{i:06d}.png" for i in range(12)]  # 3 keyframes x 4 frames, a loop
    z = torch.randn(3, model.latent_dim, generator=torch.Generator().manual_seed(0))
    halfway = model.interpolate(z[:1], z[1:2], torch.tensor([0.5]))
    ws = model.mapped(z[:2])
    torch.testing.assert_close(halfway, model._synthesize(ws[:1].lerp(ws[1:], 0.5)))
    torch.testing.assert_close(model.interpolate(z[:1], z[1:2], torch.tensor([0.0])), model.sample(z=z[:1]))


def test_projection_reconstructs_better_than_the_mean_image():
    g = tiny_generator().eval()
    with torch.no_grad():
        for name, p in g.named_parameters():  # a generator whose images depend on w: styles with some spread
            if name.endswith("affine.weight"):
                p.mul_(3)
        g.mapping.w_avg.copy_(g.mapping(torch.randn(1000, 8))[:, 0].mean(0))  # as training tracks it
        target = g(torch.randn(1, 8), noise_mode="const")[0].clamp(-1, 1)
        mean_image = g(torch.zeros(1, 8), truncation_psi=0.0, noise_mode="const")  # the w_avg image
        population = g(torch.randn(256, 8), noise_mode="const").clamp(-1, 1).mean(0, keepdim=True)
    result = project(g, target, num_steps=60, w_avg_samples=500)
    assert result.ws.shape == (60, g.num_ws, 8)
    error = (result.image() - target).square().mean()
    for baseline in (mean_image.clamp(-1, 1), population):
        assert error < 0.5 * (baseline - target).square().mean()
    assert result.distances[-1] < result.distances[0]


def test_cli_predict_takes_the_sampling_settings_from_the_command_line(tiny_mnist: Path, tmp_path: Path):  # noqa: F811
    """LightningCLI replaces saved hyperparameters by the checkpoint's on ``--ckpt_path``; truncation, noise mode and
    interpolation frames are settings of use, not saved, so the command line wins."""
    tiny = TINY["StyleGAN"].kwargs
    common = [
        "--model",
        "StyleGAN",
        "--data",
        "MNISTDataModule",
        "--data.init_args.data_dir",
        str(tiny_mnist),
        "--data.init_args.download",
        "false",
        "--data.init_args.image_size",
        "16",
        "--data.init_args.batch_size",
        "8",
        "--data.init_args.val_size",
        "16",
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
        "--trainer.enable_progress_bar",
        "false",
        *[
            arg
            for key in ("latent_dim", "w_dim", "mapping_layers", "channel_base", "channel_max")
            for arg in (f"--model.init_args.{key}", str(tiny[key]))
        ],
    ]
    GANCLI(
        args=[
            "fit",
            *common,
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "1",
            "--trainer.limit_val_batches",
            "0",
        ]
    )
    out = tmp_path / "frames"
    cli = GANCLI(
        args=[
            "predict",
            *common,
            "--ckpt_path",
            str(tmp_path / "run" / "checkpoints" / "last.ckpt"),
            "--model.init_args.truncation_psi",
            "0.5",
            "--model.init_args.interpolation_frames",
            "3",
            "--writer.num_samples",
            "2",
            "--writer.output_dir",
            str(out),
        ]
    )
    assert cli.model.truncation_psi == 0.5 and cli.model.g_steps > 0  # the checkpoint's weights, the flag's psi
    assert len(list((out / "interpolation").glob("*.png"))) == 2 * 3
