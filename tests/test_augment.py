"""Unit tests for the stabilisation toolbox: DiffAugment and instance noise."""

from __future__ import annotations

import pytest
import torch

from lightning_gans.augment import POLICIES, annealed_std, diff_augment, instance_noise, parse_policy

POLICY_NAMES = ["color", "translation", "cutout", "brightness", "saturation", "contrast", "color,translation,cutout"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_shape_dtype_preserved_and_gradient_flows(policy: str) -> None:
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, policy)
    assert y.shape == x.shape and y.dtype == x.dtype
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_empty_policy_is_identity() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(diff_augment(x, ""), x)
    assert parse_policy(" , ") == ()


def test_unknown_policy_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="'rotation'.*Valid names.*color, translation, cutout"):
        diff_augment(torch.zeros(1, 3, 8, 8), "color,rotation")


def test_translation_moves_content_with_zero_padding() -> None:
    n, size = 32, 16
    shift = size // 8
    x = torch.zeros(n, 1, size, size)
    x[:, :, 8, 8] = 1.0  # one bright pixel in the middle
    y = diff_augment(x, "translation")
    assert torch.equal(y.sum(dim=(1, 2, 3)), torch.ones(n))  # the pixel moved, nothing else appeared
    flat = y.flatten(1).argmax(dim=1)
    dy, dx = flat // size - 8, flat % size - 8
    assert dy.abs().max() <= shift and dx.abs().max() <= shift
    assert (dy != 0).any() and (dx != 0).any()
    # Content shifted out is replaced by zeros: an all-ones image loses exactly the shifted-out rows and columns.
    ones = diff_augment(torch.ones(n, 1, size, size), "translation")
    zero_rows = (ones == 0).all(dim=3).sum(dim=(1, 2))
    zero_cols = (ones == 0).all(dim=2).sum(dim=(1, 2))
    assert zero_rows.max() <= shift and zero_cols.max() <= shift and (zero_rows > 0).any()


def test_cutout_zeroes_a_rectangular_patch() -> None:
    n, size = 16, 16
    y = diff_augment(torch.ones(n, 3, size, size), "cutout")
    for image in y:
        zero = image[0] == 0
        assert torch.equal(image == 0, zero.expand(3, -1, -1))  # the same patch in every channel
        rows, cols = zero.any(dim=1).sum().item(), zero.any(dim=0).sum().item()
        assert zero.sum().item() == rows * cols  # one axis-aligned rectangle
        assert size // 4 <= rows <= size // 2 and size // 4 <= cols <= size // 2  # half-size, clipped at borders
        assert torch.all(image[:, ~zero] == 1)


def test_color_ranges() -> None:
    x = torch.rand(64, 3, 8, 8) * 2 - 1
    contrast = diff_augment(x, "contrast")
    torch.testing.assert_close(contrast.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))
    offset = (diff_augment(x, "brightness") - x).flatten(1)
    assert torch.allclose(offset, offset[:, :1]) and offset.abs().max() <= 0.5
    gray = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(diff_augment(gray, "saturation"), gray)  # one channel: nothing to saturate


def test_deterministic_under_a_seed() -> None:
    x = torch.randn(4, 3, 16, 16)
    torch.manual_seed(1)
    a = diff_augment(x)
    torch.manual_seed(1)
    b = diff_augment(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, diff_augment(x))
    c = diff_augment(x, generator=torch.Generator().manual_seed(7))
    d = diff_augment(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(c, d)


def test_instance_noise() -> None:
    x = torch.zeros(256, 3, 8, 8)
    assert instance_noise(x, 0.0) is x
    noisy = instance_noise(x, 0.1)
    assert noisy.std().item() == pytest.approx(0.1, rel=0.05)
    with pytest.raises(ValueError, match=">= 0"):
        instance_noise(x, -1.0)
    assert annealed_std(0.1, 0, 100) == pytest.approx(0.1)
    assert annealed_std(0.1, 50, 100) == pytest.approx(0.05)
    assert annealed_std(0.1, 200, 100) == 0.0
    assert annealed_std(0.1, 10**6, 0) == pytest.approx(0.1)


def test_policies_registry_names() -> None:
    assert {"color", "translation", "cutout"} <= set(POLICIES)
