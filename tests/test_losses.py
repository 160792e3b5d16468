"""Each adversarial loss and regulariser against its written formula, on hand-made logits."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_gans.losses import LOSSES, discriminator_loss, feature_matching_loss, generator_loss
from lightning_gans.regularizers import gradient_penalty, r1_penalty

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.5])


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def test_nonsaturating_is_bce_on_probabilities():
    d = mean(-math.log(sigmoid(r)) for r in REAL.tolist()) + mean(-math.log(1 - sigmoid(f)) for f in FAKE.tolist())
    g = mean(-math.log(sigmoid(f)) for f in FAKE.tolist())
    assert discriminator_loss("nonsaturating", REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert generator_loss("nonsaturating", FAKE).item() == pytest.approx(g, rel=1e-6)


def test_minimax_generator_minimises_log_one_minus_d():
    g = mean(math.log(1 - sigmoid(f)) for f in FAKE.tolist())
    assert generator_loss("minimax", FAKE).item() == pytest.approx(g, rel=1e-6)
    assert discriminator_loss("minimax", REAL, FAKE).item() == pytest.approx(
        discriminator_loss("nonsaturating", REAL, FAKE).item()
    )


def test_hinge():
    d = mean(max(0.0, 1 - r) for r in REAL.tolist()) + mean(max(0.0, 1 + f) for f in FAKE.tolist())
    assert discriminator_loss("hinge", REAL, FAKE).item() == pytest.approx(d)
    assert generator_loss("hinge", FAKE).item() == pytest.approx(-mean(FAKE.tolist()))


def test_wasserstein():
    assert discriminator_loss("wasserstein", REAL, FAKE).item() == pytest.approx(
        mean(FAKE.tolist()) - mean(REAL.tolist())
    )
    assert generator_loss("wasserstein", FAKE).item() == pytest.approx(-mean(FAKE.tolist()))


def test_lsgan():
    d = 0.5 * mean((r - 1) ** 2 for r in REAL.tolist()) + 0.5 * mean(f**2 for f in FAKE.tolist())
    g = 0.5 * mean((f - 1) ** 2 for f in FAKE.tolist())
    assert discriminator_loss("lsgan", REAL, FAKE).item() == pytest.approx(d)
    assert generator_loss("lsgan", FAKE).item() == pytest.approx(g)


def test_one_sided_label_smoothing_changes_only_the_real_term():
    smooth = 0.9
    real_term = mean(-(smooth * math.log(sigmoid(r)) + (1 - smooth) * math.log(1 - sigmoid(r))) for r in REAL.tolist())
    fake_term = mean(-math.log(1 - sigmoid(f)) for f in FAKE.tolist())
    got = discriminator_loss("nonsaturating", REAL, FAKE, real_label=smooth).item()
    assert got == pytest.approx(real_term + fake_term, rel=1e-6)
    lsgan = 0.5 * mean((r - smooth) ** 2 for r in REAL.tolist()) + 0.5 * mean(f**2 for f in FAKE.tolist())
    assert discriminator_loss("lsgan", REAL, FAKE, real_label=smooth).item() == pytest.approx(lsgan)


@pytest.mark.parametrize("name", ["hinge", "wasserstein"])
def test_label_smoothing_refused_where_meaningless(name):
    with pytest.raises(ValueError, match="no target"):
        discriminator_loss(name, REAL, FAKE, real_label=0.9)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError) as err:
        generator_loss("wgan", FAKE)
    for name in LOSSES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="Unknown adversarial loss 'bce'"):
        discriminator_loss("bce", REAL, FAKE)


def test_losses_take_patch_logits():
    real, fake = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    for name in LOSSES:
        assert discriminator_loss(name, real, fake).dim() == 0
        assert generator_loss(name, fake).dim() == 0


def test_feature_matching_is_squared_distance_of_means():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]], requires_grad=True)
    # means: real (2, 3), fake (1, 1) -> (1^2 + 2^2) = 5
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(5.0)
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert feature_matching_loss([real, real], [fake, fake]).item() == pytest.approx(10.0)


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = w . x has gradient w everywhere: penalty = (|w| - 1)^2
    w = torch.tensor([3.0, 4.0])
    critic = lambda x: x @ w  # noqa: E731
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((5.0 - 1.0) ** 2)


def test_gradient_penalty_backpropagates_to_critic_weights():
    lin = torch.nn.Linear(3, 1)
    penalty = gradient_penalty(lambda x: lin(x).squeeze(1), torch.randn(4, 3), torch.randn(4, 3))
    penalty.backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_r1_of_a_quadratic_critic():
    # D(x) = sum(x^2) -> grad 2x -> ||grad||^2 = 4 |x|^2
    x = torch.tensor([[1.0, 2.0], [0.0, 3.0]])
    assert r1_penalty(lambda v: (v**2).sum(dim=1), x).item() == pytest.approx(mean([4 * 5.0, 4 * 9.0]))


def test_r1_backpropagates_to_critic_weights_and_not_to_the_real_batch():
    lin = torch.nn.Linear(3, 1)
    real = torch.randn(4, 3, requires_grad=True)
    r1_penalty(lambda x: torch.tanh(lin(x)).squeeze(1), real).backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    assert real.grad is None  # the gradient is taken with respect to a detached copy


# ------------------------------------------------------------------------------ ESRGAN's relativistic average losses
def test_relativistic_average_losses_against_the_esrgan_formula():
    """D_Ra(a, b) = sigmoid(C(a) - mean C(b)); D: -1/2 (E log D_Ra(r, f) + E log(1 - D_Ra(f, r))), G: the mirror."""
    from lightning_gans.losses import relativistic_discriminator_loss, relativistic_generator_loss

    mean_r, mean_f = mean(REAL.tolist()), mean(FAKE.tolist())
    d_ra_real = [sigmoid(r - mean_f) for r in REAL.tolist()]
    d_ra_fake = [sigmoid(f - mean_r) for f in FAKE.tolist()]
    d = 0.5 * (mean(-math.log(p) for p in d_ra_real) + mean(-math.log(1 - p) for p in d_ra_fake))
    g = 0.5 * (mean(-math.log(1 - p) for p in d_ra_real) + mean(-math.log(p) for p in d_ra_fake))
    assert relativistic_discriminator_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert relativistic_generator_loss(REAL, FAKE).item() == pytest.approx(g, rel=1e-6)

    # G's gradient reaches the fake logits through both terms: the real term depends on the mean of the fakes
    fake = FAKE.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(relativistic_generator_loss(REAL, fake), fake)
    # d/df_k: 1/2 (-mean_i D_Ra(r_i, f) / n  -  (1 - D_Ra(f_k, r)) / n); the first part is the real images' term
    n = len(FAKE)
    expected = [0.5 * (-mean(d_ra_real) / n - (1 - p) / n) for p in d_ra_fake]
    torch.testing.assert_close(grad, torch.tensor(expected), rtol=1e-5, atol=1e-7)
    # shifting every logit by the same amount changes nothing: only differences to the other side's mean count
    assert relativistic_discriminator_loss(REAL + 3, FAKE + 3).item() == pytest.approx(d, rel=1e-6)


def test_paired_feature_matching_is_mean_l1_per_layer_and_pushes_only_the_fakes():
    from lightning_gans.losses import paired_feature_matching_loss

    real = [torch.zeros(2, 3), torch.ones(2, 1, 2, 2)]
    fake = [torch.full((2, 3), 0.5, requires_grad=True), torch.full((2, 1, 2, 2), 3.0, requires_grad=True)]
    loss = paired_feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx((0.5 + 2.0) / 2)
    real = [r.requires_grad_(True) for r in real]
    grads = torch.autograd.grad(paired_feature_matching_loss(real, fake), [*real, *fake], allow_unused=True)
    assert grads[0] is None and grads[1] is None and grads[2] is not None
    with pytest.raises(ValueError, match="feature layers"):
        paired_feature_matching_loss(real[:1], fake)
