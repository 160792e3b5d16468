"""SRResNet: the PSNR-oriented network of Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network" (arXiv:1609.04802), trained on a pixel loss alone.

SRGAN's generator (:class:`~lightning_gans.networks.srresnet.SRResNetGenerator`: 16 residual blocks with batch norm
and PReLU, pixel-shuffle upsampling) minimising the MSE between its output and the HR image: the paper's SRResNet-MSE,
the baseline its GAN is compared with and the initialisation of that GAN (``SRGAN(init_from=...)``). The paper trains
it with Adam (lr 1e-4, beta1 0.9) for 10^6 updates on 96x96 HR crops of ImageNet, batch 16, LR images downscaled
by bicubic interpolation (x4), LR inputs in [0, 1] and HR targets in [-1, 1].

``training_step`` is one pixel-loss update per batch; there is no discriminator (``d_steps`` stays 0 and each
update counts as a G step). Validation logs PSNR/SSIM on the Y channel and on RGB with ``scale`` pixels cropped at
the borders, for the model and for bicubic upscaling side by side (``val/psnr_y``, ``val/psnr_y_bicubic``, ...;
:mod:`lightning_gans.metrics.superres`); the grid shows LR | bicubic | SR | HR; ``predict`` upscales images of any
size, tile by tile when they are large (``tiling``).

Deviations: inputs and outputs both in [-1, 1] (the project's convention); the residual blocks are initialised as
BasicSR's (Kaiming-normal x 0.1), the paper does not say; no learning-rate schedule. ``pixel_loss: l1``,
``batch_norm: false``, ``kernel_size: 3`` and ``skip: bilinear`` come close to BasicSR's MSRResNet
(``train_MSRResNet_x4.yml``: L1, Adam 2e-4 with betas (0.9, 0.99), EMA 0.999), the modern PSNR baseline.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.metrics.superres import SRMetrics
from lightning_gans.networks.srresnet import SRResNetGenerator, check_scale
from lightning_gans.optim import check_optimizer, make_optimizer
from lightning_gans.pairs import FixedPairs, write_validation_grid
from lightning_gans.perceptual import CRITERIA, criterion
from lightning_gans.renames import accepts_renamed
from lightning_gans.superres import (
    Tiling,
    check_image_shape,
    check_superres_datamodule,
    sr_grid,
    sr_predictions,
    sr_validation_step,
    upscale,
)


@accepts_renamed  # channels, tile_size, tile_overlap: renamed in 0.2.0 (lightning_gans.renames)
class SRResNet(GANModule):
    """SRResNet: a residual network upscaling LR images, trained on a pixel loss (the PSNR baseline).

    Batches: ``{"input": LR [B, C, h, w], "target": HR [B, C, scale*h, scale*w], "name": [...]}``
    (SuperResolutionDataModule); predict batches ``{"input", "name", "size"}`` of any size. ``image_shape`` is the
    HR patch's (C, H, W), linked from the datamodule.

    Args:
        scale: upscaling factor, 2, 3 or 4 (must equal the datamodule's).
        g_channels: feature channels (64).
        num_blocks: residual blocks (16).
        batch_norm: batch norm in the residual blocks (the paper's; MSRResNet has none).
        kernel_size: of the first and last convolutions (9 in the paper, 3 in MSRResNet).
        skip: "none" (the paper), or "bilinear"/"bicubic": the network adds the interpolated input to its output and
            learns only the residual (MSRResNet: bilinear).
        pixel_loss: "mse" (the paper's SRResNet-MSE) or "l1" (BasicSR's MSRResNet).
        optimizer: optimizer name (adam, adamw, rmsprop, sgd).
        lr: learning rate (paper 1e-4).
        betas: Adam's betas (paper: beta1 0.9).
        ema_decay: decay of an EMA copy of the network used by validation, grids and predict (0 = off, as in the
            paper; BasicSR uses 0.999).
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
        pixel_loss: str = "mse",
        optimizer: str = "adam",
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        ema_decay: float = 0.0,
        tiling: Tiling = Tiling(),
        image_shape: tuple[int, int, int] = (3, 96, 96),
        num_classes: int = 0,
        num_grid_samples: int = 8,
    ) -> None:
        super().__init__(image_shape=image_shape, num_classes=num_classes)
        self.save_hyperparameters()
        self.scale = check_scale(scale, "SRResNet")
        check_image_shape(self.image_shape, self.scale, "SRResNet")
        if pixel_loss not in CRITERIA:
            raise ValueError(f"unknown pixel_loss {pixel_loss!r}; valid: {', '.join(CRITERIA)}")
        check_optimizer(optimizer, lr)
        self.pixel_loss = pixel_loss
        self.tiling = Tiling.of(tiling)
        c, h, w = self.image_shape
        self.generator = SRResNetGenerator(scale, c, c, g_channels, num_blocks, batch_norm, kernel_size, skip)
        self.generator_ema = ema_copy(self.generator, ema_decay)
        self.fixed_batch = FixedPairs(num_grid_samples, (c, h // scale, w // scale), self.image_shape)
        self.val_metrics = SRMetrics(self.scale, ("", "bicubic"))

    def configure_optimizers(self):
        hp = self.hparams
        return make_optimizer(self.generator.parameters(), hp.optimizer, hp.lr, hp.betas)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        lr_images, hr = batch["input"], batch["target"]
        self.fixed_batch.add(lr_images, hr, from_validation=False)
        opt = self.optimizers()
        # One update: the pixel loss between G(LR) and HR.
        sr = self.generator(lr_images)
        loss = criterion(self.pixel_loss, sr.float(), hr)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        self.count_g_step(g_loss=loss)

    def translate(self, x: Tensor) -> Tensor:
        """SR images in [-1, 1] for LR images of any size (EMA network when on; eval mode; tiled when large)."""
        return upscale(self.sampling_generator(), x, self.scale, self.tiling.size, self.tiling.overlap)

    # ------------------------------------------------------------------ plumbing: one line each (superres.py)
    def setup(self, stage: str) -> None:
        check_superres_datamodule(self, "SRResNet")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        sr_validation_step(self, batch)

    def on_validation_epoch_end(self) -> None:
        write_validation_grid(self, self.grid_images(), nrow=self.fixed_batch.size)

    def grid_images(self) -> Tensor:
        return sr_grid(self)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return sr_predictions(self, batch)
