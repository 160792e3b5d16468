"""Metrics of text-to-image models: R-precision and caption faithfulness (MNIST digits and strokes, CelebA attributes).

- **R-precision** (AttnGAN, Xu et al. 2018): for each generated image, its caption and 99 other captions (here:
  drawn from the validation captions, never with the same text) are ranked by the cosine similarity of their
  sentence vector with the image's vector; the score is the share of images whose own caption ranks first (chance: 1%).
  The vectors come from an *evaluation* encoder pair (a :class:`~lightning_gans.text_encoder.TextEncoderPretraining`
  trained apart from, e.g. with another seed than, the one the GAN was conditioned on), so the generator cannot score by
  exploiting its own encoder. Real images with their captions give the ceiling.
- **Faithfulness**: a classifier checks what the caption says. MNIST captions (:func:`mnist_faithfulness`): the
  project's MNIST classifier must read the caption's digit (``digit_accuracy``); the stroke measured as the captions
  measure it must agree with "thick"/"thin" (above / below the digit's median thickness in the training digits) and
  with the slant words ("slanted to the right": shear above 0.075, the middle of the two caption thresholds; "to the
  left": below it; "upright": within 0.15 of 0). CelebA captions (:func:`attribute_faithfulness`): an attribute
  classifier trained on the real training faces (:class:`AttributeClassifier`, :func:`train_attribute_classifier`)
  must find each attribute a caption mentions with the value it says (micro average over mentions).

Every score is reported with its **ceiling** (the same check on real images with their own captions: the
classifier's accuracy on real data) and its **floor** (the generated images checked against shuffled captions:
what a generator that ignores the text scores). ``benchmarks/text2image_eval.py`` computes them all.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gans.metrics.mnist_classifier import load_classifier


# ------------------------------------------------------------------------------------------------ R-precision
def draw_negatives(texts: Sequence[str], pool: Sequence[str], k: int = 99, seed: int = 0) -> list[list[int]]:
    """For each text, ``k`` indices into ``pool`` whose text differs from it (with replacement when the pool has
    fewer than ``k`` other texts)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for text in texts:
        others = [j for j, p in enumerate(pool) if p != text]
        if not others:
            raise ValueError(f"no caption in the pool differs from {text!r}: R-precision needs other captions")
        if len(others) >= k:
            picks = torch.randperm(len(others), generator=gen)[:k]
        else:
            picks = torch.randint(len(others), (k,), generator=gen)
        out.append([others[int(i)] for i in picks])
    return out


def r_precision(image_vectors: Tensor, caption_vectors: Tensor, negative_vectors: Tensor) -> float:
    """Share of images whose own caption is more similar (cosine) than each of its negatives.

    Args:
        image_vectors: Float[N, D].
        caption_vectors: Float[N, D], the vector of each image's own caption.
        negative_vectors: Float[N, K, D], K other captions per image.
    """
    img = F.normalize(image_vectors, dim=-1)
    own = (img * F.normalize(caption_vectors, dim=-1)).sum(-1)
    others = torch.einsum("nd,nkd->nk", img, F.normalize(negative_vectors, dim=-1))
    return float((own[:, None] > others).all(dim=1).float().mean())


@torch.no_grad()
def r_precision_of(
    encoder: Any,
    images: Tensor,
    texts: Sequence[str],
    pool: Sequence[str],
    k: int = 99,
    seed: int = 0,
    batch_size: int = 500,
) -> float:
    """R-precision of ``images`` (each made from ``texts[i]``) through an evaluation ``encoder``
    (:class:`~lightning_gans.text_encoder.TextEncoderPretraining`), negatives from ``pool``."""
    vocab, length = encoder.vocab, 32

    def text_vectors(strings: Sequence[str]) -> Tensor:
        chunks = [
            encoder.embed_text(vocab.encode_batch(list(strings[i : i + batch_size]), length, "captions"))
            for i in range(0, len(strings), batch_size)
        ]
        return torch.cat(chunks).cpu()

    image_vectors = torch.cat(
        [encoder.embed_images(images[i : i + batch_size]).cpu() for i in range(0, len(images), batch_size)]
    )
    unique = sorted(set(texts) | set(pool))
    table = dict(zip(unique, text_vectors(unique)))
    negatives = draw_negatives(texts, pool, k, seed)
    own = torch.stack([table[t] for t in texts])
    neg = torch.stack([torch.stack([table[pool[j]] for j in row]) for row in negatives])
    return r_precision(image_vectors, own, neg)


# ------------------------------------------------------------------------------------------------ MNIST captions
#: Slant agreement: "right" above, "left" below the middle of the caption thresholds; "upright" within this of 0.
SLANT_SPLIT, UPRIGHT_TOLERANCE = 0.075, 0.15


def to_uint8_digits(images: Tensor) -> Tensor:
    """[-1, 1] images (N, 1|3, H, W) -> uint8 grey 28x28 digits [N, 28, 28], as saved to PNG and resized."""
    x = images.float()
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    if tuple(x.shape[-2:]) != (28, 28):
        x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).squeeze(1)


@torch.no_grad()
def mnist_faithfulness(
    images: Tensor, facts: Sequence[dict], rules: Any, classifier: nn.Module | None = None, batch_size: int = 1000
) -> dict[str, float]:
    """Digit accuracy and thickness/slant agreement of digit images with the facts of their captions.

    Args:
        images: Float[N, 1, H, W] in [-1, 1].
        facts: per image, what its caption says (``{"digit": 7, "thickness": "thick", "slant": "right"}``).
        rules: the datamodule's :class:`~datamodules.captions.MNISTCaptionRules` (per-digit median thickness).
        classifier: the MNIST classifier (default: the project's, :func:`load_classifier`).

    Returns ``digit_accuracy``, ``thickness_agreement``, ``slant_agreement`` and how many captions mention each.
    """
    from datamodules.captions import measure_digits

    if len(images) != len(facts):
        raise ValueError(f"{len(images)} images but {len(facts)} captions")
    net = classifier if classifier is not None else load_classifier()[0]
    digits = to_uint8_digits(images)
    predicted = torch.cat(
        [
            net(digits[i : i + batch_size].unsqueeze(1).float() / 127.5 - 1)[1].argmax(1)
            for i in range(0, len(digits), batch_size)
        ]
    )
    measures = measure_digits(digits)
    right_digit, thick_ok, slant_ok = [], [], []
    for i, f in enumerate(facts):
        d = int(f["digit"])
        right_digit.append(int(predicted[i]) == d)
        if "thickness" in f:
            above = float(measures["thickness"][i]) > rules.thickness_median[d]
            thick_ok.append(above == (f["thickness"] == "thick"))
        if "slant" in f:
            s = float(measures["slant"][i])
            ok = {"right": s > SLANT_SPLIT, "left": s < SLANT_SPLIT, "upright": abs(s) < UPRIGHT_TOLERANCE}
            slant_ok.append(ok[f["slant"]])

    def mean(xs: list[bool]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    return {
        "digit_accuracy": mean(right_digit),
        "thickness_agreement": mean(thick_ok),
        "slant_agreement": mean(slant_ok),
        "num_thickness": float(len(thick_ok)),
        "num_slant": float(len(slant_ok)),
    }


# ------------------------------------------------------------------------------------------------ CelebA captions
class AttributeClassifier(nn.Module):
    """Faces in [-1, 1] -> 40 attribute logits: strided 3x3 convolutions (batch norm, ReLU) pooled to a vector.

    Args:
        image_shape: (C, H, W) of the faces.
        num_attributes: outputs (CelebA: 40).
        base_channels: channels of the first layer, doubled per stage (at most 8x).
    """

    def __init__(
        self, image_shape: tuple[int, int, int] = (3, 64, 64), num_attributes: int = 40, base_channels: int = 32
    ) -> None:
        super().__init__()
        self.config = {
            "image_shape": list(image_shape),
            "num_attributes": num_attributes,
            "base_channels": base_channels,
        }
        channels, size = image_shape[0], image_shape[1]
        layers: list[nn.Module] = []
        ch, out = channels, base_channels
        while size > 4:
            layers += [nn.Conv2d(ch, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
            ch, out, size = out, min(out * 2, base_channels * 8), (size + 1) // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(ch, num_attributes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def train_attribute_classifier(
    images: Tensor, attributes: Tensor, epochs: int = 8, batch_size: int = 128, lr: float = 2e-3, seed: int = 0
) -> AttributeClassifier:
    """Train :class:`AttributeClassifier` on real faces (Float[N, 3, S, S] in [-1, 1]) and their 0/1 attributes
    (Long[N, 40]) with binary cross-entropy and horizontal flips; returns it in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = AttributeClassifier(tuple(images.shape[1:]), attributes.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * max(1, len(images) // batch_size))
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images) - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            x = images[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = F.binary_cross_entropy_with_logits(net(x), attributes[idx].float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval().requires_grad_(False)


def save_attribute_classifier(net: AttributeClassifier, path: str | os.PathLike, record: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": "lightning_gans.attribute_classifier/1",
            "config": net.config,
            "state_dict": net.state_dict(),
            **record,
        },
        path,
    )


def load_attribute_classifier(path: str | os.PathLike) -> tuple[AttributeClassifier, dict]:
    record = torch.load(path, map_location="cpu", weights_only=True)
    if record.get("format") != "lightning_gans.attribute_classifier/1":
        raise ValueError(f"'{path}' is not an attribute classifier of lightning-gans")
    cfg = record["config"]
    net = AttributeClassifier(tuple(cfg["image_shape"]), cfg["num_attributes"], cfg["base_channels"])
    net.load_state_dict(record["state_dict"])
    return net.eval().requires_grad_(False), record


@torch.no_grad()
def predict_attributes(net: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """Bool[N, A]: the classifier's attributes of images in [-1, 1] (resized to its input size when needed)."""
    size = net.config["image_shape"][1] if hasattr(net, "config") else images.shape[-1]
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].float()
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(net(x) > 0)
    return torch.cat(out)


def attribute_faithfulness(predicted: Tensor, facts: Sequence[dict], names: Sequence[str]) -> dict[str, float]:
    """Share of the (attribute, value) mentions of the captions that the classifier finds in their images.

    Args:
        predicted: Bool[N, A] attributes the classifier sees in each image (:func:`predict_attributes`).
        facts: per image, the attributes its caption mentions and their values (``{"Male": 0, "Smiling": 1}``).
        names: the A attribute names in the classifier's order.
    Returns ``attribute_accuracy`` (all mentions), ``gender_accuracy`` (``Male``) and ``other_accuracy`` (the
    rest), with the count of mentions.
    """
    column = {n: i for i, n in enumerate(names)}
    hits, gender, other = [], [], []
    for i, f in enumerate(facts):
        for name, value in f.items():
            ok = bool(predicted[i, column[name]]) == bool(value)
            hits.append(ok)
            (gender if name == "Male" else other).append(ok)

    def mean(xs: list[bool]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    return {
        "attribute_accuracy": mean(hits),
        "gender_accuracy": mean(gender),
        "other_accuracy": mean(other),
        "num_mentions": float(len(hits)),
    }


def shuffled(items: Sequence[Any], seed: int = 0) -> list[Any]:
    """``items`` in a seeded random order (the captions of the floor)."""
    perm = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    return [items[i] for i in perm]


__all__ = [
    "AttributeClassifier",
    "attribute_faithfulness",
    "draw_negatives",
    "load_attribute_classifier",
    "mnist_faithfulness",
    "predict_attributes",
    "r_precision",
    "r_precision_of",
    "save_attribute_classifier",
    "shuffled",
    "to_uint8_digits",
    "train_attribute_classifier",
]
