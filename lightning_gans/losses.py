"""Adversarial losses on discriminator logits, chosen by name.

Every function takes raw logits (never probabilities: mixed precision refuses Sigmoid + BCE) and returns a scalar
to *minimise*. The discriminator minimises ``discriminator_loss``; the generator minimises ``generator_loss``.

=================  ============================================  ====================================
name               discriminator                                 generator
=================  ============================================  ====================================
``nonsaturating``  BCE: softplus(-D(x)) + softplus(D(G(z)))      softplus(-D(G(z))) = -log sigmoid
``minimax``        same as nonsaturating                         -softplus(D(G(z))) = log(1 - sigmoid)
``hinge``          relu(1 - D(x)) + relu(1 + D(G(z)))            -D(G(z))
``wasserstein``    D(G(z)) - D(x)                                -D(G(z))
``lsgan``          1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2              1/2 (D(G(z)) - 1)^2
=================  ============================================  ====================================

:func:`real_term` and :func:`fake_term` are the two halves of ``discriminator_loss``;
:func:`matching_aware_discriminator_loss` weighs them for text-conditional D's (real, mismatched-text and fake
pairs).

Goodfellow et al. 2014 (minimax and the non-saturating trick), Lim & Ye 2017 / Miyato et al. 2018 (hinge),
Arjovsky et al. 2017 (Wasserstein), Mao et al. 2017 (least squares, a=0, b=c=1). Each term is averaged over all
logits, so patch discriminators (one logit per patch) work unchanged.

ESRGAN's relativistic average losses take both real and fake logits:
:func:`relativistic_discriminator_loss` and :func:`relativistic_generator_loss` (RaGAN, Jolicoeur-Martineau 2019).
:func:`paired_feature_matching_loss` matches a discriminator's features of each output with its target's.

One-sided label smoothing (Salimans et al. 2016) is ``real_label < 1`` for the losses that have targets
(nonsaturating, minimax, lsgan); hinge and wasserstein have no target to smooth and refuse it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

LOSSES: tuple[str, ...] = ("nonsaturating", "minimax", "hinge", "wasserstein", "lsgan")
RECONSTRUCTIONS: tuple[str, ...] = ("bce", "mse")
_SMOOTHABLE = ("nonsaturating", "minimax", "lsgan")


def check_loss_name(name: str) -> str:
    """Return ``name`` if it is a known adversarial loss, else raise with the valid names."""
    if name not in LOSSES:
        raise ValueError(f"Unknown adversarial loss {name!r}. Valid losses: {', '.join(LOSSES)}.")
    return name


def check_real_label(name: str, real_label: float) -> float:
    """Validate a one-sided label-smoothing target for loss ``name``."""
    if not 0.0 < real_label <= 1.0:
        raise ValueError(f"real_label must be in (0, 1], got {real_label}")
    if real_label != 1.0 and name not in _SMOOTHABLE:
        raise ValueError(
            f"Label smoothing (real_label={real_label}) has no meaning for the {name!r} loss, which has no target; "
            f"use it with one of {', '.join(_SMOOTHABLE)} or set real_label to 1.0."
        )
    return real_label


def real_term(name: str, real_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """The part of ``discriminator_loss`` that scores real samples (what D minimises to call them real)."""
    check_loss_name(name)
    check_real_label(name, real_label)
    if name in ("nonsaturating", "minimax"):
        if real_label == 1.0:
            return F.softplus(-real_logits).mean()  # -log sigmoid(D(x))
        return F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    if name == "hinge":
        return F.relu(1.0 - real_logits).mean()
    if name == "wasserstein":
        return -real_logits.mean()
    return 0.5 * (real_logits - real_label).pow(2).mean()  # lsgan


def fake_term(name: str, fake_logits: Tensor) -> Tensor:
    """The part of ``discriminator_loss`` that scores generated (or otherwise rejected) samples."""
    check_loss_name(name)
    if name in ("nonsaturating", "minimax"):
        return F.softplus(fake_logits).mean()  # -log(1 - sigmoid(D(G(z))))
    if name == "hinge":
        return F.relu(1.0 + fake_logits).mean()
    if name == "wasserstein":
        return fake_logits.mean()
    return 0.5 * fake_logits.pow(2).mean()  # lsgan


def discriminator_loss(name: str, real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """The discriminator's (critic's) loss for ``name``, given logits on real and on generated samples."""
    return real_term(name, real_logits, real_label) + fake_term(name, fake_logits)


def matching_aware_discriminator_loss(
    name: str, real_logits: Tensor, mismatched_logits: Tensor, fake_logits: Tensor, mismatch_weight: float = 0.5
) -> Tensor:
    """The matching-aware D loss of text-conditional GANs: real images with their own text are real; real images
    with a mismatched text and generated images are fake, weighted ``mismatch_weight`` and ``1 - mismatch_weight``.

    GAN-CLS (Reed et al. 2016, ``main_cls_int.lua`` with ``cls_weight=0.5``): BCE, ``real + 0.5 (wrong + fake)``.
    DF-GAN (Tao et al. 2022, ``code/lib/modules.py``): hinge, ``real + (fake + mismatched) / 2``. An empty
    ``mismatched_logits`` (no pair in the batch has a different text) contributes nothing to that term.
    """
    if not 0.0 <= mismatch_weight < 1.0:
        raise ValueError(f"mismatch_weight must be in [0, 1), got {mismatch_weight}")
    loss = real_term(name, real_logits) + (1.0 - mismatch_weight) * fake_term(name, fake_logits)
    if mismatched_logits.numel():
        loss = loss + mismatch_weight * fake_term(name, mismatched_logits)
    return loss


def generator_loss(name: str, fake_logits: Tensor) -> Tensor:
    """The generator's loss for ``name``, given the discriminator's logits on generated samples."""
    check_loss_name(name)
    if name == "nonsaturating":
        return F.softplus(-fake_logits).mean()
    if name == "minimax":
        return -F.softplus(fake_logits).mean()
    if name in ("hinge", "wasserstein"):
        return -fake_logits.mean()
    return 0.5 * (fake_logits - 1.0).pow(2).mean()


def _relativistic(real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
    return real_logits - fake_logits.mean(), fake_logits - real_logits.mean()


def relativistic_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's relativistic average loss (RaGAN, Jolicoeur-Martineau 2019; ESRGAN, Wang et al. 2018, eq. 2) with the
    standard GAN's cross-entropy: ``-1/2 (E_r[log D_Ra(x_r, x_f)] + E_f[log(1 - D_Ra(x_f, x_r))])``, where
    ``D_Ra(a, b) = sigmoid(C(a) - E[C(b)])``, ``C`` the raw logits and ``E`` the batch mean.

    Pass the logits of detached generated images. The 1/2 is ESRGAN's official code (BasicSR ``esrgan_model.py``:
    ``(l_d_real + l_d_fake) / 2``; the paper writes the sum), and ESRGAN's 5e-3 weight goes with it. The gradient
    flows through both means, as in the formula; BasicSR's current D step detaches the other side's mean in each
    term (a workaround for an in-place error under its DDP).
    """
    real_rel, fake_rel = _relativistic(real_logits, fake_logits)
    return 0.5 * (F.softplus(-real_rel).mean() + F.softplus(fake_rel).mean())  # -log s(.), -log(1 - s(.))


def relativistic_generator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """G's relativistic average loss (ESRGAN eq. 3): ``-1/2 (E_r[log(1 - D_Ra(x_r, x_f))] + E_f[log D_Ra(x_f,
    x_r)])``. G's gradient comes from both terms, the real images' term too, through the mean of the fake logits.
    Pass ``real_logits`` detached, as the official G step does (halved as in :func:`relativistic_discriminator_loss`).
    """
    real_rel, fake_rel = _relativistic(real_logits, fake_logits)
    return 0.5 * (F.softplus(real_rel).mean() + F.softplus(-fake_rel).mean())  # -log(1 - s(.)), -log s(.)


def paired_feature_matching_loss(real_features: Sequence[Tensor], fake_features: Sequence[Tensor]) -> Tensor:
    """Discriminator feature matching for paired data (pix2pixHD; a "perceptual" loss that needs no pretrained
    network): the L1 distance between the features of each output and those of its own target, averaged over the
    elements of each layer and over the layers. The real features are detached: only the generator is pushed.

    Unlike :func:`feature_matching_loss` (Salimans et al. 2016), which matches batch means, this matches sample to
    sample, which super-resolution can do because each output has its target.
    """
    if len(real_features) != len(fake_features) or not fake_features:
        raise ValueError(f"got {len(real_features)} real and {len(fake_features)} fake feature layers")
    losses = [F.l1_loss(fake, real.detach()) for real, fake in zip(real_features, fake_features)]
    return torch.stack(losses).mean()


def feature_matching_loss(real_features: Tensor | Sequence[Tensor], fake_features: Tensor | Sequence[Tensor]) -> Tensor:
    """Feature matching (Salimans et al. 2016): squared distance between mean discriminator features.

    ``||E[f(x)] - E[f(G(z))]||^2`` per feature layer, summed over layers. The real features are detached: only the
    generator is pushed. Accepts one tensor or a list of per-layer tensors (batch first).
    """
    if isinstance(real_features, Tensor):
        real_features, fake_features = [real_features], [fake_features]
    if len(real_features) != len(fake_features):
        raise ValueError(f"got {len(real_features)} real and {len(fake_features)} fake feature layers")
    loss = fake_features[0].new_zeros(())
    for real, fake in zip(real_features, fake_features):
        diff = real.detach().flatten(1).mean(0) - fake.flatten(1).mean(0)
        loss = loss + diff.pow(2).sum()
    return loss


def check_reconstruction_name(kind: str) -> str:
    """Return ``kind`` if it is a known reconstruction loss, else raise with the valid names."""
    if kind not in RECONSTRUCTIONS:
        raise ValueError(f"Unknown reconstruction loss {kind!r}. Valid: {', '.join(RECONSTRUCTIONS)}.")
    return kind


def reconstruction_loss(pre_tanh: Tensor, target: Tensor, kind: str = "bce") -> Tensor:
    """Per-image reconstruction loss of the autoencoder baselines, summed over pixels and averaged over the batch.

    Args:
        pre_tanh: the decoder's output *before* its ``tanh`` (the image is ``tanh(pre_tanh)``).
        target: the real images in [-1, 1].
        kind: ``"bce"``: a Bernoulli likelihood on pixels mapped to [0, 1]; since ``(tanh(a) + 1) / 2 = sigmoid(2a)``
            it is ``binary_cross_entropy_with_logits(2a, (x + 1) / 2)``, exact, stable and safe under autocast.
            ``"mse"``: the squared error on [-1, 1] pixels (a Gaussian likelihood with fixed variance 1/2).
    """
    if pre_tanh.shape != target.shape:
        raise ValueError(f"reconstruction and target differ in shape: {tuple(pre_tanh.shape)} vs {tuple(target.shape)}")
    n = target.shape[0]
    if check_reconstruction_name(kind) == "bce":
        return F.binary_cross_entropy_with_logits(2.0 * pre_tanh, (target + 1.0) / 2.0, reduction="sum") / n
    return (torch.tanh(pre_tanh) - target).pow(2).sum() / n
