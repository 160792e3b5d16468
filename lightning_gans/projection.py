"""Projection of an image into a style generator's W space, the procedure of the official StyleGAN2 projector.

:func:`project` follows ``projector.py`` of NVlabs/stylegan2-ada-pytorch (Karras et al. 2020, section 5): start from
the mean ``w`` of ``w_avg_samples`` mapped z (seeded), optimise one ``w`` (broadcast to every style input, so the
result lies in W, not W+) together with the generator's constant noise maps with Adam (betas 0.9, 0.999) for
``num_steps`` steps; the learning rate ramps up over the first 5% and down (cosine) over the last 25%; Gaussian
noise of ``w_std * 0.05`` (the RMS distance of the mapped samples from their mean), decaying quadratically to zero
at 75% of the steps, is added to ``w`` each step; the noise maps are pushed to stay white by a multi-scale
autocorrelation penalty (weight 1e5) and renormalised to zero mean and unit variance after each step.

Deviation: the official distance is LPIPS on VGG16 features, whose weights are downloaded at run time; here the
default distance is the mean squared pixel error in [-1, 1], and ``distance`` takes any differentiable
``(synth, target) -> scalar`` (an LPIPS module, for example).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class Projection:
    """What :func:`project` found.

    Attributes:
        ws: ``w`` after each step, broadcast to the style inputs: ``[num_steps, num_ws, w_dim]`` (the last is the
            result).
        synthesis: a copy of the synthesis network holding the optimised noise maps (``noise_mode="const"``).
        distances: the distance to the target at each step.
    """

    ws: Tensor
    synthesis: nn.Module
    distances: list[float] = field(default_factory=list)

    @torch.no_grad()
    def image(self, step: int = -1) -> Tensor:
        """The reconstruction after ``step`` (the last by default): ``[1, C, H, W]`` in [-1, 1]."""
        return self.synthesis(self.ws[step].unsqueeze(0), noise_mode="const").clamp(-1, 1)


def mse_distance(synth: Tensor, target: Tensor) -> Tensor:
    """Mean squared pixel error (the default distance)."""
    return (synth - target).square().mean()


def _noise_regularization(noise_maps: list[Tensor]) -> Tensor:
    """Sum over scales (down to 8x8) of the squared one-pixel autocorrelations of each noise map."""
    reg = torch.zeros((), device=noise_maps[0].device)
    for v in noise_maps:
        noise = v[None, None]
        while True:
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return reg


def project(
    generator: nn.Module,
    target: Tensor,
    *,
    num_steps: int = 1000,
    w_avg_samples: int = 10000,
    initial_learning_rate: float = 0.1,
    initial_noise_factor: float = 0.05,
    lr_rampdown_length: float = 0.25,
    lr_rampup_length: float = 0.05,
    noise_ramp_length: float = 0.75,
    regularize_noise_weight: float = 1e5,
    distance: Callable[[Tensor, Tensor], Tensor] | None = None,
    seed: int = 123,
) -> Projection:
    """Find the ``w`` (and noise maps) whose image is closest to ``target``; see the module docstring.

    Args:
        generator: a :class:`~lightning_gans.networks.stylegan.StyleGenerator` (``mapping`` and ``synthesis``); it
            is copied, not changed.
        target: the image ``[C, H, W]`` (or ``[1, C, H, W]``) in [-1, 1], at the generator's resolution.
        num_steps: optimisation steps (official: 1000).
        w_avg_samples: mapped z used for the starting point and ``w_std`` (official: 10,000).
        initial_learning_rate: Adam's peak learning rate (0.1).
        initial_noise_factor: ``w`` noise at step 0, as a fraction of ``w_std`` (0.05).
        lr_rampdown_length: fraction of the steps of the cosine ramp-down (0.25).
        lr_rampup_length: fraction of the steps of the linear ramp-up (0.05).
        noise_ramp_length: fraction of the steps after which no noise is added to ``w`` (0.75).
        regularize_noise_weight: weight of the noise-map penalty (1e5).
        distance: ``(synth, target) -> scalar`` to minimise, both ``[1, C, H, W]`` in [-1, 1]; default MSE.
        seed: seed of the z samples, the noise maps' start and the ``w`` noise.
    """
    distance = distance or mse_distance
    mapping, synthesis = generator.mapping, copy.deepcopy(generator.synthesis).eval().requires_grad_(False)
    device = next(synthesis.parameters()).device
    target = target.to(device).float()
    target = target.unsqueeze(0) if target.dim() == 3 else target
    expected = (synthesis.resolution, synthesis.resolution)
    if target.dim() != 4 or target.shape[0] != 1 or tuple(target.shape[-2:]) != expected:
        raise ValueError(f"target must be one image [C, H, W] of size {expected}, got {tuple(target.shape)}")
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    gen = torch.Generator(device="cpu").manual_seed(seed)

    # The starting point: the mean of many mapped z, and their spread.
    was_training = mapping.training
    mapping.eval()
    with torch.no_grad():
        z = torch.randn(w_avg_samples, mapping.z_dim, generator=gen).to(device)
        w_samples = torch.cat([mapping(chunk)[:, :1] for chunk in z.split(1000)])  # [N, 1, w_dim]
    mapping.train(was_training)
    w_avg = w_samples.mean(dim=0, keepdim=True)  # [1, 1, w_dim]
    w_std = float(((w_samples - w_avg).square().sum() / w_avg_samples).sqrt())

    noise_maps = [buf for name, buf in synthesis.named_buffers() if name.endswith("noise_const")]
    with torch.no_grad():
        for buf in noise_maps:
            buf.copy_(torch.randn(buf.shape, generator=gen).to(device))
            buf.requires_grad_(True)
    w_opt = w_avg.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt, *noise_maps], betas=(0.9, 0.999), lr=initial_learning_rate)

    ws_out = torch.zeros(num_steps, synthesis.num_ws, w_avg.shape[-1], device=device)
    distances: list[float] = []
    for step in range(num_steps):
        t = step / num_steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        lr_ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
        lr_ramp = (0.5 - 0.5 * math.cos(lr_ramp * math.pi)) * min(1.0, t / lr_rampup_length)
        for group in optimizer.param_groups:
            group["lr"] = initial_learning_rate * lr_ramp

        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * w_noise_scale
        synth = synthesis((w_opt + w_noise).repeat(1, synthesis.num_ws, 1), noise_mode="const")
        dist = distance(synth, target)
        loss = dist + _noise_regularization(noise_maps) * regularize_noise_weight
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        distances.append(float(dist))
        ws_out[step] = w_opt.detach()[0]
        with torch.no_grad():
            for buf in noise_maps:
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
    for buf in noise_maps:
        buf.requires_grad_(False)
    return Projection(ws=ws_out, synthesis=synthesis, distances=distances)


__all__ = ["Projection", "mse_distance", "project"]
