"""Pix2Pix: Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial Networks"
(arXiv:1611.07004).

A conditional GAN on paired data. G is the U-Net (encoder-decoder with skip connections, Dropout(0.5) in the inner
decoder blocks, batch norm); D is the 70x70 PatchGAN, which judges the pair (input, output) concatenated along the
channels, so it scores whether the output fits *this* input. G minimises the non-saturating GAN loss plus
``lambda_l1 * L1(G(x), y)``, lambda 100; D's loss is halved ("we divide the objective by 2 while optimizing D, which
slows down the rate at which D learns relative to G"). Adam(2e-4, betas (0.5, 0.999)), batch 1, weights from
N(0, 0.02), the learning rate constant for ``n_epochs`` then decaying linearly over ``n_epochs_decay`` (100 + 100).

Checked against the official code (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/pix2pix_model.py``,
``models/networks.py``, ``options/``): the same networks (``UNetGenerator``/``PatchDiscriminator`` match
``unet_256``/``basic`` parameter for parameter), the same step order (one G forward; D on (x, G(x)).detach() and
(x, y), each scored in its own batch; then G against the *updated* D with the same G(x)), ``gan_mode='vanilla'``
(BCE on logits), ``lambda_L1=100``, ``pool_size=0`` (pix2pix uses no image pool), ``norm='batch'``.

**How sampling runs G (``generator_mode``).** The paper runs G at test time "in exactly the same manner as during
the training phase": dropout on, batch norm with the statistics of the test batch (batch 1, i.e. instance
normalisation); the official ``test.py`` only calls ``eval()`` with ``--eval``. ``generator_mode="train"`` (the
default) does exactly that for validation, grids and predict: each image goes through G alone (batch 1, as in
training) in train mode, with a fixed dropout seed (the same input always gives the same output; the training RNG
stream is untouched) and without touching the running statistics (all buffers are restored afterwards).
``generator_mode="eval"`` uses the running statistics and no dropout instead.

The plumbing the three translation families share (LR schedule, fixed grid pairs, validation metrics, grids, predict)
is plain functions in :mod:`lightning_gans.image2image`, called from the one-line hooks at the end of the class.

Deviations: D returns logits (the sigmoid lives in the loss); ``num_downs`` defaults to the image size (8 at 256,
the official unet_256; 6 at 64) instead of a fixed 8; the LR step is at the end of each epoch (see
:func:`linear_decay`); validation, grids, predict and ``lambda_gan`` (0 trains the paper's L1-only
ablation) are additions.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.image2image import (
    TranslationMetrics,
    check_generator_mode,
    linear_decay,
    linear_decay_schedulers,
    official_loss_scales,
    paired_grid,
    paired_predictions,
    paired_validation_step,
    step_schedulers,
    translate,
    warn_schedule_length,
)
from lightning_gans.losses import discriminator_loss, generator_loss
from lightning_gans.networks.patchgan import PatchDiscriminator
from lightning_gans.networks.unet import UNetGenerator
from lightning_gans.optim import check_adversarial_options, make_optimizers
from lightning_gans.pairs import FixedPairs, check_datamodule_shapes, write_validation_grid
from lightning_gans.renames import accepts_renamed


@accepts_renamed  # base_channels, d_base_channels: renamed in 0.2.0 (lightning_gans.renames)
class Pix2Pix(GANModule):
    """pix2pix: conditional GAN with a U-Net G and a PatchGAN D on (input, output) pairs, plus L1 to the target.

    Batches: ``{"input": [B, C_in, H, W], "target": [B, C, H, W], "name": [...]}`` (PairedImageDataModule); predict
    batches ``{"input", "name", "size"}``. ``image_shape`` is the target's (C, H, W), linked from the datamodule.

    Args:
        input_channels: channels of the input (3 for RGB, the number of classes for one-hot label maps).
        num_downs: U-Net downsamplings; None picks log2 of the smaller side, at most 8 (8 = the official unet_256 at
            256x256, 7 = unet_128, 6 at 64x64). H and W must be multiples of 2**num_downs.
        g_channels: G's first-layer filters (the official ngf, 64).
        d_channels: D's first-layer filters (ndf, 64).
        n_layers_d: D's stride-2 layers (3: the 70x70 PatchGAN).
        norm: "batch" (official), "instance" or "none", in G and D.
        dropout: Dropout(0.5) in G's inner decoder blocks (official: on; pix2pix's only noise).
        loss: adversarial loss on D's logits (official "vanilla" = ``nonsaturating``); D's loss is halved, see
            :func:`~lightning_gans.image2image.official_loss_scales`.
        lambda_l1: weight of L1(G(x), y) in G's loss (100).
        lambda_gan: weight of the adversarial term in G's loss (1). 0 gives the paper's "L1" ablation (Table 1):
            G trained on L1 alone, the reference for how low L1 itself can go on a dataset; D still trains and
            logs, so the runs compare one to one.
        n_epochs: epochs at the initial learning rate (official 100).
        n_epochs_decay: epochs of linear decay to zero after them (official 100); train for the sum.
        generator_mode: how validation, grids and predict run G: "train" (the paper's test protocol) or "eval"
            (see the module docstring).
        init_type: weight init of G and D (official "normal").
        init_gain: its gain (0.02).
        optimizer_g: G's optimizer (official adam).
        optimizer_d: D's optimizer (official adam).
        lr_g: G's learning rate (2e-4).
        lr_d: D's learning rate (2e-4).
        betas: Adam's betas ((0.5, 0.999)).
        ema_decay: decay of an EMA copy of G used by validation, grids and predict (0 = off, as in the paper).
        image_shape: (C, H, W) of the targets; linked from the datamodule.
        num_classes: classes of one-hot label-map inputs (0 for RGB inputs); linked from the datamodule.
        num_grid_samples: (input, output, target) triples in the grids.
    """

    def __init__(
        self,
        *,
        input_channels: int = 3,
        num_downs: int | None = None,
        g_channels: int = 64,
        d_channels: int = 64,
        n_layers_d: int = 3,
        norm: str = "batch",
        dropout: bool = True,
        loss: str = "nonsaturating",
        lambda_l1: float = 100.0,
        lambda_gan: float = 1.0,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        generator_mode: str = "train",
        init_type: str = "normal",
        init_gain: float = 0.02,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        ema_decay: float = 0.0,
        image_shape: tuple[int, int, int] = (3, 256, 256),
        num_classes: int = 0,
        num_grid_samples: int = 8,
    ) -> None:
        super().__init__(image_shape=image_shape, num_classes=num_classes)
        self.save_hyperparameters()
        if len(self.image_shape) != 3:
            raise ValueError(f"Pix2Pix translates images: image_shape must be (C, H, W), got {self.image_shape}")
        check_adversarial_options(self.hparams)
        self.loss = loss
        self.d_scale, self.g_scale = official_loss_scales(loss)
        if lambda_l1 < 0 or lambda_gan < 0:
            raise ValueError(f"lambda_l1 and lambda_gan must be 0 or positive, got {lambda_l1} and {lambda_gan}")
        if lambda_l1 == 0 and lambda_gan == 0:
            raise ValueError("lambda_l1 and lambda_gan are both 0, so G has nothing to learn from: set one of them")
        self.lambda_l1, self.lambda_gan = lambda_l1, lambda_gan
        self.input_channels = input_channels
        self.generator_mode = check_generator_mode(generator_mode)
        linear_decay(n_epochs, n_epochs_decay)  # validates

        channels, height, width = self.image_shape
        if num_downs is None:
            num_downs = max(2, min(8, int(math.log2(min(height, width)))))
        self.generator = UNetGenerator(
            input_channels, channels, num_downs, g_channels, norm, dropout, init_type, init_gain
        )
        try:
            self.generator.check_input_size(height, width)
        except ValueError as err:
            raise ValueError(
                f"Pix2Pix cannot translate {height}x{width} images: {err} With the paired datamodule, set "
                "data.init_args.crop_size to such a multiple, or set model.init_args.num_downs (or leave it null)."
            ) from None
        self.discriminator = PatchDiscriminator(
            input_channels + channels, d_channels, n_layers_d, norm, init_type=init_type, init_gain=init_gain
        )
        self.generator_ema = ema_copy(self.generator, ema_decay)
        one_hot = num_classes > 0 and input_channels == num_classes
        self.fixed_batch = FixedPairs(num_grid_samples, (input_channels, height, width), self.image_shape, one_hot)
        self.val_metrics = TranslationMetrics(compare_input=input_channels == channels)

    # ------------------------------------------------------------------ losses (one place, tested by hand)
    def discriminator_losses(self, x: Tensor, y: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """D's halved loss on (x, G(x)) (detached) and (x, y), each scored in its own batch, fake first."""
        fake_logits = self.discriminator(torch.cat([x, fake.detach()], 1))
        real_logits = self.discriminator(torch.cat([x, y], 1))
        d_loss = self.d_scale * discriminator_loss(self.loss, real_logits, fake_logits)
        return {
            "d_loss": d_loss,
            "d_real_logit": real_logits.detach().mean(),
            "d_fake_logit": fake_logits.detach().mean(),
        }

    def generator_losses(self, x: Tensor, y: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """G's loss: lambda_gan * adversarial term on D(x, G(x)) + lambda_l1 * L1(G(x), y)."""
        adv = self.g_scale * generator_loss(self.loss, self.discriminator(torch.cat([x, fake], 1)))
        l1 = F.l1_loss(fake, y)
        return {"g_loss": self.lambda_gan * adv + self.lambda_l1 * l1, "g_adv": adv, "g_l1": l1}

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        x, y = batch["input"], batch["target"]
        self.fixed_batch.add(x, y, from_validation=False)
        opt_g, opt_d = self.optimizers()
        fake = self.generator(x)  # one G forward for both updates, as in the official code

        # 1. D step on (x, G(x)) and (x, y).
        with self.toggled_optimizer(opt_d):
            d_losses = self.discriminator_losses(x, y, fake)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_losses["d_loss"])
            opt_d.step()
        self.count_d_step(**d_losses)

        # 2. G step against the updated D, with the same G(x).
        with self.toggled_optimizer(opt_g):
            g_losses = self.generator_losses(x, y, fake)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_losses["g_loss"])
            opt_g.step()
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        self.count_g_step(**g_losses)

    def translate(self, x: Tensor) -> Tensor:
        """G(x) in [-1, 1] as validation, grids and predict see it (EMA G when on; ``generator_mode``)."""
        return translate(self.sampling_generator(), x, self.generator_mode)

    # ------------------------------------------------------------------ plumbing: one line each (image2image.py)
    def configure_optimizers(self):
        opts = make_optimizers(self.generator, self.discriminator, self.hparams)
        return list(opts), linear_decay_schedulers(opts, self.hparams.n_epochs, self.hparams.n_epochs_decay)

    def setup(self, stage: str) -> None:
        check_datamodule_shapes(self, self.input_channels, "Pix2Pix")

    def on_fit_start(self) -> None:
        warn_schedule_length(self, self.hparams.n_epochs, self.hparams.n_epochs_decay)

    def on_train_epoch_end(self) -> None:
        step_schedulers(self)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        paired_validation_step(self, batch)

    def on_validation_epoch_end(self) -> None:
        write_validation_grid(self, self.grid_images(), nrow=self.fixed_batch.size)

    def grid_images(self) -> Tensor:
        return paired_grid(self)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return paired_predictions(self, batch)
