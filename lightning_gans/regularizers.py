"""Discriminator regularisers as plain functions: WGAN-GP's gradient penalty, R1 and DF-GAN's MA-GP.

Both differentiate the discriminator's output with respect to its *input* (``create_graph=True``), so their
value can be added to the discriminator loss and back-propagated in the same backward pass. Under DDP that keeps
one backward per step, which is what DistributedDataParallel supports.
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


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): ``E[||grad_x D(x)||^2]`` on real samples, without its gamma/2 weight.

    Args:
        critic: maps a batch of samples to logits (a closure when D takes more inputs).
        real: a batch of real samples (detached here; the gradient is taken with respect to this copy).
    """
    real = real.detach().requires_grad_(True)
    grad = _input_gradient(critic(real), real)
    return grad.pow(2).sum(dim=1).mean()


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
