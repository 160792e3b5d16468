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

The image-to-image helpers the three translation families share live in :mod:`lightning_gans.image2image`.

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
from lightning_gans.image2image import (
    check_generator_mode,
    check_translation_options,
    FixedBatch,
    linear_decay,
    official_loss_scales,
    PairedTranslationSteps,
    translation_defaults,
    TranslationMetrics,
)
from lightning_gans.losses import check_loss_name, check_real_label, discriminator_loss, generator_loss
from lightning_gans.networks.patchgan import PatchDiscriminator
from lightning_gans.networks.unet import UNetGenerator


class Pix2Pix(PairedTranslationSteps, GANModule):
    """pix2pix: conditional GAN with a U-Net G and a PatchGAN D on (input, output) pairs, plus L1 to the target.

    Batches: ``{"input": [B, C_in, H, W], "target": [B, C, H, W], "name": [...]}`` (PairedImageDataModule); predict
    batches ``{"input", "name", "size"}``. ``image_shape`` is the target's (C, H, W), linked from the datamodule.

    Args:
        input_channels: channels of the input (3 for RGB, the number of classes for one-hot label maps).
        num_downs: U-Net downsamplings; None picks log2 of the smaller side, at most 8 (8 = the official unet_256 at
            256x256, 7 = unet_128, 6 at 64x64). H and W must be multiples of 2**num_downs.
        base_channels: G's first-layer filters (the official ngf, 64).
        d_base_channels: D's first-layer filters (ndf, 64).
        n_layers_d: D's stride-2 layers (3: the 70x70 PatchGAN).
        norm: "batch" (official), "instance" or "none", in G and D.
        dropout: Dropout(0.5) in G's inner decoder blocks (official: on; pix2pix's only noise).
        loss: adversarial loss on D's logits (official "vanilla" = ``nonsaturating``); D's loss is halved, see
            :func:`official_loss_scales`.
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
        image_shape: (C, H, W) of the targets; linked from the datamodule.
        latent_dim: must be 0 (no noise; pix2pix's only randomness is dropout).
        num_grid_samples: (input, output, target) triples in the grids.
        **kwargs: the shared options (:class:`~lightning_gans.core.GANModule`): lr_g/lr_d (2e-4), betas
            ((0.5, 0.999)), optimizers, ema_decay, DiffAugment/instance noise on D's input pairs, real_label,
            spectral norm switches. n_critic, gradient_penalty, r1_gamma and
            feature_matching are refused.
    """

    def __init__(
        self,
        *,
        input_channels: int = 3,
        num_downs: int | None = None,
        base_channels: int = 64,
        d_base_channels: int = 64,
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
        image_shape: tuple[int, int, int] = (3, 256, 256),
        latent_dim: int = 0,
        num_grid_samples: int = 8,
        **kwargs: Any,
    ) -> None:
        kwargs = translation_defaults(kwargs, "Pix2Pix", image_shape=image_shape, latent_dim=latent_dim,
                                      num_grid_samples=num_grid_samples)  # fmt: skip
        super().__init__(**kwargs)
        self.save_hyperparameters()
        check_translation_options(self, "Pix2Pix")
        self.loss = check_loss_name(loss)
        check_real_label(loss, self.real_label)
        self.d_scale, self.g_scale = official_loss_scales(loss)
        if lambda_l1 < 0 or lambda_gan < 0:
            raise ValueError(f"lambda_l1 and lambda_gan must be 0 or positive, got {lambda_l1} and {lambda_gan}")
        if lambda_l1 == 0 and lambda_gan == 0:
            raise ValueError("lambda_l1 and lambda_gan are both 0, so G has nothing to learn from: set one of them")
        self.lambda_l1, self.lambda_gan = lambda_l1, lambda_gan
        self.input_channels = input_channels
        self.generator_mode = check_generator_mode(generator_mode)
        self.n_epochs, self.n_epochs_decay = n_epochs, n_epochs_decay
        linear_decay(n_epochs, n_epochs_decay)  # validates

        channels, height, width = self.image_shape
        if num_downs is None:
            num_downs = max(2, min(8, int(math.log2(min(height, width)))))
        self.generator = UNetGenerator(
            input_channels, channels, num_downs, base_channels, norm, dropout, init_type, init_gain
        )
        try:
            self.generator.check_input_size(height, width)
        except ValueError as err:
            raise ValueError(
                f"Pix2Pix cannot translate {height}x{width} images: {err} With the paired datamodule, set "
                "data.init_args.crop_size to such a multiple, or set model.init_args.num_downs (or leave it null)."
            ) from None
        self.discriminator = PatchDiscriminator(
            input_channels + channels, d_base_channels, n_layers_d, norm, init_type=init_type, init_gain=init_gain
        )
        one_hot = self.num_classes > 0 and input_channels == self.num_classes
        self.fixed_batch = FixedBatch(self.hparams.num_grid_samples, (input_channels, height, width),
                                      self.image_shape, one_hot_input=one_hot)  # fmt: skip
        self.val_metrics = TranslationMetrics(compare_input=input_channels == channels)
        self.finalize_networks()

    # ------------------------------------------------------------------ losses (one place, tested by hand)
    def discriminate(self, pair: Tensor, labels: Tensor | None = None, return_features: bool = False) -> Tensor:
        """D's logits on an (input, image) pair concatenated along the channels, after ``d_input``."""
        return self.discriminator(self.d_input(pair))

    def discriminator_losses(self, x: Tensor, y: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """D's halved loss on (x, G(x)) (detached) and (x, y), each scored in its own batch, fake first."""
        fake_logits = self.discriminate(torch.cat([x, fake.detach()], 1))
        real_logits = self.discriminate(torch.cat([x, y], 1))
        d_loss = self.d_scale * discriminator_loss(self.loss, real_logits, fake_logits, real_label=self.real_label)
        return {"d_loss": d_loss, "d_real_logit": real_logits.detach().mean(), "d_fake_logit": fake_logits.detach().mean()}

    def generator_losses(self, x: Tensor, y: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """G's loss: lambda_gan * adversarial term on D(x, G(x)) + lambda_l1 * L1(G(x), y)."""
        adv = self.g_scale * generator_loss(self.loss, self.discriminate(torch.cat([x, fake], 1)))
        l1 = F.l1_loss(fake, y)
        return {"g_loss": self.lambda_gan * adv + self.lambda_l1 * l1, "g_adv": adv, "g_l1": l1}

    # ------------------------------------------------------------------ training
    # The LR schedule (configure_optimizers, on_train_epoch_end) and the setup check: TranslationSchedule.
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        x, y = batch["input"], batch["target"]
        self.fixed_batch.add(x, y, from_validation=False)
        opt_g, opt_d = self.optimizers()
        fake = self.generator(x)  # one G forward for both updates, as in the official code

        with self.toggled_optimizer(opt_d):
            d_losses = self.discriminator_losses(x, y, fake)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_losses["d_loss"])
            opt_d.step()
        self.after_discriminator_step(**d_losses)

        with self.toggled_optimizer(opt_g):
            g_losses = self.generator_losses(x, y, fake)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_losses["g_loss"])
            opt_g.step()
        self.after_generator_step(**g_losses)

    # Validation (input | output | target grids, L1/PSNR/SSIM), ``translate`` and predict: PairedTranslationSteps.
