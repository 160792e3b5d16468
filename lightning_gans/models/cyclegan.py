"""CycleGAN: Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks" (arXiv:1703.10593).

Two generators, G: A -> B and F: B -> A (``generator_ab``, ``generator_ba``; ResNet generators with 9 residual blocks
at 256x256, 6 at 128x128), two PatchGAN discriminators with instance norm (``discriminator_b`` judges domain B,
``discriminator_a`` domain A), the least-squares GAN loss, the cycle losses ``lambda_a * |F(G(a)) - a|_1`` and
``lambda_b * |G(F(b)) - b|_1`` (lambda 10) and the identity losses ``lambda_identity * lambda_b * |G(b) - b|_1`` and
``lambda_identity * lambda_a * |F(a) - a|_1`` (0.5). Each discriminator learns from a history of 50 generated images
(Shrivastava et al. 2017). One Adam(2e-4, (0.5, 0.999)) over both generators and one over both discriminators;
batch 1; the learning rate constant for ``n_epochs`` then decaying linearly to zero over ``n_epochs_decay``
(100 + 100).

Checked against the official code (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/cycle_gan_model.py``,
``util/image_pool.py``, ``models/networks.py``, ``options/``): the step order (both generators' update first, D
frozen; then both discriminators on pooled fakes), ``gan_mode='lsgan'``, ``lambda_A = lambda_B = 10``,
``lambda_identity = 0.5``, ``pool_size = 50``, ``norm='instance'``, ``no_dropout=True``, ``netG='resnet_9blocks'``,
``netD='basic'``, N(0, 0.02) init.

**Loss scale.** The official LSGAN loss is MSE: D minimises ``0.5 * (MSE(D(b), 1) + MSE(D(G(a)), 0))`` and G
``MSE(D(G(a)), 1)``. ``losses.py``'s ``lsgan`` is ``1/2 (D(x)-1)^2 + 1/2 D(G(z))^2`` for D, the same as the official
D, and ``1/2 (D(G(z))-1)^2`` for G, half the official G term. G's adversarial terms are therefore doubled here
(:func:`~lightning_gans.image2image.official_loss_scales`), so that they weigh against the cycle (10) and identity
(5) L1 terms exactly as in the official code.

**The image pools** are child modules (``pool_a``, ``pool_b``) holding their images in buffers, so checkpoints carry
them and ``fit --ckpt_path`` resumes with the same history (float32: at 256x256, 50 RGB images are 39 MB per
pool). They draw from torch's RNG (also in the checkpoint), not Python's ``random`` as the official pool does.

**The LR schedule** is two ``LambdaLR`` returned from ``configure_optimizers`` (Lightning saves and restores them)
and stepped in ``on_train_epoch_end`` (manual optimisation steps nothing by itself). This plumbing, the fixed grid
images and the grids are plain functions of :mod:`lightning_gans.image2image`, called from one-line hooks.

Deviations: D returns logits; ``num_blocks`` defaults to the image size (9 from 256 up, else 6); no EMA copies of
the generators (the paper has none); validation (cycle L1, how far outputs move from the inputs), grids and predict are
additions.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from lightning_gans.core import GANModule
from lightning_gans.counters import HostCount
from lightning_gans.image2image import (
    check_generator_mode,
    linear_decay,
    linear_decay_schedulers,
    official_loss_scales,
    step_schedulers,
    translate,
    warn_schedule_length,
)
from lightning_gans.losses import discriminator_loss, generator_loss
from lightning_gans.networks.patchgan import PatchDiscriminator
from lightning_gans.networks.resnet_translator import ResnetTranslator
from lightning_gans.optim import check_adversarial_options, make_optimizer
from lightning_gans.pairs import (
    FixedPairs,
    check_datamodule_shapes,
    grid_rows,
    output_name,
    predict_sizes,
    write_validation_grid,
)
from lightning_gans.renames import accepts_renamed


class ImagePool(nn.Module):
    """History of generated images for a discriminator (Shrivastava et al. 2017; the official ``ImagePool``).

    Until ``pool_size`` images are stored, each queried image is stored and returned. Then each queried image is,
    with probability 1/2, returned as is, or swapped: a uniformly chosen stored image is returned and the new one
    takes its place. ``pool_size=0`` returns the queried images unchanged.

    The images and their count are buffers registered at construction, so checkpoints save and restore them. The
    module has no parameters (GAN DDP leaves it unwrapped; each process keeps its own history).

    Args:
        pool_size: images kept (official 50).
        image_shape: (C, H, W) of the images.
    """

    def __init__(self, pool_size: int, image_shape: Sequence[int]) -> None:
        super().__init__()
        if pool_size < 0:
            raise ValueError(f"pool_size must be 0 (no pool) or more, got {pool_size}")
        self.pool_size = pool_size
        self.register_buffer("images", torch.zeros(pool_size, *image_shape))
        self.register_buffer("num_images", torch.zeros((), dtype=torch.long))
        self.stored = HostCount(self, "num_images")  # read on the host, not from the device at every query

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """Images for the discriminator, one per queried image (detached)."""
        images = images.detach()
        if self.pool_size == 0:
            return images
        stored = self.stored.get()
        out = []
        for image in images:
            image = image.to(self.images.dtype)
            if stored < self.pool_size:
                self.images[stored].copy_(image)
                stored += 1
                out.append(image)
            elif random.random() > 0.5:  # host-side draws: a device tensor read here would stall the GPU
                index = random.randrange(self.pool_size)
                out.append(self.images[index].clone())
                self.images[index].copy_(image)
            else:
                out.append(image)
        self.stored.set(stored)
        return torch.stack(out)


@accepts_renamed  # base_channels, d_base_channels, n_blocks: renamed in 0.2.0 (lightning_gans.renames)
class CycleGAN(GANModule):
    """CycleGAN: two ResNet generators and two PatchGAN discriminators trained with cycle consistency.

    Batches: ``{"A": [B, C_A, H, W], "B": [B, C, H, W], "name_A", "name_B"}`` (UnpairedImageDataModule); predict
    batches ``{"input", "name", "size", "direction"}`` with direction "AtoB" or "BtoA". ``image_shape`` is domain B's
    (C, H, W), linked from the datamodule; domain A has ``input_channels`` channels and the same size.

    Args:
        input_channels: channels of domain A (the official input_nc).
        num_blocks: residual blocks per generator; None: 9 for images of 256 and more (resnet_9blocks), else 6.
        g_channels: generators' first-layer filters (ngf, 64).
        d_channels: discriminators' first-layer filters (ndf, 64).
        n_layers_d: discriminators' stride-2 layers (3: 70x70 PatchGAN).
        norm: "instance" (official), "batch" or "none", in all four networks.
        dropout: Dropout(0.5) in the residual blocks (official: off).
        loss: adversarial loss (official "lsgan"); see the module docstring for the scale.
        lambda_a: weight of the A -> B -> A cycle loss (10).
        lambda_b: weight of the B -> A -> B cycle loss (10).
        lambda_identity: identity loss weight, relative to lambda_a/lambda_b (0.5; 0 turns it off). Needs
            input_channels equal to the channels of B.
        pool_size: images in each discriminator's history (50; 0 turns the pools off).
        n_epochs: epochs at the initial learning rate (official 100).
        n_epochs_decay: epochs of linear decay to zero after them (official 100); train for the sum.
        generator_mode: how validation, grids and predict run the generators, "eval" (default) or "train" (as
            :class:`~lightning_gans.models.pix2pix.Pix2Pix`; the same with instance norm and no dropout).
        init_type: weight init (official "normal").
        init_gain: its gain (0.02).
        optimizer_g: the optimizer of both generators (official adam).
        optimizer_d: the optimizer of both discriminators (official adam).
        lr_g: the generators' learning rate (2e-4).
        lr_d: the discriminators' learning rate (2e-4).
        betas: Adam's betas ((0.5, 0.999)).
        image_shape: (C, H, W) of domain B; linked from the datamodule.
        num_classes: classes of the data (unused); linked from the datamodule.
        num_grid_samples: images per row in the grids.
    """

    def __init__(
        self,
        *,
        input_channels: int = 3,
        num_blocks: int | None = None,
        g_channels: int = 64,
        d_channels: int = 64,
        n_layers_d: int = 3,
        norm: str = "instance",
        dropout: bool = False,
        loss: str = "lsgan",
        lambda_a: float = 10.0,
        lambda_b: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        generator_mode: str = "eval",
        init_type: str = "normal",
        init_gain: float = 0.02,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        image_shape: tuple[int, int, int] = (3, 256, 256),
        num_classes: int = 0,
        num_grid_samples: int = 8,
    ) -> None:
        super().__init__(image_shape=image_shape, num_classes=num_classes)
        self.save_hyperparameters()
        if len(self.image_shape) != 3:
            raise ValueError(f"CycleGAN translates images: image_shape must be (C, H, W), got {self.image_shape}")
        check_adversarial_options(self.hparams)
        self.loss = loss
        self.d_scale, self.g_scale = official_loss_scales(loss)
        for name, value in (("lambda_a", lambda_a), ("lambda_b", lambda_b), ("lambda_identity", lambda_identity)):
            if value < 0:
                raise ValueError(f"{name} must be 0 or positive, got {value}")
        channels_b, height, width = self.image_shape
        if lambda_identity > 0 and input_channels != channels_b:
            raise ValueError(
                f"the identity loss maps B images through G: A->B, so it needs domains with the same channels, got "
                f"{input_channels} (A) and {channels_b} (B); set lambda_identity: 0"
            )
        self.lambda_a, self.lambda_b, self.lambda_identity = lambda_a, lambda_b, lambda_identity
        self.input_channels = input_channels
        self.generator_mode = check_generator_mode(generator_mode)
        linear_decay(n_epochs, n_epochs_decay)  # validates

        if num_blocks is None:
            num_blocks = 9 if min(height, width) >= 256 else 6
        g_args = dict(
            base_channels=g_channels,
            n_blocks=num_blocks,
            norm=norm,
            dropout=dropout,
            init_type=init_type,
            init_gain=init_gain,
        )
        self.generator_ab = ResnetTranslator(input_channels, channels_b, **g_args)
        self.generator_ba = ResnetTranslator(channels_b, input_channels, **g_args)
        try:
            self.generator_ab.check_input_size(height, width)
        except ValueError as err:
            raise ValueError(
                f"CycleGAN cannot translate {height}x{width} images: {err} With the unpaired datamodule, set "
                "data.init_args.crop_size to such a multiple."
            ) from None
        d_args = dict(
            base_channels=d_channels, n_layers=n_layers_d, norm=norm, init_type=init_type, init_gain=init_gain
        )
        self.discriminator_a = PatchDiscriminator(input_channels, **d_args)
        self.discriminator_b = PatchDiscriminator(channels_b, **d_args)
        self.pool_a = ImagePool(pool_size, (input_channels, height, width))
        self.pool_b = ImagePool(pool_size, self.image_shape)
        self.fixed_batch = FixedPairs(num_grid_samples, (input_channels, height, width), self.image_shape)
        # validation means (child modules, so Lightning reduces them over the epoch)
        self.val_cycle, self.val_cycle_a, self.val_cycle_b = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_change_ab, self.val_change_ba = MeanMetric(), MeanMetric()

    # ------------------------------------------------------------------ losses (one place, tested by hand)
    def generator_losses(self, real_a: Tensor, real_b: Tensor) -> dict[str, Tensor]:
        """Both generators' loss: adversarial (LSGAN, official scale) + cycle + identity, with the official weights."""
        fake_b = self.generator_ab(real_a)
        rec_a = self.generator_ba(fake_b)
        fake_a = self.generator_ba(real_b)
        rec_b = self.generator_ab(fake_a)
        adv_ab = self.g_scale * generator_loss(self.loss, self.discriminator_b(fake_b))
        adv_ba = self.g_scale * generator_loss(self.loss, self.discriminator_a(fake_a))
        cycle_a = F.l1_loss(rec_a, real_a)
        cycle_b = F.l1_loss(rec_b, real_b)
        g_loss = adv_ab + adv_ba + self.lambda_a * cycle_a + self.lambda_b * cycle_b
        losses = {"g_adv_ab": adv_ab, "g_adv_ba": adv_ba, "cycle_a": cycle_a, "cycle_b": cycle_b}
        if self.lambda_identity > 0:
            idt_b = F.l1_loss(self.generator_ab(real_b), real_b)
            idt_a = F.l1_loss(self.generator_ba(real_a), real_a)
            g_loss = g_loss + self.lambda_identity * (self.lambda_b * idt_b + self.lambda_a * idt_a)
            losses.update(identity_a=idt_a, identity_b=idt_b)
        return {"g_loss": g_loss, **losses, "fake_a": fake_a.detach(), "fake_b": fake_b.detach()}

    def discriminator_losses(self, real_a: Tensor, real_b: Tensor, fake_a: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        """Both discriminators' halved loss on real images and on (pooled, detached) generated ones."""
        d_b = self.d_scale * discriminator_loss(
            self.loss, self.discriminator_b(real_b), self.discriminator_b(fake_b.detach())
        )
        d_a = self.d_scale * discriminator_loss(
            self.loss, self.discriminator_a(real_a), self.discriminator_a(fake_a.detach())
        )
        return {"d_loss": d_a + d_b, "d_a": d_a, "d_b": d_b}

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real_a, real_b = batch["A"], batch["B"]
        self.fixed_batch.add(real_a, real_b, from_validation=False)
        opt_g, opt_d = self.optimizers()

        # 1. Both generators, both discriminators frozen: adversarial + cycle + identity losses.
        with self.toggled_optimizer(opt_g):
            g_losses = self.generator_losses(real_a, real_b)
            fake_a, fake_b = g_losses.pop("fake_a"), g_losses.pop("fake_b")
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_losses["g_loss"])
            opt_g.step()
        self.count_g_step(**g_losses)

        # 2. Both discriminators, on real images and on generated ones drawn through the image pools.
        with self.toggled_optimizer(opt_d):
            d_losses = self.discriminator_losses(real_a, real_b, self.pool_a.query(fake_a), self.pool_b.query(fake_b))
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_losses["d_loss"])
            opt_d.step()
        self.count_d_step(**d_losses)

    # ------------------------------------------------------------------ translation, validation, grids, predict
    def translate(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        """A -> B (``"AtoB"``) or B -> A (``"BtoA"``) in [-1, 1], as validation, grids and predict see it."""
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
        generator = self.generator_ab if direction == "AtoB" else self.generator_ba
        return translate(generator, x, self.generator_mode)

    def cycle(self, real_a: Tensor, real_b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(G(a), F(G(a)), F(b), G(F(b)))."""
        fake_b = self.translate(real_a, "AtoB")
        fake_a = self.translate(real_b, "BtoA")
        return fake_b, self.translate(fake_b, "BtoA"), fake_a, self.translate(fake_a, "AtoB")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """``val/cycle_l1`` (both cycles, in [-1, 1]) and ``val/change_ab``/``val/change_ba``: the L1 between each
        output and its own input, which grows as the generators stop copying their inputs."""
        real_a, real_b = batch["A"], batch["B"]
        if not self.trainer.sanity_checking:  # the sanity batches come again in the first validation
            self.fixed_batch.add(real_a, real_b, from_validation=True)
        fake_b, rec_a, fake_a, rec_b = self.cycle(real_a, real_b)
        n = real_a.shape[0]
        cycle_a, cycle_b = F.l1_loss(rec_a, real_a), F.l1_loss(rec_b, real_b)
        self.val_cycle.update((cycle_a + cycle_b) / 2)
        self.val_cycle_a.update(cycle_a)
        self.val_cycle_b.update(cycle_b)
        kwargs = dict(on_step=False, on_epoch=True, batch_size=n)
        self.log("val/cycle_l1", self.val_cycle, prog_bar=True, **kwargs)
        self.log("val/cycle_l1_a", self.val_cycle_a, **kwargs)
        self.log("val/cycle_l1_b", self.val_cycle_b, **kwargs)
        if real_a.shape[1] == fake_b.shape[1]:
            self.val_change_ab.update(F.l1_loss(fake_b, real_a))
            self.val_change_ba.update(F.l1_loss(fake_a, real_b))
            self.log("val/change_ab", self.val_change_ab, **kwargs)
            self.log("val/change_ba", self.val_change_ba, **kwargs)

    def grid_images(self) -> Tensor:
        """Six rows of ``num_grid_samples`` images: A | G(A) | F(G(A)) | B | F(B) | G(F(B)) of the fixed batch."""
        real_a, real_b, filled = self.fixed_batch.get()
        k = max(filled, 1)
        fake_b, rec_a, fake_a, rec_b = self.cycle(real_a[:k], real_b[:k])
        return grid_rows([real_a, fake_b, rec_a, real_b, fake_a, rec_b], filled, self.fixed_batch.size)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Each input translated in its ``direction`` (AtoB when absent), written as ``<direction>/<name>.png`` at the
        input's size."""
        x = batch["input"]
        directions = batch.get("direction", "AtoB")
        if isinstance(directions, str):
            directions = [directions] * x.shape[0]
        if len(set(directions)) == 1:
            images = self.translate(x, directions[0])
        else:  # a mixed batch: one image at a time (both domains must then have the same channels to stack)
            images = torch.cat([self.translate(x[i : i + 1], d) for i, d in enumerate(directions)])
        names = [output_name(name, d) for name, d in zip(batch["name"], directions)]
        return {"images": images, "names": names, "sizes": predict_sizes(batch)}

    # ------------------------------------------------------------------ plumbing: one line each (image2image.py)
    def configure_optimizers(self):
        """One optimizer over both generators, one over both discriminators, each with the linear LR decay."""
        hp = self.hparams
        generators = itertools.chain(self.generator_ab.parameters(), self.generator_ba.parameters())
        discriminators = itertools.chain(self.discriminator_a.parameters(), self.discriminator_b.parameters())
        opts = [
            make_optimizer(generators, hp.optimizer_g, hp.lr_g, hp.betas),
            make_optimizer(discriminators, hp.optimizer_d, hp.lr_d, hp.betas),
        ]
        return opts, linear_decay_schedulers(opts, hp.n_epochs, hp.n_epochs_decay)

    # Copied from lightning_gans.models.pix2pix.Pix2Pix.setup with Pix2Pix->CycleGAN
    def setup(self, stage: str) -> None:
        check_datamodule_shapes(self, self.input_channels, "CycleGAN")

    # Copied from lightning_gans.models.pix2pix.Pix2Pix.on_fit_start
    def on_fit_start(self) -> None:
        warn_schedule_length(self, self.hparams.n_epochs, self.hparams.n_epochs_decay)

    # Copied from lightning_gans.models.pix2pix.Pix2Pix.on_train_epoch_end
    def on_train_epoch_end(self) -> None:
        step_schedulers(self)

    # Copied from lightning_gans.models.pix2pix.Pix2Pix.on_validation_epoch_end
    def on_validation_epoch_end(self) -> None:
        write_validation_grid(self, self.grid_images(), nrow=self.fixed_batch.size)
