"""Tiny configurations of every registered family, for the contract tests (one entry per family).

Each entry gives constructor kwargs small enough to train a step in well under a second on a CPU, and a function
that makes one batch in the format the family's datamodule produces. Adding a family = one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


def image_batch(shape: tuple[int, ...], n: int = 4, num_classes: int = 10) -> Callable[[], Any]:
    """A (images, labels) batch like MNISTDataModule's."""

    def make() -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        return torch.rand(n, *shape, generator=g) * 2 - 1, torch.randint(num_classes, (n,), generator=g)

    return make


@dataclass
class FamilySpec:
    kwargs: dict[str, Any]
    batch: Callable[[], Any]
    #: attribute names of the networks whose parameters must change in one training step
    trained: tuple[str, ...] = ("generator", "discriminator")
    #: does ``sample(n)`` make images from noise (False for image-to-image families)
    samples_from_noise: bool = True
    #: does a step update a discriminator (False for the autoencoder baselines: one update per batch, d_steps stays 0)
    adversarial: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


MNIST_SHAPE = (1, 28, 28)

TINY: dict[str, FamilySpec] = {
    "GAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_hidden_dims=(16,), d_hidden_dims=(16,)),
        batch=image_batch(MNIST_SHAPE),
    ),
    "DCGAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=4, d_channels=4),
        batch=image_batch(MNIST_SHAPE),
    ),
    "BiGAN": FamilySpec(
        kwargs=dict(
            image_shape=MNIST_SHAPE,
            num_classes=10,
            latent_dim=8,
            g_channels=4,
            e_channels=4,
            d_channels=4,
            d_hidden_dim=8,
            num_grid_samples=8,
            num_grid_reconstructions=4,
        ),
        batch=image_batch(MNIST_SHAPE),
        trained=("generator", "encoder", "discriminator"),
    ),
    "Autoencoder": FamilySpec(
        kwargs=dict(
            image_shape=MNIST_SHAPE,
            num_classes=10,
            latent_dim=8,
            g_channels=4,
            e_channels=4,
            num_grid_samples=8,
            num_grid_reconstructions=4,
        ),
        batch=image_batch(MNIST_SHAPE),
        trained=("generator", "encoder"),
        adversarial=False,
    ),
    "VAE": FamilySpec(
        kwargs=dict(
            image_shape=MNIST_SHAPE,
            num_classes=10,
            latent_dim=8,
            g_channels=4,
            e_channels=4,
            num_grid_samples=8,
            num_grid_reconstructions=4,
        ),
        batch=image_batch(MNIST_SHAPE),
        trained=("generator", "encoder"),
        adversarial=False,
    ),
    "CGAN": FamilySpec(
        kwargs=dict(
            image_shape=MNIST_SHAPE,
            num_classes=10,
            latent_dim=8,
            g_embed_dim=4,
            d_embed_dim=4,
            g_channels=4,
            d_channels=4,
        ),
        batch=image_batch(MNIST_SHAPE),
    ),
    "ACGAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_embed_dim=4, g_channels=4, d_channels=4),
        batch=image_batch(MNIST_SHAPE),
    ),
    "WGAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=4, d_channels=4, n_critic=1),
        batch=image_batch(MNIST_SHAPE),
    ),
    "WGANGP": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=4, d_channels=4, n_critic=1),
        batch=image_batch(MNIST_SHAPE),
    ),
    "SNGAN": FamilySpec(
        kwargs=dict(image_shape=(3, 32, 32), num_classes=0, latent_dim=8, g_channels=8, d_channels=8, n_critic=1),
        batch=image_batch((3, 32, 32)),
    ),
    "StyleGAN": FamilySpec(
        kwargs=dict(
            image_shape=(3, 16, 16),
            num_classes=0,
            latent_dim=8,
            w_dim=8,
            mapping_layers=2,
            channel_base=64,
            channel_max=8,
            r1_gamma=1.0,
            r1_interval=2,
            pl_weight=2.0,
            pl_interval=2,
            ema_kimg=0.01,
            ema_rampup=0.05,
            num_grid_samples=8,
        ),
        batch=image_batch((3, 16, 16), n=8),
        extra={"batch_size": 8},  # path-length regularisation needs batches of 8 (tests/test_resume.py)
    ),
    "SAGAN": FamilySpec(
        kwargs=dict(image_shape=MNIST_SHAPE, num_classes=10, latent_dim=8, g_channels=8, d_channels=8, n_critic=1),
        batch=image_batch(MNIST_SHAPE),
    ),
}


# ---------------------------------------------------------------- image-to-image families (Pix2Pix, CycleGAN, GauGAN)
I2I_SHAPE = (3, 32, 32)


def paired_batch(n: int = 2, shape: tuple[int, int, int] = I2I_SHAPE, num_classes: int = 0) -> Callable[[], Any]:
    """A batch like PairedImageDataModule's: {"input", "target", "name"} (+ "label", one-hot input with a palette)."""

    def make() -> dict[str, Any]:
        g = torch.Generator().manual_seed(0)
        batch = {"target": torch.rand(n, *shape, generator=g) * 2 - 1, "name": [f"{i}.jpg" for i in range(n)]}
        if num_classes:
            label = torch.randint(num_classes, (n, *shape[1:]), generator=g)
            batch.update(label=label, input=torch.nn.functional.one_hot(label, num_classes).permute(0, 3, 1, 2).float())
        else:
            batch["input"] = torch.rand(n, *shape, generator=g) * 2 - 1
        return batch

    return make


def unpaired_batch(n: int = 2, shape: tuple[int, int, int] = I2I_SHAPE) -> Callable[[], Any]:
    """A batch like UnpairedImageDataModule's: {"A", "B", "name_A", "name_B"}."""

    def make() -> dict[str, Any]:
        g = torch.Generator().manual_seed(0)
        return {
            "A": torch.rand(n, *shape, generator=g) * 2 - 1,
            "B": torch.rand(n, *shape, generator=g) * 2 - 1,
            "name_A": [f"{i}_A.jpg" for i in range(n)],
            "name_B": [f"{i}_B.jpg" for i in range(n)],
        }

    return make


def predict_batches(channels: int = 3, one_hot: bool = False, directions: tuple[str, ...] = ()) -> Callable[[], Any]:
    """Predict batches like the paired/unpaired datamodules' (one image each, original sizes kept in "size")."""

    def loader() -> list[dict[str, Any]]:
        g = torch.Generator().manual_seed(1)
        batches = []
        for i, (h, w) in enumerate([(40, 50), (32, 32), (20, 36)]):
            if one_hot:
                label = torch.randint(channels, (1, 32, 32), generator=g)
                x = torch.nn.functional.one_hot(label, channels).permute(0, 3, 1, 2).float()
            else:
                x = torch.rand(1, channels, 32, 32, generator=g) * 2 - 1
            batch = {"input": x, "name": [f"img{i}.jpg"], "size": torch.tensor([[h, w]])}
            if directions:
                batch["direction"] = [directions[i % len(directions)]]
            batches.append(batch)
        return torch.utils.data.DataLoader(batches, batch_size=None)

    return loader


TINY["Pix2Pix"] = FamilySpec(
    kwargs=dict(image_shape=I2I_SHAPE, input_channels=3, num_downs=5, g_channels=4, d_channels=4),
    batch=paired_batch(),
    samples_from_noise=False,
    extra={"predict_loader": predict_batches(), "predict_files": 3},
)
TINY["CycleGAN"] = FamilySpec(
    kwargs=dict(image_shape=I2I_SHAPE, input_channels=3, num_blocks=1, g_channels=4, d_channels=4, pool_size=2),
    batch=unpaired_batch(),
    trained=("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"),
    samples_from_noise=False,
    extra={"predict_loader": predict_batches(directions=("AtoB", "BtoA")), "predict_files": 3},
)
TINY["GauGAN"] = FamilySpec(
    kwargs=dict(image_shape=I2I_SHAPE, num_classes=4, g_channels=2, d_channels=4, spade_hidden=8),
    batch=paired_batch(num_classes=4),
    samples_from_noise=False,
    extra={"predict_loader": predict_batches(channels=4, one_hot=True), "predict_files": 3},
)


# ---------------------------------------------------------------- super-resolution families (SRResNet, SRGAN, ESRGAN)
SR_SHAPE = (3, 32, 32)  # HR 32x32, LR 8x8 at x4


def sr_batch(n: int = 2, shape: tuple[int, int, int] = SR_SHAPE, scale: int = 4) -> Callable[[], Any]:
    """A batch like SuperResolutionDataModule's: {"input": LR, "target": HR, "name"} (LR = HR average-pooled)."""

    def make() -> dict[str, Any]:
        g = torch.Generator().manual_seed(0)
        hr = torch.rand(n, *shape, generator=g) * 2 - 1
        lr = torch.nn.functional.avg_pool2d(hr, scale)
        return {"input": lr, "target": hr, "name": [f"{i}.png" for i in range(n)]}

    return make


# ---------------------------------------------------------------- text-to-image families (GANINTCLS, DFGAN)
TEXT_VOCABULARY = ["<pad>", "<unk>", "a", "the", "digit", "thick", "thin", "seven", "one", "slanted", "to", "right"]
TEXT_CAPTIONS = [
    "a thick seven",
    "a thin one",
    "the digit seven",
    "a thick seven",
    "a one slanted to the right",
    "a thin seven",
    "the digit one",
    "a seven slanted to the right",
]


def caption_batch(n: int = 4, shape: tuple[int, ...] = MNIST_SHAPE, max_length: int = 8) -> Callable[[], Any]:
    """A batch like the caption datamodules': (images, word ids, caption texts), two captions the same text."""

    def make() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        from datamodules.vocabulary import Vocabulary

        g = torch.Generator().manual_seed(0)
        texts = TEXT_CAPTIONS[:n]
        tokens = Vocabulary(TEXT_VOCABULARY).encode_batch(texts, max_length)
        return torch.rand(n, *shape, generator=g) * 2 - 1, tokens, texts

    return make


def sr_predict_batches(scale: int = 4) -> Callable[[], Any]:
    """Predict batches like SuperResolutionDataModule's: one LR image each, at its own size."""

    def loader() -> torch.utils.data.DataLoader:
        g = torch.Generator().manual_seed(1)
        batches = [
            {
                "input": torch.rand(1, 3, h, w, generator=g) * 2 - 1,
                "name": [f"img{i}.jpg"],
                "size": torch.tensor([[h, w]]),
            }
            for i, (h, w) in enumerate([(8, 8), (10, 6), (5, 12)])
        ]
        return torch.utils.data.DataLoader(batches, batch_size=None)

    return loader


_SR_G = dict(g_channels=4, num_blocks=1)
_SR_D = dict(d_channels=4, d_dense_features=8)
TINY["SRResNet"] = FamilySpec(
    kwargs=dict(image_shape=SR_SHAPE, **_SR_G, kernel_size=3, num_grid_samples=2),
    batch=sr_batch(),
    trained=("generator",),
    samples_from_noise=False,
    adversarial=False,
    extra={"predict_loader": sr_predict_batches(), "predict_files": 3},
)
TINY["SRGAN"] = FamilySpec(  # offline content loss: D features + SSIM + pixel, no VGG weights needed
    kwargs=dict(
        image_shape=SR_SHAPE,
        **_SR_G,
        kernel_size=3,
        **_SR_D,
        content=dict(lambda_vgg=0.0, lambda_pixel=1.0, lambda_d_features=1.0, lambda_ssim=1.0),
        num_grid_samples=2,
    ),
    batch=sr_batch(),
    samples_from_noise=False,
    extra={"predict_loader": sr_predict_batches(), "predict_files": 3},
)
TINY["ESRGAN"] = FamilySpec(
    kwargs=dict(
        image_shape=SR_SHAPE,
        **_SR_G,
        growth=4,
        **_SR_D,
        content=dict(lambda_vgg=0.0, lambda_d_features=1.0, lambda_ssim=1.0),  # the other terms: ESRGAN's defaults
        ema_decay=0.9,
        num_grid_samples=2,
    ),
    batch=sr_batch(),
    samples_from_noise=False,
    extra={"predict_loader": sr_predict_batches(), "predict_files": 3},
)


_TEXT = dict(
    vocabulary=TEXT_VOCABULARY,
    text=dict(word_dim=8, sentence_dim=8, max_caption_length=8, caption_pool_size=16),
    latent_dim=8,
    num_grid_samples=8,
    grid_prompts=["a thick seven", "a thin one"],
)
TINY["GANINTCLS"] = FamilySpec(
    kwargs=dict(image_shape=MNIST_SHAPE, g_channels=4, d_channels=4, projection_dim=8, **_TEXT),
    batch=caption_batch(),
)
TINY["DFGAN"] = FamilySpec(
    kwargs=dict(image_shape=MNIST_SHAPE, g_channels=4, d_channels=4, **_TEXT),
    batch=caption_batch(),
)
