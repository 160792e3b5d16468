"""Discriminator regularisers as plain functions: WGAN-GP's gradient penalty and R1.

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
