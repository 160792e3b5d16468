"""Perceptual losses: VGG19 features (the super-resolution GANs, GauGAN), and two that need no pretrained network.

**VGG19 features** (SRGAN's content loss, ESRGAN's perceptual loss): the feature map of one layer of torchvision's
ImageNet VGG19, compared between the output and its target. Layers are named as in the papers and BasicSR's
``VGGFeatureExtractor``: ``conv5_4`` is the 16th convolution *before* its ReLU (ESRGAN: "features before
activation", BasicSR's ``'conv5_4': 1  # before relu``), ``relu5_4`` the same after the ReLU (SRGAN's VGG54: "the
4th convolution (after activation) before the 5th maxpooling layer"), ``relu2_2`` SRGAN's VGG22. Images in [-1, 1]
are mapped to [0, 1] and normalised with the ImageNet mean and std, the input torchvision's weights were trained on
(BasicSR's ``use_input_norm: true``; lightning-bolts' SRGAN fed [-1, 1] images unnormalised). The network is truncated
after the layer, frozen, kept in eval mode and held outside the model's module tree: never in checkpoints, never
wrapped by DDP.

**The weights are never downloaded during training.** :func:`resolve_vgg_weights` takes a local file (any
``torch.save``-d torchvision VGG19 state dict; only its ``features.*`` tensors are read) or torchvision's cache
file ``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``, which ``torchvision.models.vgg19(weights="IMAGENET1K_V1")``
writes once on a machine with internet; without either, a FileNotFoundError names both fixes and the weight-free
options. The families call it at ``setup`` of a fit, so a checkpoint trained with VGG still loads, samples and
predicts on a machine without the weights.

**Weight-free options** that work offline:

- ``d_features``: :func:`lightning_gans.losses.paired_feature_matching_loss`, the L1 between the discriminator's
  features of each output and of its own target (pix2pixHD's feature matching; the discriminator, trained with
  the model, plays VGG's part);
- ``ssim``: ``1 - SSIM`` on RGB in [0, 1] (:func:`lightning_gans.metrics.superres.ssim`; Zhao et al. 2017, "Loss
  Functions for Image Restoration with Neural Networks"), which rewards local structure and contrast rather than
  per-pixel agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gans.losses import paired_feature_matching_loss
from lightning_gans.metrics.superres import ssim, to_unit
from lightning_gans.options import OptionGroup

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
CRITERIA = ("l1", "mse")


def _vgg19_layer_names() -> tuple[str, ...]:
    """Names of the modules of torchvision's ``vgg19().features``, in order: conv1_1, relu1_1, conv1_2, ..., pool5."""
    names, block, index = [], 1, 1
    for item in _VGG19_CONFIG:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return tuple(names)


VGG19_LAYERS: tuple[str, ...] = _vgg19_layer_names()


def vgg19_features(up_to: str) -> nn.Sequential:
    """torchvision's VGG19 ``features`` (same module indices, so its state-dict keys load) truncated after ``up_to``."""
    if up_to not in VGG19_LAYERS:
        convs = [n for n in VGG19_LAYERS if not n.startswith("pool")]
        raise ValueError(f"unknown VGG19 layer {up_to!r}; valid: {', '.join(convs)}")
    layers: list[nn.Module] = []
    in_ch = 3
    for item in _VGG19_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, item, 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = item
    return nn.Sequential(*layers[: VGG19_LAYERS.index(up_to) + 1])


#: What a family can use instead of VGG (the end of the missing-weights message).
WEIGHT_FREE = {
    "GauGAN": "or turn the VGG loss off: model.init_args.lambda_vgg: 0 (the discriminator feature matching, "
    "lambda_d_features, stays on)",
}


def resolve_vgg_weights(path: str | None, family: str = "this model") -> Path:
    """The VGG19 weight file: ``path`` when given, else torchvision's cache file; a FileNotFoundError naming the fixes
    (a local path, torchvision's cache, or the family's weight-free options) when there is none."""
    group = "" if family in WEIGHT_FREE else "content."  # SRGAN/ESRGAN hold these options in their content group
    options = WEIGHT_FREE.get(
        family,
        "or use the weight-free perceptual options instead: model.init_args.content.lambda_vgg: 0 with "
        "content.lambda_d_features (discriminator feature matching) and/or content.lambda_ssim (1 - SSIM)",
    )
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise FileNotFoundError(
                f"{family}: {group}vgg_weights={path!r}: no such file (resolved to {file.resolve()}); give the path "
                f"of a torchvision VGG19 state dict ({VGG19_FILE}), {options}."
            )
        return file
    file = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{family}: {group}lambda_vgg > 0 turns on the VGG19 perceptual loss, which needs torchvision's ImageNet "
            f"VGG19 weights, and they are not on this machine (looked for {file}; nothing is downloaded during "
            "training). "
            'On a machine with internet access run `python -c "import torchvision; '
            "torchvision.models.vgg19(weights='IMAGENET1K_V1')\"`, which writes that file (copy it here), or pass "
            f"model.init_args.{group}vgg_weights: PATH to a copy of {VGG19_FILE}; {options}."
        )
    return file


class VGGFeatures(nn.Module):
    """Frozen torchvision VGG19 truncated after its last requested layer: images in [-1, 1] -> feature maps.

    Args:
        layer: the layer whose output is returned (``conv5_4``, ``relu5_4``, ``relu2_2``...; see the module docstring),
            or a sequence of layers, whose outputs are returned as a list (GauGAN's relu1_1..relu5_1).
        weights: a VGG19 state dict, or the path of a file holding one (torchvision's keys, ``features.N.weight``).
        input_norm: map [-1, 1] to [0, 1] and normalise with ImageNet's mean and std (BasicSR's ``use_input_norm``,
            the SR families); False feeds the images as they are (the official SPADE/GauGAN VGG loss).
    """

    def __init__(self, layer: str | Sequence[str], weights: str | Path | dict[str, Tensor], input_norm: bool = True):
        super().__init__()
        self.layer = layer
        layers = [layer] if isinstance(layer, str) else list(layer)
        for name in layers:
            vgg19_features(name)  # validates the name
        self.outputs = [VGG19_LAYERS.index(name) for name in layers]
        self.features = vgg19_features(VGG19_LAYERS[max(self.outputs)])
        self.input_norm = input_norm
        state = weights if isinstance(weights, dict) else _load_state(Path(weights))
        wanted = {f"features.{k}": k for k in self.features.state_dict()}
        missing = sorted(set(wanted) - set(state))
        if missing:
            raise ValueError(
                f"{weights if not isinstance(weights, dict) else 'the state dict'} is not a torchvision VGG19 state "
                f"dict: it lacks {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''} (expected the keys of "
                f"torchvision.models.vgg19().state_dict(), as in {VGG19_FILE})"
            )
        self.features.load_state_dict({k: state[key].float().clone() for key, k in wanted.items()})
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> VGGFeatures:  # always in eval mode
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        if x.shape[1] != 3:
            raise ValueError(f"VGG19 features need RGB images, got {x.shape[1]} channels")
        if self.input_norm:
            x = ((x + 1) / 2 - self.mean) / self.std
        if isinstance(self.layer, str):
            return self.features(x)
        out = []
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.outputs:
                out.append(x)
        return out


def _load_state(path: Path) -> dict[str, Tensor]:
    try:  # memory-mapped: the classifier's 120M parameters are never read
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a file in the legacy (non-zip) format cannot be mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def load_vgg(layer: str | Sequence[str], path: str | None, family: str, input_norm: bool = True) -> VGGFeatures:
    """:class:`VGGFeatures` of ``layer`` from ``path`` or torchvision's cache (see :func:`resolve_vgg_weights`)."""
    return VGGFeatures(layer, resolve_vgg_weights(path, family), input_norm=input_norm)


def criterion(name: str, a: Tensor, b: Tensor) -> Tensor:
    """``l1`` or ``mse`` between ``a`` and ``b`` (means over all elements)."""
    if name == "l1":
        return F.l1_loss(a, b)
    if name == "mse":
        return F.mse_loss(a, b)
    raise ValueError(f"unknown criterion {name!r}; valid: {', '.join(CRITERIA)}")


def vgg_loss(vgg: VGGFeatures, fake: Tensor, real: Tensor, kind: str = "l1") -> Tensor:
    """``kind`` (l1 or mse) between the VGG features of ``fake`` and of ``real`` (the latter without gradient)."""
    with torch.no_grad():
        target = vgg(real)
    return criterion(kind, vgg(fake), target)


def ssim_loss(fake: Tensor, real: Tensor) -> Tensor:
    """``1 - SSIM`` (RGB, mean over images) of images in [-1, 1], mapped to [0, 1] without rounding."""
    return 1.0 - ssim(to_unit(fake, quantize=False), to_unit(real, quantize=False).detach()).mean()


@dataclass(frozen=True)
class ContentLoss(OptionGroup):
    """The content terms of a super-resolution G loss (SRGAN's "content loss", ESRGAN's perceptual + pixel terms), each
    off at weight 0; one typed option group, set in a config as ``content: {lambda_vgg: 0, lambda_ssim: 1}`` or on the
    command line as ``--model.init_args.content.lambda_ssim 1``. Each family has its own defaults (its paper's).

    Args:
        lambda_vgg: weight of the VGG19 feature loss (needs the weights, see vgg_weights; 0 = off).
        vgg_layer: VGG19 layer compared ("relu5_4" = SRGAN's VGG54, "relu2_2" = VGG22, "conv5_4" = ESRGAN's, before
            the activation).
        vgg_criterion: "l1" or "mse" between the feature maps.
        vgg_weights: the VGG19 weight file; None: torchvision's cache file (never downloaded during training).
        lambda_pixel: weight of the pixel loss (0 = off).
        pixel_loss: "mse" or "l1".
        lambda_d_features: weight of D feature matching, the L1 between D's features of each output and of its target
            (no pretrained network needed; 0 = off).
        lambda_ssim: weight of 1 - SSIM (no pretrained network needed; 0 = off).
    """

    lambda_vgg: float = 1.0
    vgg_layer: str = "relu5_4"
    vgg_criterion: str = "mse"
    vgg_weights: str | None = None
    lambda_pixel: float = 0.0
    pixel_loss: str = "mse"
    lambda_d_features: float = 0.0
    lambda_ssim: float = 0.0

    _group = "content"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("lambda_vgg", "lambda_pixel", "lambda_d_features", "lambda_ssim"):
            if getattr(self, name) < 0:
                raise ValueError(f"content.{name} must be 0 (off) or positive, got {getattr(self, name)}")
        for name in ("vgg_criterion", "pixel_loss"):
            if getattr(self, name) not in CRITERIA:
                raise ValueError(f"unknown content.{name} {getattr(self, name)!r}; valid: {', '.join(CRITERIA)}")
        if self.vgg_layer not in VGG19_LAYERS:
            raise ValueError(f"unknown content.vgg_layer {self.vgg_layer!r}; valid: {', '.join(VGG19_LAYERS)}")

    def weights(self) -> dict[str, float]:
        """The weights of the terms, by option name (for :func:`lightning_gans.superres.check_loss_weights`)."""
        return {k: getattr(self, k) for k in ("lambda_vgg", "lambda_pixel", "lambda_d_features", "lambda_ssim")}

    def terms(
        self,
        fake: Tensor,
        real: Tensor,
        *,
        vgg: VGGFeatures | None = None,
        fake_features: list[Tensor] | None = None,
        real_features: list[Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``(weighted sum, {"g_vgg", "g_pixel", "g_d_features", "g_ssim"})`` of the terms that are on, through
        :func:`perceptual_terms`."""
        return perceptual_terms(
            fake,
            real,
            lambda_vgg=self.lambda_vgg,
            vgg=vgg,
            vgg_criterion=self.vgg_criterion,
            lambda_pixel=self.lambda_pixel,
            pixel_loss=self.pixel_loss,
            lambda_d_features=self.lambda_d_features,
            fake_features=fake_features,
            real_features=real_features,
            lambda_ssim=self.lambda_ssim,
        )


def perceptual_terms(
    fake: Tensor,
    real: Tensor,
    *,
    lambda_vgg: float = 0.0,
    vgg: VGGFeatures | None = None,
    vgg_criterion: str = "l1",
    lambda_pixel: float = 0.0,
    pixel_loss: str = "l1",
    lambda_d_features: float = 0.0,
    fake_features: list[Tensor] | None = None,
    real_features: list[Tensor] | None = None,
    lambda_ssim: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The content part of a super-resolution G loss: ``lambda_vgg * VGG + lambda_pixel * pixel + lambda_d_features *
    D features + lambda_ssim * (1 - SSIM)``, each term computed only when its weight is positive.

    Returns ``(weighted sum, {"g_vgg": ..., "g_pixel": ..., "g_d_features": ..., "g_ssim": ...})``, the unweighted
    terms that are on (for the logs). ``fake_features``/``real_features`` are the discriminator's per-layer features of
    the outputs and of the targets (``D(x, return_features=True)[1]``).
    """
    total = fake.new_zeros((), dtype=torch.float32)
    terms: dict[str, Any] = {}
    if lambda_vgg > 0:
        if vgg is None:
            raise RuntimeError("lambda_vgg > 0 but no VGG network was loaded (the family loads it at setup)")
        terms["g_vgg"] = vgg_loss(vgg, fake, real, vgg_criterion)
        total = total + lambda_vgg * terms["g_vgg"]
    if lambda_pixel > 0:
        terms["g_pixel"] = criterion(pixel_loss, fake.float(), real)
        total = total + lambda_pixel * terms["g_pixel"]
    if lambda_d_features > 0:
        if fake_features is None or real_features is None:
            raise RuntimeError("lambda_d_features > 0 needs the discriminator's features of outputs and targets")
        terms["g_d_features"] = paired_feature_matching_loss(real_features, fake_features)
        total = total + lambda_d_features * terms["g_d_features"]
    if lambda_ssim > 0:
        terms["g_ssim"] = ssim_loss(fake, real)
        total = total + lambda_ssim * terms["g_ssim"]
    return total, terms


__all__ = [
    "CRITERIA",
    "ContentLoss",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG19_FILE",
    "VGG19_LAYERS",
    "VGGFeatures",
    "criterion",
    "load_vgg",
    "perceptual_terms",
    "resolve_vgg_weights",
    "ssim_loss",
    "vgg19_features",
    "vgg_loss",
]
