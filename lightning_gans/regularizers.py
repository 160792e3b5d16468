"""Regularisers as plain functions: WGAN-GP's gradient penalty, R1 and DF-GAN's MA-GP (discriminator), path
length (generator).

Each differentiates a network's output with respect to its *input* (``create_graph=True``), so its value can be
added to a loss and back-propagated in the same backward pass. Under DDP that keeps one backward per step, which is
what DistributedDataParallel supports. A backward pass of a penalty *alone* (StyleGAN's lazy regularisation) leaves
some parameters out of the graph (the last bias of D does not change ``grad_x D``); add ``0 * output`` to the loss,
as the official code does, so every parameter is in the graph (``return_logits`` / the images give that output).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _input_gradient(outputs: Tensor, inputs: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad(outputs=outputs.sum(), inputs=inputs, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``E[(||grad_x D(x_hat)||_2 - 1)^2]``, x_hat between real and fake.

    Args:
        critic: maps a batch of samples to logits; a closure when the critic takes more inputs
            (``lambda x: D(x, labels)``).
        real: a batch of real samples.
        fake: a batch of generated samples of the same shape (detached or not; it is detached here).

    Returns the penalty without its weight (the paper's lambda = 10 is the caller's).
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake batches differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    grad = _input_gradient(critic(x_hat), x_hat)
    return (grad.norm(2, dim=1) - 1).pow(2).mean()


def r1_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, return_logits: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """R1 (Mescheder et al. 2018): ``E[||grad_x D(x)||^2]`` on real samples, without its gamma/2 weight.

    Args:
        critic: maps a batch of samples to logits (a closure when D takes more inputs).
        real: a batch of real samples (detached here; the gradient is taken with respect to this copy).
        return_logits: also return ``critic(real)`` (for ``0 * logits`` in a penalty-only backward under DDP).
    """
    real = real.detach().requires_grad_(True)
    logits = critic(real)
    penalty = _input_gradient(logits, real).pow(2).sum(dim=1).mean()
    return (penalty, logits) if return_logits else penalty


def path_length_penalty(images: Tensor, ws: Tensor, pl_mean: Tensor, decay: float = 0.01) -> tuple[Tensor, Tensor]:
    """StyleGAN2's path-length penalty (Karras et al. 2020, eq. 4; ``StyleGAN2Loss`` in stylegan2-ada-pytorch).

    ``J^T y`` for a random image-space ``y ~ N(0, I) / sqrt(H W)`` is the gradient of ``sum(images * y)`` with
    respect to ``ws``; its length (squared sum over ``w_dim``, mean over layers, square root) should stay near its
    running mean ``a``, which moves towards this batch's mean length by ``decay``.

    Args:
        images: generated images ``[N, C, H, W]``, made from ``ws`` with the graph kept.
        ws: the style inputs ``[N, L, w_dim]`` the images were made from.
        pl_mean: the running mean ``a`` (a scalar tensor, not modified here).
        decay: how far ``a`` moves towards this batch's mean (0.01).

    Returns the per-sample penalty ``(|J^T y| - a)^2`` (unweighted) and the new running mean (detached).
    """
    noise = torch.randn_like(images) / (images.shape[2] * images.shape[3]) ** 0.5
    (grad,) = torch.autograd.grad(outputs=(images * noise).sum(), inputs=ws, create_graph=True)
    lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
    new_mean = pl_mean.lerp(lengths.mean().to(pl_mean.dtype), decay)
    return (lengths - new_mean).square(), new_mean.detach()


def matching_aware_gradient_penalty(logits: Tensor, images: Tensor, sentences: Tensor, power: float = 6.0) -> Tensor:
    """DF-GAN's MA-GP (Tao et al. 2022): ``E[||(grad_x D(x, s), grad_s D(x, s))||_2 ^ power]`` on real images with
    their own sentence vectors, without its weight (the official k = 2; ``MA_GP`` in tobran/DF-GAN
    ``code/lib/modules.py``, which puts its ``grad_outputs`` on CUDA; this runs on any device).

    Args:
        logits: D's outputs for (``images``, ``sentences``), computed from these very tensors.
        images: the real images, a leaf with ``requires_grad`` (``real.detach().requires_grad_(True)``).
        sentences: their sentence vectors, likewise.
        power: the exponent p (6 in the paper).
    """
    grad_x, grad_s = torch.autograd.grad(outputs=logits.sum(), inputs=(images, sentences), create_graph=True)
    grad = torch.cat([grad_x.flatten(1), grad_s.flatten(1)], dim=1)
    return grad.norm(2, dim=1).pow(power).mean()
