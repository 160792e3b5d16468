"""ESRGAN: Wang et al. 2018, "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks" (arXiv:1809.00219).

G is RRDBNet (:class:`~lightning_gans.networks.rrdb.RRDBNet`: 23 residual-in-residual dense blocks, no batch norm,
residual scaling 0.2, dense-block weights initialised at 0.1 x Kaiming, nearest-neighbour + convolution upsampling);
D the VGG-style network BasicSR trains it with
(:class:`~lightning_gans.networks.vgg_discriminator.VGGStyleDiscriminator` with 4x4 stride-2 convolutions and a
100-unit dense layer; its depth follows the HR size). The adversarial game is the relativistic average GAN
(:func:`~lightning_gans.losses.relativistic_discriminator_loss`: D estimates whether a real image is *more realistic
than the average fake* one); G minimises ``L_percep + lambda * L_G^Ra + eta * L1``
with the perceptual loss on VGG19 ``conv5_4`` features *before* the activation (L1 between feature maps), lambda
5e-3 and eta 1e-2. Validation, grids and predict use an EMA copy of G (decay 0.999).

Checked against the official code (XPixelGroup/BasicSR: ``options/train/ESRGAN/train_ESRGAN_x4.yml``,
``basicsr/models/esrgan_model.py``, ``basicsr/archs/rrdbnet_arch.py``, ``basicsr/archs/vgg_arch.py``): pixel L1
weight 1e-2, perceptual ``conv5_4`` weight 1 with L1 and ImageNet input normalisation, vanilla (BCE) relativistic
loss with weight 5e-3 and both terms halved, Adam lr 1e-4 betas (0.9, 0.99) for G and D, EMA 0.999, 128x128 HR
patches, batch 16; the step order: one G forward, the G update (D frozen, D's real predictions detached), then the
D update on HR and the detached SR images. G starts from the PSNR-oriented RRDBNet (``init_from``: an ESRGAN run with
``lambda_adv: 0, content: {lambda_vgg: 0, lambda_pixel: 1}``, the official first stage, which trains on L1 alone).

**The perceptual loss** (the option group ``content``, :class:`~lightning_gans.perceptual.ContentLoss`) is a sum of
weighted terms, each off at weight 0: ``lambda_vgg`` (VGG19 features; needs the
ImageNet weights, see :mod:`lightning_gans.perceptual`: loaded at the setup of a fit, never downloaded),
``lambda_d_features`` (L1 between D's features of each SR image and of its HR image) and ``lambda_ssim``
(``1 - SSIM``); the last two need no pretrained network and are what the offline configs use.

Deviations: images in [-1, 1]; ``relativistic: false`` trains with the standard GAN loss (the paper's ablation);
BasicSR's D detaches the other side's mean in each term of its D loss, here the gradient is the formula's; the
learning rate stays constant (BasicSR halves it at 50k, 100k, 200k and 300k of 400k iterations); x2 and x3 use
upsampling stages of their own instead of BasicSR's pixel-unshuffled x4 trunk; D works at any HR size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.losses import (
    discriminator_loss,
    generator_loss,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
)
from lightning_gans.metrics.superres import SRMetrics
from lightning_gans.networks.rrdb import RRDBNet
from lightning_gans.networks.srresnet import check_scale
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

#: ESRGAN's content terms: the VGG19 conv5_4 features (before the activation) with L1, and 1e-2 x the L1 pixel loss.
ESRGAN_CONTENT = ContentLoss(vgg_layer="conv5_4", vgg_criterion="l1", lambda_pixel=1e-2, pixel_loss="l1")


@accepts_renamed  # channels, d_base_channels, tile_*, the content terms: renamed in 0.2.0 (lightning_gans.renames)
class ESRGAN(GANModule):
    """ESRGAN: RRDB generator, relativistic average VGG-style discriminator, L1 + perceptual + adversarial, EMA G.

    Batches as :class:`~lightning_gans.models.srresnet.SRResNet`'s (SuperResolutionDataModule).

    Args:
        scale: upscaling factor, 2, 3 or 4 (must equal the datamodule's).
        g_channels: G's feature channels (64).
        num_blocks: G's RRDBs (23).
        growth: growth channels of G's dense blocks (32).
        d_channels: D's first filters (64).
        d_down_kernel: D's stride-2 kernel (4, BasicSR).
        d_dense_features: D's hidden dense units (100, BasicSR).
        relativistic: the relativistic average GAN loss (ESRGAN); false: the standard non-saturating loss.
        lambda_adv: weight of the adversarial term in G's loss (5e-3).
        content: the perceptual and pixel terms (:class:`lightning_gans.perceptual.ContentLoss`): ESRGAN's lambda_vgg 1
            on conv5_4 (before the activation) with L1, and lambda_pixel 1e-2 with L1; the offline configs use
            lambda_d_features and lambda_ssim.
        init_from: checkpoint of an ESRGAN run (e.g. the PSNR-oriented first stage) whose generator G starts from.
        optimizer_g: G's optimizer (adam).
        optimizer_d: D's optimizer (adam).
        lr_g: G's learning rate (1e-4).
        lr_d: D's learning rate (1e-4).
        betas: Adam's betas of both ((0.9, 0.99)).
        ema_decay: decay of the EMA copy of G used by validation, grids and predict (0.999; 0 = off).
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
        num_blocks: int = 23,
        growth: int = 32,
        d_channels: int = 64,
        d_down_kernel: int = 4,
        d_dense_features: int = 100,
        relativistic: bool = True,
        lambda_adv: float = 5e-3,
        content: ContentLoss = ESRGAN_CONTENT,
        init_from: str | None = None,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 1e-4,
        lr_d: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        ema_decay: float = 0.999,
        tiling: Tiling = Tiling(),
        image_shape: tuple[int, int, int] = (3, 128, 128),
        num_classes: int = 0,
        num_grid_samples: int = 8,
    ) -> None:
        super().__init__(image_shape=image_shape, num_classes=num_classes)
        self.save_hyperparameters()
        self.scale = check_scale(scale, "ESRGAN")
        check_image_shape(self.image_shape, self.scale, "ESRGAN")
        check_adversarial_options(self.hparams)
        self.content = ContentLoss.of(content, default=ESRGAN_CONTENT)
        self.tiling = Tiling.of(tiling)
        check_loss_weights("ESRGAN", lambda_adv=lambda_adv, **self.content.weights())
        c, h, w = self.image_shape
        self.generator = RRDBNet(scale, c, c, g_channels, num_blocks, growth)
        self.discriminator = VGGStyleDiscriminator(c, (h, w), d_channels, d_down_kernel, d_dense_features)
        self.generator_ema = ema_copy(self.generator, ema_decay)
        # Held outside the module tree: frozen, never in checkpoints, never wrapped by DDP; loaded at setup (fit).
        self._vgg: list[VGGFeatures] = []
        self.fixed_batch = FixedPairs(num_grid_samples, (c, h // scale, w // scale), self.image_shape)
        self.val_metrics = SRMetrics(self.scale, ("", "bicubic"))

    # ------------------------------------------------------------------ losses (one place, tested by hand)
    def adversarial_losses(self, real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
        """(D's loss, G's loss) on these logits: relativistic average (ESRGAN) or the standard non-saturating loss."""
        if self.hparams.relativistic:
            return (
                relativistic_discriminator_loss(real_logits, fake_logits),
                relativistic_generator_loss(real_logits, fake_logits),
            )
        d_loss = discriminator_loss("nonsaturating", real_logits, fake_logits)
        return d_loss, generator_loss("nonsaturating", fake_logits)

    def generator_losses(self, sr: Tensor, hr: Tensor) -> dict[str, Tensor]:
        """``content terms (lambda_pixel * L1 + perceptual) + lambda_adv * L_G^Ra`` (D's real predictions detached)."""
        with torch.no_grad():
            real_logits, real_features = self.discriminator(hr, return_features=True)
        fake_logits, fake_features = self.discriminator(sr, return_features=True)
        adv = self.adversarial_losses(real_logits, fake_logits)[1]
        content, terms = self.content.terms(
            sr, hr, vgg=self.vgg, fake_features=fake_features, real_features=real_features
        )
        return {"g_loss": content + self.hparams.lambda_adv * adv, "g_adv": adv, **terms}

    def discriminator_losses(self, sr: Tensor, hr: Tensor) -> dict[str, Tensor]:
        """D's relativistic loss on the HR images and the detached SR images."""
        real_logits = self.discriminator(hr)
        fake_logits = self.discriminator(sr.detach())
        d_loss = self.adversarial_losses(real_logits, fake_logits)[0]
        means = {"d_real_logit": real_logits.detach().mean(), "d_fake_logit": fake_logits.detach().mean()}
        return {"d_loss": d_loss, **means}

    # ------------------------------------------------------------------ training
    # The step is SRGAN's (G step, EMA, D step on one G forward); only the losses it calls differ, and the comments.
    # Copied from lightning_gans.models.srgan.SRGAN.training_step
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        lr_images, hr = batch["input"], batch["target"]
        self.fixed_batch.add(lr_images, hr, from_validation=False)
        opt_g, opt_d = self.optimizers()
        sr = self.generator(lr_images)  # one G forward for both updates

        # 1. G step, D frozen: L1 + perceptual + relativistic adversarial loss; then the EMA of G.
        with self.toggled_optimizer(opt_g):
            g_losses = self.generator_losses(sr, hr)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_losses["g_loss"])
            opt_g.step()
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        self.count_g_step(**g_losses)

        # 2. D step: is HR more realistic than the average SR image, and SR less than the average HR image?
        with self.toggled_optimizer(opt_d):
            d_losses = self.discriminator_losses(sr, hr)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_losses["d_loss"])
            opt_d.step()
        self.count_d_step(**d_losses)

    # Copied from lightning_gans.models.srgan.SRGAN.vgg
    @property
    def vgg(self) -> VGGFeatures | None:
        """The VGG19 feature network on the module's device (None until a fit's setup loads it, or when off)."""
        return self._vgg[0].to(self.device) if self._vgg else None

    # Copied from lightning_gans.models.srgan.SRGAN.translate
    def translate(self, x: Tensor) -> Tensor:
        """SR images in [-1, 1] for LR images of any size (EMA G when on; eval mode; tiled when large)."""
        return upscale(self.sampling_generator(), x, self.scale, self.tiling.size, self.tiling.overlap)

    # ------------------------------------------------------------------ plumbing: one line each (superres.py)
    # Copied from lightning_gans.models.srgan.SRGAN.configure_optimizers
    def configure_optimizers(self):
        return make_optimizers(self.generator, self.discriminator, self.hparams)

    # Copied from lightning_gans.models.srgan.SRGAN.setup with SRGAN->ESRGAN
    def setup(self, stage: str) -> None:
        check_superres_datamodule(self, "ESRGAN")
        if stage == "fit" and self.content.lambda_vgg > 0 and not self._vgg:
            self._vgg = [load_vgg(self.content.vgg_layer, self.content.vgg_weights, "ESRGAN")]

    def on_fit_start(self) -> None:
        init_generator(self, self.hparams.init_from, ("ESRGAN",))

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
