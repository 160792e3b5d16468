"""The stabilisation toolbox as one typed option group, ``Toolbox``, accepted by the families that honour it.

The tools themselves are plain functions, tensors in and tensors out, and each family calls them visibly from its
``training_step``:

=========================  ===============================================  =========================================
option                     function (called from the step)                  problem it addresses
=========================  ===============================================  =========================================
``diffaugment``            :func:`lightning_gans.augment.diff_augment`      D overfitting small data
``instance_noise``         :func:`lightning_gans.augment.instance_noise`    vanishing gradients early on
``real_label``             ``losses.discriminator_loss(real_label=...)``    an over-confident D
``feature_matching``       :func:`lightning_gans.losses.feature_matching_loss`  mode collapse, an over-trained D
``gradient_penalty``       :func:`lightning_gans.regularizers.gradient_penalty`  a non-Lipschitz critic
``r1_gamma``               :func:`lightning_gans.regularizers.r1_penalty`   oscillation around equilibrium
``spectral_norm_d``/``_g``  :func:`lightning_gans.networks.blocks.apply_spectral_norm`  too strong a D
=========================  ===============================================  =========================================

In a config the group is one mapping under the model's arguments; on the command line each option is a dotted flag::

    model:
      class_path: lightning_gans.models.DCGAN
      init_args:
        toolbox: {diffaugment: "color,translation,cutout", r1_gamma: 1.0}

    lightning-gans fit --config configs/dcgan_mnist.yaml --model.init_args.toolbox.r1_gamma 1.0

ADA (adaptive discriminator augmentation, :class:`lightning_gans.adaptive.Ada`) is a group of its own, ``ada``, next
to this one in the same families (and StyleGAN): ``d_input`` applies the family's ADA module first; ADA and
``diffaugment`` are refused together.

Families without a discriminator (the autoencoder baselines) and the image-to-image families, whose official
steps have their own regularisers, do not take the group, so no family accepts an option it would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from lightning_gans.augment import annealed_std, diff_augment, instance_noise, parse_policy
from lightning_gans.losses import feature_matching_loss
from lightning_gans.networks.blocks import apply_spectral_norm
from lightning_gans.options import OptionGroup
from lightning_gans.regularizers import gradient_penalty, r1_penalty


@dataclass(frozen=True)
class Toolbox(OptionGroup):
    """Stabilisation options, all off by default; each is honoured by every family that takes the group.

    Args:
        diffaugment: DiffAugment policy applied to every D input, real and fake, in the D and the G step, e.g.
            "color,translation,cutout" ("" = off). Cures a discriminator that overfits small data.
        instance_noise: std of Gaussian noise added to every D input (0 = off). Cures vanishing gradients from a
            too-strong D early on.
        instance_noise_anneal_steps: G steps over which instance_noise decays linearly to 0 (0 = constant).
        real_label: target for real samples in the D loss; < 1 is one-sided label smoothing (over-confident D).
            Only for the losses with targets (nonsaturating, minimax, lsgan).
        feature_matching: weight of the feature-matching term in G's loss (0 = off). Cures mode collapse and an
            over-trained D.
        gradient_penalty: weight of the WGAN-GP gradient penalty in D's loss (0 = off; the paper uses 10).
        r1_gamma: gamma of the R1 penalty on real samples in D's loss (0 = off). Cures oscillation.
        spectral_norm_d: spectral norm on every layer of D (Lipschitz D; strong-D cure).
        spectral_norm_g: spectral norm on every layer of G.
    """

    diffaugment: str = ""
    instance_noise: float = 0.0
    instance_noise_anneal_steps: int = 0
    real_label: float = 1.0
    feature_matching: float = 0.0
    gradient_penalty: float = 0.0
    r1_gamma: float = 0.0
    spectral_norm_d: bool = False
    spectral_norm_g: bool = False

    _group = "toolbox"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("instance_noise", "feature_matching", "gradient_penalty", "r1_gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"toolbox.{name} must be 0 (off) or positive, got {getattr(self, name)}")
        if not 0.0 < self.real_label <= 1.0:
            raise ValueError(f"toolbox.real_label must be in (0, 1] (1 = no label smoothing), got {self.real_label}")
        parse_policy(self.diffaugment)  # a misspelt policy fails here, before training

    def check_for(self, image_shape: tuple[int, ...]) -> Toolbox:
        """Refuse options the data cannot take (DiffAugment needs images); returns self."""
        if self.diffaugment and len(image_shape) != 3:
            raise ValueError(f"toolbox.diffaugment works on images (C, H, W); this data has shape {image_shape}")
        return self

    def apply_spectral_norm(self, generator: nn.Module, discriminator: nn.Module) -> None:
        """Spectral norm on every layer of D and/or G, as switched on. Call once, right after building them."""
        if self.spectral_norm_d:
            apply_spectral_norm(discriminator)
        if self.spectral_norm_g:
            apply_spectral_norm(generator)

    def d_input(self, x: Tensor, g_steps: int, ada: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """What D sees of any sample, real or fake: ADA's augmentation (``ada``, the family's
        :class:`~lightning_gans.adaptive.AdaptiveAugment`, when on) or DiffAugment, then instance noise annealed
        over G steps."""
        if ada is not None:
            x = ada(x)
        if self.diffaugment:
            x = diff_augment(x, self.diffaugment)
        std = annealed_std(self.instance_noise, g_steps, self.instance_noise_anneal_steps)
        return instance_noise(x, std) if std > 0 else x

    def penalties(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """The weighted D regularisers that are switched on, ``{"gp": ..., "r1": ...}`` (empty when both are off).

        ``critic`` maps samples to logits, ``d_input`` included (``lambda x: D(toolbox.d_input(x, step))``).
        """
        terms: dict[str, Tensor] = {}
        if self.gradient_penalty > 0:
            terms["gp"] = self.gradient_penalty * gradient_penalty(critic, real, fake)
        if self.r1_gamma > 0:
            terms["r1"] = 0.5 * self.r1_gamma * r1_penalty(critic, real)
        return terms

    def feature_matching_terms(self, critic: Callable[..., Any], real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """The weighted feature-matching term of G's loss, ``{"feature_matching": ...}`` (empty when off).

        ``critic(x, return_features=True)`` gives ``(logits, features)`` of D's trunk; the real features are detached,
        so only G is pushed (Salimans et al. 2016).
        """
        if self.feature_matching <= 0:
            return {}
        real_features = critic(real, return_features=True)[1].detach()
        fake_features = critic(fake, return_features=True)[1]
        return {"feature_matching": self.feature_matching * feature_matching_loss(real_features, fake_features)}


__all__ = ["Toolbox"]
