"""Class-conditional generators and discriminators: CGAN (concatenation or projection) and ACGAN.

Built by composition around the plain DCGAN and MLP networks (``backbone: dcgan | mlp``), so the conditional
versions have the same layers, initialisation and size rules as the unconditional ones.

* :class:`ConditionalGenerator`: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets": the label is
  embedded (a learned ``nn.Embedding``, the dense form of the paper's one-hot ``y``) and concatenated with ``z``;
  the backbone then maps ``[z, embed(y)]`` to an image. ACGAN's generator (Odena et al. 2017) is the same, or
  with ``label_input="multiply"`` maps ``z * embed(y)`` (the embedding scales each noise dimension), so that G
  cannot draw a class without using z: with an unconditional D (ACGAN's) a concatenating G can learn to ignore z and
  draw one image per class.
* :class:`ConditionalDiscriminator` with ``mode="concat"``: Mirza & Osindero's joint input. For the DCGAN backbone
  the label embedding is broadcast over the image as extra input channels (the usual convolutional form of the
  paper's MLP, as in most DCGAN-based cGANs); for the MLP backbone it is appended to the flattened image.
* :class:`ConditionalDiscriminator` with ``mode="projection"``: Miyato & Koyama 2018, "cGANs with Projection
  Discriminator": ``D(x, y) = psi(phi(x)) + <embed(y), pool(phi(x))>``, where ``phi`` is the backbone's feature
  trunk, ``psi`` its unconditional head, and ``pool`` a global sum over positions (as in the SNGAN projection
  discriminator); the label never enters the trunk.
* :class:`AuxiliaryClassifierDiscriminator`: Odena et al. 2017, "Conditional Image Synthesis with Auxiliary
  Classifier GANs": one trunk, two heads, ``D(x) -> (source logit, class logits)``; it never sees the label.

Every discriminator returns logits (no sigmoid, no softmax); ``return_features=True`` also returns the trunk's
flattened features (for feature matching).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lightning_gans.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from lightning_gans.networks.mlp import MLPDiscriminator, MLPGenerator

__all__ = [
    "BACKBONES",
    "LABEL_INPUTS",
    "DISCRIMINATOR_MODES",
    "AuxiliaryClassifierDiscriminator",
    "ConditionalDiscriminator",
    "ConditionalGenerator",
]

BACKBONES: tuple[str, ...] = ("dcgan", "mlp")
DISCRIMINATOR_MODES: tuple[str, ...] = ("concat", "projection")
LABEL_INPUTS: tuple[str, ...] = ("concat", "multiply")


def _check_choice(owner: str, what: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{owner}: unknown {what} {value!r}. Valid: {', '.join(choices)}.")
    return value


def _check_labels(owner: str, labels: Tensor | None, n: int, num_classes: int) -> Tensor:
    if labels is None:
        raise ValueError(f"{owner} is class-conditional: pass integer labels in [0, {num_classes})")
    if labels.shape != (n,):
        raise ValueError(f"{owner}: expected labels of shape ({n},), got {tuple(labels.shape)}")
    return labels.long()


class ConditionalGenerator(nn.Module):
    """``(z, y) -> image``: the backbone generator on ``[z, embed(y)]`` (or on ``z * embed(y)``).

    Args:
        latent_dim: size of z.
        num_classes: number of classes (labels are integers in ``[0, num_classes)``).
        image_shape: (C, H, W) of the images (a size the backbone can make: 28, 32, 64, ... for DCGAN).
        embed_dim: size of the label embedding concatenated with z (``multiply``: ignored, it is latent_dim).
        backbone: ``dcgan`` (transposed convolutions, batch norm) or ``mlp`` (fully connected).
        base_channels: DCGAN: channels of the last hidden layer (ngf).
        hidden_dims: MLP: widths of the hidden layers.
        label_input: ``concat`` (``[z, embed(y)]``) or ``multiply`` (``z * embed(y)``, the embedding one scale per
            noise dimension).
    """

    def __init__(
        self,
        latent_dim: int = 100,
        num_classes: int = 10,
        image_shape: tuple[int, ...] = (1, 28, 28),
        embed_dim: int = 50,
        backbone: str = "dcgan",
        base_channels: int = 64,
        hidden_dims: tuple[int, ...] = (256, 512, 1024),
        label_input: str = "concat",
    ) -> None:
        super().__init__()
        _check_choice("ConditionalGenerator", "backbone", backbone, BACKBONES)
        self.label_input = _check_choice("ConditionalGenerator", "label_input", label_input, LABEL_INPUTS)
        if num_classes < 1 or embed_dim < 1:
            raise ValueError(
                f"ConditionalGenerator needs num_classes >= 1 and embed_dim >= 1, got {num_classes}, {embed_dim}"
            )
        self.num_classes = num_classes
        if label_input == "multiply":  # one scale per noise dimension
            embed_dim = latent_dim
        in_dim = latent_dim if label_input == "multiply" else latent_dim + embed_dim
        self.embedding = nn.Embedding(num_classes, embed_dim)
        if backbone == "dcgan":
            self.net: nn.Module = DCGANGenerator(in_dim, tuple(image_shape), base_channels)
        else:
            self.net = MLPGenerator(in_dim, tuple(image_shape), tuple(hidden_dims))

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        labels = _check_labels("ConditionalGenerator", labels, z.shape[0], self.num_classes)
        if self.label_input == "multiply":
            return self.net(z.flatten(1) * self.embedding(labels))
        return self.net(torch.cat([z.flatten(1), self.embedding(labels)], dim=1))


class ConditionalDiscriminator(nn.Module):
    """``(x, y) -> logit``, the label joined by concatenation (CGAN) or by projection (Miyato & Koyama).

    Args:
        image_shape: (C, H, W) of the images.
        num_classes: number of classes.
        mode: ``concat`` (label embedding as extra input: channels for DCGAN, features for MLP) or ``projection``.
        embed_dim: concat: size of the label embedding (projection embeds into the trunk's feature width).
        backbone: ``dcgan`` or ``mlp``.
        base_channels: DCGAN: channels of the first layer (ndf).
        batch_norm: DCGAN: batch norm after every convolution but the first.
        hidden_dims: MLP: widths of the hidden layers.
        dropout: MLP: dropout after each hidden layer.
    """

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 28, 28),
        num_classes: int = 10,
        mode: str = "concat",
        embed_dim: int = 10,
        backbone: str = "dcgan",
        base_channels: int = 64,
        batch_norm: bool = True,
        hidden_dims: tuple[int, ...] = (512, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_choice("ConditionalDiscriminator", "backbone", backbone, BACKBONES)
        _check_choice("ConditionalDiscriminator", "mode", mode, DISCRIMINATOR_MODES)
        if num_classes < 1 or embed_dim < 1:
            raise ValueError(
                f"ConditionalDiscriminator needs num_classes >= 1 and embed_dim >= 1, got {num_classes}, {embed_dim}"
            )
        image_shape = tuple(image_shape)
        self.num_classes, self.mode, self.backbone = num_classes, mode, backbone
        extra = embed_dim if mode == "concat" else 0
        if backbone == "dcgan":
            trunk_input: tuple[int, ...] = (image_shape[0] + extra, *image_shape[1:])
            self.net: nn.Module = DCGANDiscriminator(trunk_input, base_channels, batch_norm)
            feature_dim = self.net.head.in_channels
        else:
            trunk_input = (math.prod(image_shape) + extra,)
            self.net = MLPDiscriminator(trunk_input, tuple(hidden_dims), dropout)
            feature_dim = self.net.head.in_features
        if mode == "concat":
            self.embedding = nn.Embedding(num_classes, embed_dim)
        else:
            self.embedding = nn.Embedding(num_classes, feature_dim)
            nn.init.xavier_uniform_(self.embedding.weight)

    def forward(self, x: Tensor, labels: Tensor | None = None, return_features: bool = False):
        labels = _check_labels("ConditionalDiscriminator", labels, x.shape[0], self.num_classes)
        if self.mode == "concat":
            y = self.embedding(labels)
            if self.backbone == "dcgan":
                x = torch.cat([x, y[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
            else:
                x = torch.cat([x.flatten(1), y], dim=1)
            return self.net(x, return_features=return_features)
        features = self.net.features(x if self.backbone == "dcgan" else x.flatten(1))
        pooled = features.sum(dim=(2, 3)) if features.dim() == 4 else features
        logits = self.net.head(features).flatten() + (self.embedding(labels) * pooled).sum(dim=1)
        return (logits, features.flatten(1)) if return_features else logits


class AuxiliaryClassifierDiscriminator(nn.Module):
    """``x -> (source logit, class logits)``: a DCGAN trunk with a real/fake head and a classifier head (ACGAN).

    Args:
        image_shape: (C, H, W) of the images.
        num_classes: number of classes the auxiliary head predicts.
        base_channels: channels of the first layer (ndf).
        batch_norm: batch norm after every convolution but the first.
        twin_head: add a second classifier head on the same trunk, ``self.twin_head(features) -> class logits``
            (TAC-GAN's twin classifier, which learns the classes of generated images); ``self.twin_head`` is None
            without it.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        base_channels: int = 64,
        batch_norm: bool = True,
        twin_head: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"AuxiliaryClassifierDiscriminator needs num_classes >= 1, got {num_classes}")
        self.num_classes = num_classes
        trunk = DCGANDiscriminator(tuple(image_shape), base_channels, batch_norm)
        self.features = trunk.features
        self.source_head = trunk.head  # conv over the whole last map -> one logit, as DCGAN's head
        channels, size = trunk.head.in_channels, trunk.head.kernel_size[0]
        self.class_head = nn.Linear(channels * size * size, num_classes)
        self.twin_head = nn.Linear(channels * size * size, num_classes) if twin_head else None
        for head in (self.class_head, self.twin_head):
            if head is not None:
                nn.init.normal_(head.weight, 0.0, 0.02)
                nn.init.zeros_(head.bias)

    def forward(self, x: Tensor, return_features: bool = False):
        features = self.features(x)
        source = self.source_head(features).flatten()
        classes = self.class_head(features.flatten(1))
        return (source, classes, features.flatten(1)) if return_features else (source, classes)
