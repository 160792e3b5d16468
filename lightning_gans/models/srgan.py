"""SRGAN: Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network"
(arXiv:1609.04802).

G is SRResNet (:class:`~lightning_gans.networks.srresnet.SRResNetGenerator`: 16 residual blocks with batch norm and
PReLU, two pixel-shuffle x2 stages); D the VGG-style network of the paper's Figure 4
(:class:`~lightning_gans.networks.vgg_discriminator.VGGStyleDiscriminator` with 3x3 stride-2 convolutions and a
1024-unit dense layer; its depth follows the HR size). G minimises the perceptual loss of the paper's eq. 3,
``content loss + 1e-3 * adversarial loss``, with the content loss on VGG19 features (SRGAN-VGG54: the MSE between the
feature maps of the 4th convolution after activation before the 5th max-pooling, ``relu5_4``) and the
non-saturating adversarial loss ``-log D(G(LR))``; D the standard cross-entropy. G is initialised from a trained
SRResNet ("to avoid undesired local optima", ``init_from``); Adam with lr 1e-4 and beta1 0.9 (the paper: 10^5 updates,
then 10^5 at 1e-5).

``training_step`` follows BasicSR's ``SRGANModel`` (XPixelGroup/BasicSR, ``basicsr/models/srgan_model.py``): one
forward of G per batch, then the G update against the current D (D frozen), then the D update on the HR images and
the detached SR images.

**The content loss** (the option group ``content``, :class:`~lightning_gans.perceptual.ContentLoss`) is a sum of
weighted terms, each off at weight 0: ``lambda_vgg`` (VGG19 features; needs the
ImageNet weights, see :mod:`lightning_gans.perceptual`: loaded at the setup of a fit, never downloaded),
``lambda_pixel`` (``pixel_loss`` MSE: the paper's SRGAN-MSE with ``lambda_vgg: 0, lambda_pixel: 1``),
``lambda_d_features`` (the L1 between D's features of each SR image and of its HR image) and ``lambda_ssim``
(``1 - SSIM``). The last two need no pretrained network: they are what the offline configs use.

Deviations: images in [-1, 1] on both sides; VGG gets ImageNet-normalised [0, 1] images (torchvision's weights),
without the paper's 1/12.75 rescaling, which compensated Caffe's 0..255 input range (torchvision's VGG sees inputs
about 1/255 that size, and so features two orders of magnitude smaller); D's depth follows the HR size and it
pools its last map to 4x4 (the paper's 96x96 crops give 6x6); D returns logits; no learning-rate decay.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.losses import discriminator_loss, generator_loss
from lightning_gans.metrics.superres import SRMetrics
from lightning_gans.networks.srresnet import SRResNetGenerator, check_scale
from lightning_gans.networks.vgg_discriminator import VGGStyleDiscriminator
from lightning_gans.optim import check_adversarial_options, make_optimizers
from lightning_gans.pairs import FixedPairs, write_validation_grid
from lightning_gans.perceptual import ContentLoss, VGGFeatures, load_vgg
from lightning_gans.renames import accepts_renamed
from lightning_gans.superres import (
    Tiling,
    check_image_shape,
    check_loss_weights,
    check_superres_datamodule,
    init_generator,
    sr_grid,
    sr_predictions,
    sr_validation_step,
    upscale,
)


@accepts_renamed  # channels, d_base_channels, tile_*, the content terms: renamed in 0.2.0 (lightning_gans.renames)
class SRGAN(GANModule):
    """SRGAN: SRResNet generator, VGG-style discriminator, content loss + 1e-3 adversarial loss.

    Batches as :class:`~lightning_gans.models.srresnet.SRResNet`'s (SuperResolutionDataModule).

    Args:
        scale: upscaling factor, 2, 3 or 4 (must equal the datamodule's).
        g_channels: G's feature channels (64).
        num_blocks: G's residual blocks (16).
        batch_norm: batch norm in G (the paper's).
        kernel_size: G's first and last convolutions (9).
        skip: "none" (the paper) or "bilinear"/"bicubic" (G adds the interpolated input); as its SRResNet.
        d_channels: D's first filters (64).
        d_down_kernel: D's stride-2 kernel: 3 (the paper) or 4 (BasicSR).
        d_dense_features: D's hidden dense units: 1024 (the paper) or 100 (BasicSR).
        loss: adversarial loss (the paper: nonsaturating; also minimax, hinge, wasserstein, lsgan).
        lambda_adv: weight of the adversarial term in G's loss (1e-3).
        content: the content loss's terms (:class:`lightning_gans.perceptual.ContentLoss`): the paper's VGG54, MSE
            (lambda_vgg 1, vgg_layer relu5_4, vgg_criterion mse); SRGAN-MSE is lambda_vgg 0 with lambda_pixel 1; the
            offline configs use lambda_d_features and lambda_ssim.
        init_from: checkpoint of an SRResNet (or SRGAN) run whose generator G starts from, at the start of a fresh fit.
        optimizer_g: G's optimizer (adam).
        optimizer_d: D's optimizer (adam).
        lr_g: G's learning rate (1e-4).
        lr_d: D's learning rate (1e-4).
        betas: Adam's betas of both (beta1 0.9).
        ema_decay: decay of an EMA copy of G used by validation, grids and predict (0 = off, as in the paper).
        tiling: how validation and predict upscale large LR images tile by tile (size: tiles of that many LR pixels,
            0 = never; overlap: context around each); see :class:`lightning_gans.superres.Tiling`.
        image_shape: (C, H, W) of the HR images; linked from the datamodule.
        num_classes: classes of the data (unused); linked from the datamodule.
        num_grid_samples: images per row of the grids (LR | bicubic | SR | HR).
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        g_channels: int = 64,
        num_blocks: int = 16,
        batch_norm: bool = True,
        kernel_size: int = 9,
        skip: str = "none",
        d_channels: int = 64,
        d_down_kernel: int = 3,
        d_dense_features: int = 1024,
        loss: str = "nonsaturating",
        lambda_adv: float = 1e-3,
        content: ContentLoss = ContentLoss(),
        init_from: str | None = None,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 1e-4,
        lr_d: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        ema_decay: float = 0.0,
        tiling: Tiling = Tiling(),
        image_shape: tuple[int, int, int] = (3, 96, 96),
        num_classes: int = 0,
        num_grid_samples: int = 8,
    ) -> None:
        super().__init__(image_shape=image_shape, num_classes=num_classes)
        self.save_hyperparameters()
        self.scale = check_scale(scale, "SRGAN")
        check_image_shape(self.image_shape, self.scale, "SRGAN")
        check_adversarial_options(self.hparams)
        self.content = ContentLoss.of(content, default=ContentLoss())  # the paper's VGG54 with MSE
        self.tiling = Tiling.of(tiling)
        check_loss_weights("SRGAN", lambda_adv=lambda_adv, **self.content.weights())
        self.loss = loss
        c, h, w = self.image_shape
        self.generator = SRResNetGenerator(scale, c, c, g_channels, num_blocks, batch_norm, kernel_size, skip)
        self.discriminator = VGGStyleDiscriminator(c, (h, w), d_channels, d_down_kernel, d_dense_features)
        self.generator_ema = ema_copy(self.generator, ema_decay)
        # Held outside the module tree: frozen, never in checkpoints, never wrapped by DDP; loaded at setup (fit).
        self._vgg: list[VGGFeatures] = []
        self.fixed_batch = FixedPairs(num_grid_samples, (c, h // scale, w // scale), self.image_shape)
        self.val_metrics = SRMetrics(self.scale, ("", "bicubic"))

    # ------------------------------------------------------------------ losses (one place, tested by hand)
    def generator_losses(self, sr: Tensor, hr: Tensor) -> dict[str, Tensor]:
        """G's perceptual loss: the content terms that are on + ``lambda_adv`` x the adversarial loss on D(SR)."""
        fake_logits, fake_features = self.discriminator(sr, return_features=True)
        real_features = None
        if self.content.lambda_d_features > 0:
            with torch.no_grad():
                real_features = self.discriminator(hr, return_features=True)[1]
        adv = generator_loss(self.loss, fake_logits)
        content, terms = self.content.terms(
            sr, hr, vgg=self.vgg, fake_features=fake_features, real_features=real_features
        )
        return {"g_loss": content + self.hparams.lambda_adv * adv, "g_adv": adv, **terms}

    def discriminator_losses(self, sr: Tensor, hr: Tensor) -> dict[str, Tensor]:
        """D's cross-entropy on the HR images (real) and the detached SR images (fake)."""
        real_logits = self.discriminator(hr)
        fake_logits = self.discriminator(sr.detach())
        d_loss = discriminator_loss(self.loss, real_logits, fake_logits)
        means = {"d_real_logit": real_logits.detach().mean(), "d_fake_logit": fake_logits.detach().mean()}
        return {"d_loss": d_loss, **means}

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        lr_images, hr = batch["input"], batch["target"]
        self.fixed_batch.add(lr_images, hr, from_validation=False)
        opt_g, opt_d = self.optimizers()
        sr = self.generator(lr_images)  # one G forward for both updates

        # 1. G step, D frozen: content loss + lambda_adv * adversarial loss.
        with self.toggled_optimizer(opt_g):
            g_losses = self.generator_losses(sr, hr)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_losses["g_loss"])
            opt_g.step()
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        self.count_g_step(**g_losses)

        # 2. D step: HR images as real, the detached SR images as fake.
        with self.toggled_optimizer(opt_d):
            d_losses = self.discriminator_losses(sr, hr)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_losses["d_loss"])
            opt_d.step()
        self.count_d_step(**d_losses)

    @property
    def vgg(self) -> VGGFeatures | None:
        """The VGG19 feature network on the module's device (None until a fit's setup loads it, or when off)."""
        return self._vgg[0].to(self.device) if self._vgg else None

    def translate(self, x: Tensor) -> Tensor:
        """SR images in [-1, 1] for LR images of any size (EMA G when on; eval mode; tiled when large)."""
        return upscale(self.sampling_generator(), x, self.scale, self.tiling.size, self.tiling.overlap)

    # ------------------------------------------------------------------ plumbing: one line each (superres.py)
    def configure_optimizers(self):
        return make_optimizers(self.generator, self.discriminator, self.hparams)

    def setup(self, stage: str) -> None:
        check_superres_datamodule(self, "SRGAN")
        if stage == "fit" and self.content.lambda_vgg > 0 and not self._vgg:
            self._vgg = [load_vgg(self.content.vgg_layer, self.content.vgg_weights, "SRGAN")]

    def on_fit_start(self) -> None:
        init_generator(self, self.hparams.init_from, ("SRResNet", "SRGAN"))

    # Copied from lightning_gans.models.srresnet.SRResNet.validation_step
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        sr_validation_step(self, batch)

    # Copied from lightning_gans.models.srresnet.SRResNet.on_validation_epoch_end
    def on_validation_epoch_end(self) -> None:
        write_validation_grid(self, self.grid_images(), nrow=self.fixed_batch.size)

    # Copied from lightning_gans.models.srresnet.SRResNet.grid_images
    def grid_images(self) -> Tensor:
        return sr_grid(self)

    # Copied from lightning_gans.models.srresnet.SRResNet.predict_step
    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return sr_predictions(self, batch)
