"""GauGAN: Park, Liu, Wang & Zhu 2019, "Semantic Image Synthesis with Spatially-Adaptive Normalization"
(arXiv:1903.07291).

G (``SPADEGenerator``) makes a photo from a semantic label map alone: the one-hot map, downsampled, is the input
of the first layer and modulates every normalisation layer (SPADE). D is the pix2pixHD multi-scale PatchGAN (two
scales, instance norm, spectral norm) on the label map concatenated with the image. Losses: hinge for D and G, plus
the pix2pixHD discriminator feature-matching loss (:func:`discriminator_feature_matching`, lambda 10) for G, plus
optionally the VGG19 perceptual loss (lambda 10 in the paper; OFF by default here, see below). TTUR Adam: lr_g 1e-4,
lr_d 4e-4, betas (0, 0.9). Xavier init, gain 0.02.

Checked against the official code (NVlabs/SPADE: ``models/pix2pix_model.py``, ``models/networks/loss.py``,
``trainers/pix2pix_trainer.py``, ``options/train_options.py``): the step order (G step, then D step on a fresh
G(s) made without gradients), D run once on the fake and real pairs concatenated along the batch and split,
``gan_mode='hinge'`` averaged over the scales, feature matching as L1 over every scale and every layer but the
logits divided by the number of scales times ``lambda_d_features=10``, ``lambda_vgg=10`` with layer weights 1/32, 1/16,
1/8, 1/4, 1 on relu1_1..relu5_1, ``lr=2e-4`` split by TTUR into G 1e-4 / D 4e-4 with betas (0, 0.9),
``niter=50``/``niter_decay=0`` (constant LR; the decay is a linear one like pix2pix's when set), and ``model.eval()``
at test time (``generator_mode="eval"``, the default).

**The VGG loss** needs ImageNet VGG19 weights, which torchvision downloads. It is off (``lambda_vgg=0``) by default
so that nothing is downloaded; turned on, the weights must already be on disk (``vgg_weights=PATH`` or torchvision's
cache file ``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``), else construction raises a FileNotFoundError that
says how to get them (the message and the loader are the SR families', :mod:`lightning_gans.perceptual`); they are
loaded at the setup of a fit. Nothing is downloaded during training. As in the official code the images go into VGG
in [-1, 1], without ImageNet normalisation. The VGG is frozen and kept out of the checkpoint.

Deviations: no instance-edge map and no "don't care" label (facades has neither); no VAE/style encoder (the
paper's multi-modal variant); D returns logits; label_nc is the datamodule's ``num_classes`` (the palette's classes).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    paired_grid,
    paired_predictions,
    paired_validation_step,
    step_schedulers,
    translate,
    warn_schedule_length,
)
from lightning_gans.losses import discriminator_loss, generator_loss
from lightning_gans.networks.patchgan import MultiScaleDiscriminator
from lightning_gans.networks.spade import SPADEGenerator
from lightning_gans.optim import check_adversarial_options, make_optimizers
from lightning_gans.pairs import FixedPairs, check_datamodule_shapes, write_validation_grid
from lightning_gans.perceptual import VGGFeatures, load_vgg, resolve_vgg_weights
from lightning_gans.renames import accepts_renamed

# GauGAN's VGG loss: relu1_1..relu5_1 of VGG19 (lightning_gans.perceptual), weighted as in the official code.
VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def discriminator_feature_matching(
    real_outputs: Sequence[Sequence[Tensor]], fake_outputs: Sequence[Sequence[Tensor]]
) -> Tensor:
    """pix2pixHD / GauGAN discriminator feature matching (unweighted).

    ``real_outputs`` and ``fake_outputs`` are a multi-scale discriminator's outputs, one list per scale of
    ``[feature maps ..., logits]``. The loss is the L1 distance (mean over elements) between fake and real features
    of every intermediate layer of every scale, the logits excluded, summed, divided by the number of scales. The
    real features are detached: only G is pushed. (Unlike :func:`lightning_gans.losses.feature_matching_loss`, which
    matches batch means as in Salimans et al. 2016, this matches the features of each sample with those of its own
    real pair.)
    """
    if len(real_outputs) != len(fake_outputs) or not fake_outputs:
        raise ValueError(f"got {len(real_outputs)} real and {len(fake_outputs)} fake scales")
    loss = fake_outputs[0][0].new_zeros(())
    for real_scale, fake_scale in zip(real_outputs, fake_outputs):
        for real, fake in zip(real_scale[:-1], fake_scale[:-1]):
            loss = loss + F.l1_loss(fake, real.detach())
    return loss / len(fake_outputs)


def vgg_pyramid_loss(vgg: VGGFeatures, fake: Tensor, real: Tensor) -> Tensor:
    """GauGAN's VGG loss: sum over relu1_1..relu5_1 of weight * L1(VGG(fake), VGG(real)), the real side detached."""
    with torch.no_grad():
        targets = vgg(real)
    loss = fake.new_zeros(())
    for weight, x, y in zip(VGG_LAYER_WEIGHTS, vgg(fake), targets):
        loss = loss + weight * F.l1_loss(x, y)
    return loss


@accepts_renamed  # base_channels, d_base_channels, lambda_feat: renamed in 0.2.0 (lightning_gans.renames)
class GauGAN(GANModule):
    """GauGAN / SPADE: semantic label map -> photo with a SPADE generator and a multi-scale PatchGAN.

    Batches: ``{"input": one-hot [B, K, H, W], "label": [B, H, W], "target": [B, C, H, W], "name"}``
    (PairedImageDataModule with ``label_palette``; K = ``num_classes``, linked from the datamodule); predict batches
    ``{"input", "name", "size"}``.

    Args:
        g_channels: G's ngf (64); its first blocks have 16 times as many channels.
        d_channels: D's ndf (64).
        num_d: discriminator scales (2).
        n_layers_d: stride-2 layers per scale (3 = the official n_layers_D=4).
        num_upsampling_layers: "normal" (5), "more" (6) or "most" (7) upsamplings in G.
        spade_hidden: hidden channels of each SPADE layer (128).
        spectral_norm_g: spectral norm in G's residual blocks (official: on).
        spectral_norm_d: spectral norm in D's normalised layers (official: on).
        param_free_norm: G's parameter-free norm inside SPADE, "batch" (official, synchronised under DDP with
            ``Trainer(sync_batchnorm=True)``), "instance" or "syncbatch".
        d_norm: D's norm, "instance" (official), "batch" or "none".
        lambda_d_features: weight of D feature matching, the L1 between D's features of each output and of its
            target (10; 0 turns it off).
        lambda_vgg: weight of the VGG19 perceptual loss (paper: 10; default 0 = off, see the module docstring).
        vgg_weights: path of the VGG19 weights when lambda_vgg > 0 (default: torchvision's cache file).
        n_epochs: epochs at the initial learning rate (official niter 50).
        n_epochs_decay: epochs of linear decay after them (official niter_decay 0).
        generator_mode: how validation, grids and predict run G: "eval" (official test) or "train".
        init_type: weight init (official "xavier").
        init_gain: its gain (0.02).
        optimizer_g: G's optimizer (official adam).
        optimizer_d: D's optimizer (official adam).
        lr_g: G's learning rate (TTUR: 1e-4).
        lr_d: D's learning rate (TTUR: 4e-4).
        betas: Adam's betas of both ((0, 0.9) with TTUR).
        ema_decay: decay of an EMA copy of G used by validation, grids and predict (0 = off, as in the paper).
        image_shape: (C, H, W) of the photos; linked from the datamodule.
        num_classes: classes of the label maps (G's label_nc); linked from the datamodule's palette.
        num_grid_samples: (label map, output, target) triples in the grids.
    """

    def __init__(
        self,
        *,
        g_channels: int = 64,
        d_channels: int = 64,
        num_d: int = 2,
        n_layers_d: int = 3,
        num_upsampling_layers: str = "normal",
        spade_hidden: int = 128,
        spectral_norm_g: bool = True,
        spectral_norm_d: bool = True,
        param_free_norm: str = "batch",
        d_norm: str = "instance",
        lambda_d_features: float = 10.0,
        lambda_vgg: float = 0.0,
        vgg_weights: str | None = None,
        n_epochs: int = 50,
        n_epochs_decay: int = 0,
        generator_mode: str = "eval",
        init_type: str = "xavier",
        init_gain: float = 0.02,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 1e-4,
        lr_d: float = 4e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        ema_decay: float = 0.0,
        image_shape: tuple[int, int, int] = (3, 256, 256),
        num_classes: int = 0,
        num_grid_samples: int = 8,
    ) -> None:
        super().__init__(image_shape=image_shape, num_classes=num_classes)
        self.save_hyperparameters()
        if len(self.image_shape) != 3:
            raise ValueError(f"GauGAN makes images: image_shape must be (C, H, W), got {self.image_shape}")
        check_adversarial_options(self.hparams)
        if self.num_classes < 1:
            raise ValueError(
                "GauGAN makes images from semantic label maps and needs their number of classes: use "
                "datamodules.paired.PairedImageDataModule with label_palette (e.g. 'facades'), whose num_classes is "
                "linked into the model, or set model.init_args.num_classes"
            )
        for name, value in (("lambda_d_features", lambda_d_features), ("lambda_vgg", lambda_vgg)):
            if value < 0:
                raise ValueError(f"{name} must be 0 (off) or positive, got {value}")
        self.lambda_d_features, self.lambda_vgg = lambda_d_features, lambda_vgg
        self.input_channels = self.num_classes  # G reads one-hot label maps
        # Held outside the module tree: frozen, never in checkpoints, never wrapped by DDP; loaded at a fit's setup
        # (a checkpoint trained with it loads and predicts without the weights), moved on first use.
        self._vgg: list[VGGFeatures] = []
        if lambda_vgg > 0:
            resolve_vgg_weights(vgg_weights, "GauGAN")  # a missing file is an error now, not at the first fit
        self.generator_mode = check_generator_mode(generator_mode)
        linear_decay(n_epochs, n_epochs_decay)  # validates

        channels, height, width = self.image_shape
        try:
            self.generator = SPADEGenerator(
                self.num_classes,
                channels,
                g_channels,
                image_size=width,
                num_upsampling_layers=num_upsampling_layers,
                aspect_ratio=width / height,
                spectral_norm=spectral_norm_g,
                hidden=spade_hidden,
                param_free_norm=param_free_norm,
                init_type=init_type,
                init_gain=init_gain,
            )
        except ValueError as err:
            raise ValueError(
                f"GauGAN cannot make {height}x{width} images: {err} With the paired datamodule, set "
                "data.init_args.crop_size accordingly."
            ) from None
        self.discriminator = MultiScaleDiscriminator(
            self.num_classes + channels,
            d_channels,
            n_layers_d,
            d_norm,
            num_d,
            spectral_norm_d,
            init_type=init_type,
            init_gain=init_gain,
        )
        self.generator_ema = ema_copy(self.generator, ema_decay)
        self.fixed_batch = FixedPairs(num_grid_samples, (self.num_classes, height, width), self.image_shape, True)
        self.val_metrics = TranslationMetrics(compare_input=False)

    # ------------------------------------------------------------------ losses (one place, tested by hand)
    def discriminate_pairs(
        self, segmap: Tensor, fake: Tensor, real: Tensor
    ) -> tuple[list[list[Tensor]], list[list[Tensor]]]:
        """D's outputs (per scale, [features..., logits]) on (s, fake) and (s, real): one D pass over both pairs
        concatenated along the batch, then split, as in the official code."""
        fake_pair = torch.cat([segmap, fake], 1)
        real_pair = torch.cat([segmap, real], 1)
        outputs = self.discriminator(torch.cat([fake_pair, real_pair], 0))
        n = fake.shape[0]
        fake_out = [[t[:n] for t in scale] for scale in outputs]
        real_out = [[t[n:] for t in scale] for scale in outputs]
        return fake_out, real_out

    def generator_losses(self, segmap: Tensor, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Hinge G loss averaged over scales + lambda_d_features * feature matching (+ lambda_vgg * VGG when on)."""
        fake_out, real_out = self.discriminate_pairs(segmap, fake, real)
        adv = torch.stack([generator_loss("hinge", scale[-1]) for scale in fake_out]).mean()
        losses = {"g_adv": adv}
        g_loss = adv
        if self.lambda_d_features > 0:
            losses["g_d_features"] = discriminator_feature_matching(real_out, fake_out)
            g_loss = g_loss + self.lambda_d_features * losses["g_d_features"]
        if self._vgg:
            losses["g_vgg"] = vgg_pyramid_loss(self._vgg[0].to(fake.device), fake, real)
            g_loss = g_loss + self.lambda_vgg * losses["g_vgg"]
        return {"g_loss": g_loss, **losses}

    def discriminator_losses(self, segmap: Tensor, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Hinge D loss, each of its real and fake terms averaged over the scales (the official D_real + D_Fake)."""
        fake_out, real_out = self.discriminate_pairs(segmap, fake.detach(), real)
        d_loss = torch.stack([discriminator_loss("hinge", r[-1], f[-1]) for r, f in zip(real_out, fake_out)]).mean()
        return {"d_loss": d_loss}

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        segmap, real = batch["input"], batch["target"]
        self.fixed_batch.add(segmap, real, from_validation=False)
        opt_g, opt_d = self.optimizers()

        # 1. G step first, as in the official trainer: hinge + feature matching (+ VGG).
        with self.toggled_optimizer(opt_g):
            g_losses = self.generator_losses(segmap, real, self.generator(segmap))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_losses["g_loss"])
            opt_g.step()
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        self.count_g_step(**g_losses)

        # 2. D step on a fresh G(s), without gradient to G.
        with self.toggled_optimizer(opt_d):
            with torch.no_grad():
                fake = self.generator(segmap)
            d_losses = self.discriminator_losses(segmap, real, fake)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_losses["d_loss"])
            opt_d.step()
        self.count_d_step(**d_losses)

    def translate(self, x: Tensor) -> Tensor:
        """G(label map) in [-1, 1] as validation, grids and predict see it (EMA G when on; ``generator_mode``)."""
        return translate(self.sampling_generator(), x, self.generator_mode)

    # ------------------------------------------------------------------ plumbing: one line each (image2image.py)
    # Copied from lightning_gans.models.pix2pix.Pix2Pix.configure_optimizers
    def configure_optimizers(self):
        opts = make_optimizers(self.generator, self.discriminator, self.hparams)
        return list(opts), linear_decay_schedulers(opts, self.hparams.n_epochs, self.hparams.n_epochs_decay)

    def setup(self, stage: str) -> None:
        check_datamodule_shapes(self, self.input_channels, "GauGAN")
        if stage == "fit" and self.lambda_vgg > 0 and not self._vgg:  # as the SR families load theirs
            self._vgg = [load_vgg(VGG_LAYERS, self.hparams.vgg_weights, "GauGAN", input_norm=False)]

    # Copied from lightning_gans.models.pix2pix.Pix2Pix.on_fit_start
    def on_fit_start(self) -> None:
        warn_schedule_length(self, self.hparams.n_epochs, self.hparams.n_epochs_decay)

    # Copied from lightning_gans.models.pix2pix.Pix2Pix.on_train_epoch_end
    def on_train_epoch_end(self) -> None:
        step_schedulers(self)

    # Copied from lightning_gans.models.pix2pix.Pix2Pix.validation_step
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        paired_validation_step(self, batch)

    # Copied from lightning_gans.models.pix2pix.Pix2Pix.on_validation_epoch_end
    def on_validation_epoch_end(self) -> None:
        write_validation_grid(self, self.grid_images(), nrow=self.fixed_batch.size)

    # Copied from lightning_gans.models.pix2pix.Pix2Pix.grid_images
    def grid_images(self) -> Tensor:
        return paired_grid(self)

    # Copied from lightning_gans.models.pix2pix.Pix2Pix.predict_step
    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return paired_predictions(self, batch)
