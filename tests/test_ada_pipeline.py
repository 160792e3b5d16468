"""Unit tests for ADA's augmentation pipeline (lightning_gans.ada): each transformation against its definition."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lightning_gans import ada
from lightning_gans.ada import POLICIES, ada_augment, parse_ada_policy

CPU = torch.device("cpu")
LUMA = torch.full((3,), 1 / math.sqrt(3))  # the official luma axis


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int = 8, c: int = 3, h: int = 16, w: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=_gen(seed)) * 2 - 1


def _luma(x: torch.Tensor) -> torch.Tensor:
    """The component of each RGB pixel along the luma axis, [N, 1, H, W]."""
    return torch.einsum("nchw,c->nhw", x, LUMA)[:, None]


def _chroma(x: torch.Tensor) -> torch.Tensor:
    return x - _luma(x) * LUMA[None, :, None, None]


def test_policies_and_parsing() -> None:
    assert POLICIES["b"] == ("xflip", "rotate90", "xint")
    assert POLICIES["bg"] == POLICIES["b"] + ("scale", "rotate", "aniso", "xfrac")
    assert POLICIES["bgc"] == POLICIES["bg"] + ("brightness", "contrast", "lumaflip", "hue", "saturation")
    assert parse_ada_policy("bgc") == POLICIES["bgc"]
    assert parse_ada_policy(" hue , xflip,b ") == ("xflip", "rotate90", "xint", "hue")  # union, pipeline order
    assert parse_ada_policy("") == ()


def test_unknown_policy_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"'bgx'.*Valid names.*b, bg, bgc"):
        ada_augment(torch.zeros(1, 3, 8, 8), 0.5, "bgx")
    with pytest.raises(ValueError, match="not implemented.*Valid names"):
        parse_ada_policy("bgcfnc")


def test_p_zero_is_identity() -> None:
    x = _images()
    assert ada_augment(x, 0.0) is x
    assert ada_augment(x, torch.tensor(0.0), "bgc", _gen()) is x
    assert ada_augment(x, 1.0, "") is x
    with pytest.raises(ValueError, match="p must be >= 0"):
        ada_augment(x, -0.1)


def test_xflip_mirrors_along_width() -> None:
    x = _images(n=16)
    y = ada_augment(x, 1.0, "xflip", _gen())
    flipped = torch.tensor([torch.equal(a, torch.flip(b, dims=[2])) for a, b in zip(y, x)])
    kept = torch.tensor([torch.equal(a, b) for a, b in zip(y, x)])
    assert (flipped | kept).all() and flipped.any() and kept.any()  # each applied flip mirrors with probability 1/2


def test_rotate90_is_an_exact_quarter_turn() -> None:
    x = _images(n=16)
    y = ada_augment(x, 1.0, "rotate90", _gen())
    turns = []
    for a, b in zip(y, x):
        matches = [k for k in range(4) if torch.equal(a, torch.rot90(b, k, dims=(1, 2)))]
        assert len(matches) == 1
        turns.append(matches[0])
    assert len(set(turns)) >= 3


def test_xint_is_an_integer_shift_with_reflected_borders() -> None:
    n, size = 16, 16
    shift = round(ada.XINT_MAX * size)
    x = _images(n=n, h=size, w=size)
    y = ada_augment(x, 1.0, "xint", _gen())
    padded = F.pad(x, (shift,) * 4, mode="reflect")  # reflection about the edge pixels
    moved = 0
    for i in range(n):
        found = [
            (dy, dx)
            for dy in range(-shift, shift + 1)
            for dx in range(-shift, shift + 1)
            # out[r, c] = x[r - dy, c - dx]
            if torch.equal(y[i], padded[i, :, shift - dy : shift - dy + size, shift - dx : shift - dx + size])
        ]
        assert found, f"sample {i} is not an integer shift of at most {shift} pixels"
        moved += found[0] != (0, 0)
    assert moved > n // 2


@pytest.mark.parametrize("name", ["scale", "rotate", "aniso", "xfrac"])
def test_geometric_matrices_follow_their_definitions(name: str) -> None:
    n = 64
    steps = ada._sample_geometric((name,), n, 16, 16, torch.tensor(1.0), _gen(), CPU)
    assert [step for step, _ in steps] == ([name, name] if name == "rotate" else [name])
    eye = torch.eye(2).expand(n, 2, 2)
    for _, m in steps:
        assert torch.equal(m[:, 2], torch.tensor([0.0, 0.0, 1.0]).expand(n, 3))
        linear, shift = m[:, :2, :2], m[:, :2, 2]
        if name == "xfrac":
            assert torch.equal(linear, eye) and (shift != 0).all()
            assert shift.std() == pytest.approx(ada.XFRAC_STD * 16, rel=0.3)
            continue
        assert torch.equal(shift, torch.zeros(n, 2))
        if name == "scale":  # isotropic: 2^N(0, 0.2^2)
            assert torch.equal(linear, linear[:, :1, :1] * eye)
            assert torch.log2(linear[:, 0, 0]).std() == pytest.approx(ada.SCALE_STD, rel=0.3)
        elif name == "aniso":  # a along x, 1/a along y
            assert torch.allclose(linear[:, 0, 0] * linear[:, 1, 1], torch.ones(n))
            assert torch.equal(linear[:, 0, 1], torch.zeros(n)) and torch.equal(linear[:, 1, 0], torch.zeros(n))
        else:  # a rotation
            assert torch.allclose(linear @ linear.transpose(1, 2), eye, atol=1e-6)
            assert torch.allclose(torch.linalg.det(linear), torch.ones(n), atol=1e-6)
        assert not torch.allclose(linear, eye)


def test_rotation_is_drawn_twice_so_that_p_is_its_probability() -> None:
    n, p = 20000, 0.5
    pre, post = (m for _, m in ada._sample_geometric(("rotate",), n, 8, 8, torch.tensor(p), _gen(), CPU))
    pre_on, post_on = (m[:, 0, 1] != 0 for m in (pre, post))
    p_rot = 1 - math.sqrt(1 - p)
    assert pre_on.float().mean() == pytest.approx(p_rot, abs=0.02)
    assert post_on.float().mean() == pytest.approx(p_rot, abs=0.02)
    assert (pre_on | post_on).float().mean() == pytest.approx(p, abs=0.02)


def test_each_transformation_is_drawn_per_sample_with_probability_p() -> None:
    n, p = 20000, 0.3
    (_, m), *_ = ada._sample_color(("brightness",), n, 3, torch.tensor(p), _gen(), CPU)
    assert (m[:, 0, 3] != 0).float().mean() == pytest.approx(p, abs=0.02)
    (_, m), *_ = ada._sample_geometric(("scale",), n, 8, 8, torch.tensor(p), _gen(), CPU)
    assert (m[:, 0, 0] != 1).float().mean() == pytest.approx(p, abs=0.02)


def _bilinear_reference(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling at pixel coordinates [N, H*W], mirroring indices about the edge pixels (F.pad "reflect")."""
    n, c, h, w = x.shape

    def mirror(i: torch.Tensor, size: int) -> torch.Tensor:
        i = i.remainder(2 * (size - 1))
        return torch.where(i >= size, 2 * (size - 1) - i, i)

    x0, y0 = xs.floor(), ys.floor()
    wx, wy = (xs - x0)[:, None], (ys - y0)[:, None]
    flat = x.reshape(n, c, h * w)

    def pixel(dy: int, dx: int) -> torch.Tensor:
        index = mirror(y0.long() + dy, h) * w + mirror(x0.long() + dx, w)
        return flat.gather(2, index[:, None].expand(-1, c, -1))

    top = pixel(0, 0) * (1 - wx) + pixel(0, 1) * wx
    bottom = pixel(1, 0) * (1 - wx) + pixel(1, 1) * wx
    return (top * (1 - wy) + bottom * wy).reshape(n, c, h, w)


def test_geometric_policy_is_one_bilinear_resampling_of_the_composed_matrix() -> None:
    x = _images(n=4)
    y = ada_augment(x, 1.0, "geom", _gen())
    steps = ada._sample_geometric(POLICIES["geom"], 4, 16, 16, torch.tensor(1.0), _gen(), CPU)
    matrix = steps[0][1] @ steps[1][1] @ steps[2][1] @ steps[3][1] @ steps[4][1]  # output pixel -> input pixel
    # Source of each output pixel, in pixel indices: matrix applied to coordinates centred on the image centre.
    rows, cols = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    centred = torch.stack([cols.flatten() - 7.5, rows.flatten() - 7.5, torch.ones(256)])
    src = matrix[:, :2] @ centred + 7.5
    assert torch.allclose(y, _bilinear_reference(x, src[:, 0], src[:, 1]), atol=1e-5)
    assert torch.allclose(ada._resample(x, torch.eye(3).expand(4, 3, 3)), x, atol=1e-5)


def test_device_tensor_p_zero_is_an_identity_in_value() -> None:
    # A p on an accelerator is not read on the host: the pipeline runs, with every transformation off.
    x = _images()
    y = ada._augment(x, torch.tensor(0.0), POLICIES["bgc"], _gen())
    assert y is not x and torch.allclose(y, x, atol=1e-5)


def test_brightness_adds_a_constant_per_sample() -> None:
    for c in (1, 3):
        x = _images(c=c)
        delta = ada_augment(x, 1.0, "brightness", _gen()) - x
        per_sample = delta.mean(dim=(1, 2, 3), keepdim=True)
        assert torch.allclose(delta, per_sample.expand_as(delta), atol=1e-6)
        assert (per_sample != 0).all()


def test_contrast_scales_about_mid_grey_per_sample() -> None:
    # The official contrast multiplies colours by c about 0 (mid-grey in [-1, 1]), not about the image mean.
    for c in (1, 3):
        x = _images(c=c)
        ratio = ada_augment(x, 1.0, "contrast", _gen()) / x
        per_sample = ratio.mean(dim=(1, 2, 3), keepdim=True)
        assert torch.allclose(ratio, per_sample.expand_as(ratio), atol=1e-5)
        assert (per_sample > 0).all() and not torch.allclose(per_sample, torch.ones_like(per_sample))


def test_lumaflip_reflects_the_luma_axis() -> None:
    x = _images(n=16)
    y = ada_augment(x, 1.0, "lumaflip", _gen())
    reflected = x - 2 * _luma(x) * LUMA[None, :, None, None]
    flipped = torch.tensor([torch.allclose(a, b, atol=1e-6) for a, b in zip(y, reflected)])
    kept = torch.tensor([torch.allclose(a, b, atol=1e-6) for a, b in zip(y, x)])
    assert (flipped | kept).all() and flipped.any() and kept.any()
    assert torch.allclose(_chroma(y), _chroma(x), atol=1e-6)
    gray = _images(n=16, c=1)  # on 1-channel images the reflection is a negation
    y = ada_augment(gray, 1.0, "lumaflip", _gen())
    assert all(torch.allclose(a, b, atol=1e-6) or torch.allclose(a, -b, atol=1e-6) for a, b in zip(y, gray))


def test_hue_rotates_chroma_about_the_luma_axis() -> None:
    x = _images()
    y = ada_augment(x, 1.0, "hue", _gen())
    assert torch.allclose(_luma(y), _luma(x), atol=1e-5)
    assert torch.allclose(_chroma(y).norm(dim=1), _chroma(x).norm(dim=1), atol=1e-5)
    assert ((y - x).flatten(1).abs().amax(dim=1) > 1e-3).all()


def test_saturation_scales_chroma_per_sample() -> None:
    x = _images()
    y = ada_augment(x, 1.0, "saturation", _gen())
    assert torch.allclose(_luma(y), _luma(x), atol=1e-5)
    ratio = _chroma(y) / _chroma(x)
    per_sample = ratio.median(dim=1, keepdim=True).values.median(dim=2, keepdim=True).values
    per_sample = per_sample.median(dim=3, keepdim=True).values
    assert torch.allclose(_chroma(y), _chroma(x) * per_sample, atol=1e-5)
    assert (per_sample > 0).all()


def test_hue_and_saturation_skip_one_channel_images() -> None:
    gray = _images(c=1)
    assert torch.equal(ada_augment(gray, 1.0, "hue,saturation", _gen()), gray)
    with pytest.raises(ValueError, match="1- or 3-channel"):
        ada_augment(_images(c=4), 1.0, "bgc")
    assert ada_augment(_images(c=4), 1.0, "bg", _gen()).shape == (8, 4, 16, 16)


@pytest.mark.parametrize("policy", ["bg", "color", "bgc"])
def test_p_one_transforms_every_sample(policy: str) -> None:
    x = _images()
    y = ada_augment(x, 1.0, policy, _gen())
    assert ((y - x).flatten(1).abs().amax(dim=1) > 1e-3).all()


def test_same_seed_same_output() -> None:
    x = _images()
    a = ada_augment(x, 0.7, "bgc", _gen(3))
    assert torch.equal(a, ada_augment(x, 0.7, "bgc", _gen(3)))
    assert not torch.equal(a, ada_augment(x, 0.7, "bgc", _gen(4)))


def test_dtype_shape_and_non_square_images() -> None:
    x = _images(n=4, h=12, w=16)
    for policy in ("b", "bgc"):
        y = ada_augment(x.bfloat16(), 1.0, policy, _gen())
        assert y.shape == x.shape and y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()


def test_gradients_flow_to_the_images() -> None:
    x = _images().requires_grad_()
    ada_augment(x, 0.8).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_r1_penalty_through_augmented_reals_has_a_double_backward() -> None:
    # grid_sample's double backward (missing in old PyTorch, hence the official grid_sample_gradfix) is needed here.
    conv = torch.nn.Conv2d(3, 1, 3)
    x = _images(n=4).requires_grad_()
    logits = F.softplus(conv(ada_augment(x, 1.0, "bgc", _gen()))).sum()
    (grad,) = torch.autograd.grad(logits, x, create_graph=True)
    grad.square().sum().backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()
    assert conv.weight.grad.abs().sum() > 0
