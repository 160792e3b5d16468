"""Weight initialisation and normalisation-layer helpers shared by the image-to-image networks.

`init_weights` follows `init_weights` in the official pix2pix/CycleGAN code
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py) and `BaseNetwork.init_weights` in the official GauGAN
code (NVlabs/SPADE): the weights of every convolution, transposed convolution and linear layer are drawn from
N(0, gain) ("normal", pix2pix and CycleGAN use gain 0.02), Xavier-normal with that gain ("xavier", SPADE's default
with gain 0.02), Kaiming-normal (fan-in, gain unused) or orthogonal with that gain; their biases are zeroed. Affine
batch-norm layers get scale ~ N(1, gain) and zero shift.

Deviation: the official code reaches spectrally normalised layers through the old hook-based `spectral_norm`
(whose `weight.data` aliases the raw weight); here layers use `torch.nn.utils.parametrizations.spectral_norm`, so
the raw weight (`parametrizations.weight.original`) is initialised, and the power-iteration vectors are then
refreshed so that the first forward pass already divides by the right spectral norm.

`norm_layer(name)` is the counterpart of the official `get_norm_layer`: "batch" is `BatchNorm2d` with a learned
scale and shift, "instance" is `InstanceNorm2d` without affine parameters and without running statistics (the
official code's current default), "none" is the identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

NormName = Literal["batch", "instance", "none"]
InitType = Literal["normal", "xavier", "kaiming", "orthogonal"]

NORM_NAMES: tuple[str, ...] = ("batch", "instance", "none")
INIT_TYPES: tuple[str, ...] = ("normal", "xavier", "kaiming", "orthogonal")

# Power iterations that re-estimate the singular vectors of a spectrally normalised weight after re-initialisation
# (the same number PyTorch runs when the parametrisation is registered).
_SPECTRAL_REFRESH_ITERATIONS = 15


def norm_layer(name: str) -> Callable[[int], nn.Module]:
    """A factory `num_features -> normalisation module` for 2-d feature maps.

    Args:
        name: "batch" (BatchNorm2d, learned scale and shift, running statistics for eval mode),
            "instance" (InstanceNorm2d, no affine parameters, no running statistics: the same in train and eval
            mode) or "none" (nn.Identity).

    Returns:
        A callable that takes the number of channels and returns a fresh module.

    Raises:
        ValueError: for any other name.
    """
    if name == "batch":
        return lambda num_features: nn.BatchNorm2d(num_features, affine=True)
    if name == "instance":
        return lambda num_features: nn.InstanceNorm2d(num_features, affine=False, track_running_stats=False)
    if name == "none":
        return lambda num_features: nn.Identity()
    raise ValueError(f"unknown norm {name!r}: choose one of {', '.join(NORM_NAMES)}")


def conv_bias(norm: str) -> bool:
    """Whether a convolution followed by `norm` should have a bias.

    A batch-norm layer's shift makes the bias redundant, so it is dropped, as in the official code. The official
    code also drops it when there is no norm at all (its "none" keeps `use_bias=False`), which leaves those layers
    without any offset; here layers without a norm keep their bias. Instance norm keeps the bias like the official
    code does (it is redundant there too, but dropping it would change the official parameter counts).
    """
    if norm not in NORM_NAMES:
        raise ValueError(f"unknown norm {norm!r}: choose one of {', '.join(NORM_NAMES)}")
    return norm != "batch"


_WEIGHTED_LAYERS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)


def _raw_weight(module: nn.Module) -> torch.Tensor | None:
    """The tensor that holds a layer's trainable weight: the original of a parametrised weight, else the weight."""
    if parametrize.is_parametrized(module, "weight"):
        return getattr(module.parametrizations.weight, "original", None)
    return getattr(module, "weight", None)


def _refresh_parametrization(module: nn.Module) -> None:
    """Recompute the power-iteration state of a parametrised weight (spectral norm) from its new raw weight.

    Each access of `module.weight` in training mode runs one power iteration, so a few accesses converge the
    singular-vector estimates; eval mode would reuse the stale ones.
    """
    parametrizations = module.parametrizations.weight
    was_training = parametrizations.training
    parametrizations.train()
    with torch.no_grad():
        for _ in range(_SPECTRAL_REFRESH_ITERATIONS):
            module.weight  # noqa: B018 - the access itself runs the power iteration
    parametrizations.train(was_training)


@torch.no_grad()
def init_weights(module: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise every conv / transposed-conv / linear layer and every affine batch norm inside `module`.

    Args:
        module: the network (initialised in place, recursively).
        init_type: "normal" (N(0, gain), pix2pix/CycleGAN), "xavier" (Xavier-normal with `gain`, SPADE),
            "kaiming" (Kaiming-normal, fan-in, `gain` unused) or "orthogonal" (with `gain`).
        gain: the standard deviation for "normal", the gain for "xavier" and "orthogonal", and the standard
            deviation of batch-norm scales around 1.

    Returns:
        The same module, for chaining.

    Raises:
        ValueError: for an unknown `init_type`.
    """
    if init_type not in INIT_TYPES:
        raise ValueError(f"unknown init_type {init_type!r}: choose one of {', '.join(INIT_TYPES)}")
    for layer in module.modules():
        if isinstance(layer, _WEIGHTED_LAYERS):
            weight = _raw_weight(layer)
            if weight is not None:
                if init_type == "normal":
                    nn.init.normal_(weight, 0.0, gain)
                elif init_type == "xavier":
                    nn.init.xavier_normal_(weight, gain=gain)
                elif init_type == "kaiming":
                    nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
                else:
                    nn.init.orthogonal_(weight, gain=gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
            if parametrize.is_parametrized(layer, "weight"):
                _refresh_parametrization(layer)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.affine:
            nn.init.normal_(layer.weight, 1.0, gain)
            nn.init.zeros_(layer.bias)
    return module
