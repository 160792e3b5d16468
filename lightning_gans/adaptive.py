"""ADA's adaptive augmentation probability (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data", section 3; stylegan2-ada-pytorch ``training_loop.py``), as one small module a family owns.

The overfitting heuristic ``r_t = E[sign(D(real))]`` is accumulated over the real logits of ``interval`` D steps;
then ``p`` moves by ``sign(r_t - target) * (batch * interval) / speed_images`` (with the paper's speed, 500k images, p
can go from 0 to 1 in 500k real images shown to D) and is clamped to [0, 1). With a fixed ``p`` nothing adapts (r_t is
still measured and logged). The augmentation itself is :func:`lightning_gans.ada.ada_augment`.

Everything that drives the schedule is a buffer (``p``, the accumulated signs and their count, the last ``r_t``), so
it is in the checkpoint and ``--ckpt_path last`` continues with the same p mid-interval. Nothing is read on the host
per step: p and r_t stay on the device (a GPU never waits for them). Under DDP the accumulators are summed over the
ranks (one all-reduce per interval) before r_t is taken, so every rank moves p alike.

Deviation: the official code adjusts p from the statistic collected since the last adjustment by its training-stats
module; here the module keeps its own two accumulators, the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from lightning_gans.options import OptionGroup


@dataclass(frozen=True)
class Ada(OptionGroup):
    """Adaptive discriminator augmentation (ADA), off by default. In a config: ``ada: {policy: bgc}``; on the command
    line ``--model.init_args.ada.policy bgc``.

    Args:
        policy: the transformations applied to every D input, real and fake, in D's and G's steps: "b" (x-flip,
            90-degree rotations, integer translation), "bg" (+ scaling, rotation, anisotropy, fractional
            translation), "bgc" (+ brightness, contrast, luma flip, hue, saturation); "" = off.
        target: the overfitting heuristic r_t = E[sign(D(real))] that p steers to (the paper's 0.6).
        speed_images: real images over which p can move by 1 (the paper's 500k).
        interval: D steps between two adjustments of p (the paper's 4).
        p: a fixed augmentation probability instead of the adaptive one (None: adaptive, from 0).
    """

    policy: str = ""
    target: float = 0.6
    speed_images: int = 500_000
    interval: int = 4
    p: float | None = None

    _group = "ada"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.policy:
            AdaptiveAugment(self.policy, self.target, self.speed_images, self.interval, self.p)  # checks every value

    def build(self, image_shape: tuple[int, ...], diffaugment: str = "") -> AdaptiveAugment | None:
        """The module that augments and adapts p (None when off); refuses data that are not images and DiffAugment
        at the same time (one augmentation of D's inputs at a time)."""
        if not self.policy:
            return None
        if len(image_shape) != 3:
            raise ValueError(f"ada works on images (C, H, W); this data has shape {tuple(image_shape)}")
        if diffaugment:
            raise ValueError(
                f"ada.policy {self.policy!r} and diffaugment {diffaugment!r} both augment D's inputs: use one (ADA "
                'adapts its strength to the data; DiffAugment is fixed) and set the other to ""'
            )
        return AdaptiveAugment(self.policy, self.target, self.speed_images, self.interval, self.p)


class AdaptiveAugment(nn.Module):
    """The ADA pipeline with its probability: ``ada(images)`` augments, ``observe(real_logits)`` and ``adjust(...)``
    drive p.

    Args:
        policy: the transformations (:data:`lightning_gans.ada.POLICIES`: "b", "bg", "bgc", ...).
        target: the r_t that p steers to (the paper's 0.6).
        speed_images: real images over which p can move by 1 (the paper's 500k).
        interval: D steps between adjustments (the paper's 4).
        p: a fixed probability (no adaptation); None: adaptive, from 0.
    """

    def __init__(
        self,
        policy: str = "bgc",
        target: float = 0.6,
        speed_images: int = 500_000,
        interval: int = 4,
        p: float | None = None,
    ) -> None:
        super().__init__()
        from lightning_gans.ada import parse_ada_policy

        parse_ada_policy(policy)
        if not 0.0 < target < 1.0:
            raise ValueError(f"ada target must be in (0, 1) (the paper: 0.6), got {target}")
        if speed_images < 1 or interval < 1:
            raise ValueError(f"ada speed_images and interval must be at least 1, got {speed_images} and {interval}")
        if p is not None and not 0.0 <= p < 1.0:
            raise ValueError(f"a fixed ada p must be in [0, 1), got {p}")
        self.policy, self.target, self.speed_images, self.interval = policy, target, speed_images, interval
        self.adaptive = p is None
        self.register_buffer("p", torch.tensor(0.0 if p is None else float(p)))
        self.register_buffer("r_t", torch.tensor(0.0))
        self.register_buffer("sign_sum", torch.tensor(0.0))
        self.register_buffer("sign_count", torch.tensor(0.0))

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Each transformation of the policy applied to each image with probability p (differentiable)."""
        from lightning_gans.ada import ada_augment

        return ada_augment(images, self.p, self.policy, generator)

    @torch.no_grad()
    def observe(self, real_logits: Tensor) -> None:
        """Accumulate sign(D(real)) of one D step (call it with the logits D gave the real batch)."""
        self.sign_sum += real_logits.detach().float().sign().sum()
        self.sign_count += real_logits.numel()

    @torch.no_grad()
    def adjust(self, d_steps: int, batch_size: int) -> None:
        """After D step number ``d_steps`` (1-based): every ``interval`` steps take r_t and move p. ``batch_size``
        is the real images per D step over all ranks."""
        if d_steps % self.interval != 0:
            return
        totals = torch.stack([self.sign_sum, self.sign_count])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(totals)
        self.r_t.copy_(totals[0] / totals[1].clamp(min=1.0))
        if self.adaptive:
            step = (self.r_t - self.target).sign() * (batch_size * self.interval / self.speed_images)
            self.p.copy_((self.p + step).clamp(0.0, 1.0 - 1e-6))
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def extra_repr(self) -> str:
        mode = "adaptive" if self.adaptive else f"fixed p={float(self.p):g}"
        return f"policy={self.policy!r}, {mode}, target={self.target}, interval={self.interval}"
