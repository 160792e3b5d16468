"""StyleGAN: Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for GANs" (arXiv:1812.04948), and
StyleGAN2: Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN" (arXiv:1912.04958), trained
as NVlabs' stylegan2-ada-pytorch trains them (Karras et al. 2020, "Training GANs with Limited Data").

A mapping network turns z into w; a synthesis network starts from a learned 4x4 constant and receives w at every
layer, through modulated convolutions (``style_block: modulated``, StyleGAN2, the default) or adaptive instance
normalisation (``style_block: adain``, StyleGAN), with per-layer noise (:mod:`lightning_gans.networks.stylegan`).
``training_step`` is one iteration of the official training loop, its four phases in the official order:

1. **G main**: the non-saturating logistic loss on images from style-mixed w (probability ``style_mixing_prob``,
   cutoff uniform in ``[1, num_ws)``; ``w_avg`` never moves towards the mixed-in w).
2. **G reg**, every ``pl_interval`` G steps: path-length regularisation on ``batch // pl_batch_shrink`` fresh
   images, ``pl_weight * (|J^T y| - a)^2`` with ``a`` a running mean (decay ``pl_decay``), multiplied by the
   interval (lazy regularisation).
3. **D main**: the logistic loss on real images and on style-mixed fakes.
4. **D reg**, every ``r1_interval`` D steps: R1, ``r1_gamma / 2 * |grad_x D(x)|^2`` on the real batch, multiplied by
   the interval.

Then the EMA generator moves with a half-life of ``ema_kimg`` thousand images (``beta = 0.5 ** (batch /
(1000 ema_kimg))``, the half-life ramped up to ``ema_rampup`` x the images seen when set). Adam's learning rate and
betas are corrected for the extra regularisation steps as the official code does: ``lr * k / (k + 1)`` and
``beta ** (k / (k + 1))`` with ``k`` the interval (also when that penalty's weight is 0, as the official ``cifar``
configuration runs). Each regularisation-only backward adds ``0 * output`` so every parameter is in the graph
(DDP). Non-finite gradients are zeroed before each optimizer step (``nan_to_num``, as the official loop).

The class defaults are the official StyleGAN2 configuration (``--cfg stylegan2``, config F): z and w of 512, an
8-layer mapping network with learning-rate multiplier 0.01, ``channel_base`` 32768 and ``channel_max`` 512, Adam
with lr 0.002 and betas (0, 0.99), R1 gamma 10 every 16 D steps, path length weight 2 every 4 G steps, style mixing
0.9, EMA half-life 10 kimg without ramp-up, minibatch-stddev groups of 4. The configs in ``configs/`` apply the
official ``--cfg auto`` rules for their resolution and batch (2 mapping layers, gamma ``0.0002 res^2 / batch``, ...).

Using a trained model: ``sample`` (and ``predict``, the evaluation callback) use the EMA generator in eval mode with
``noise_mode`` (``const`` by default, as the official ``generate.py``, so the same z always gives the same image)
and the truncation trick ``truncation_psi`` / ``truncation_cutoff``; ``style_mixing_grid``, ``truncation_sweep``
and ``extra_grids`` (logged by the sample-grid callback); ``interpolate`` in W (``predict`` writes the frames when
``interpolation_frames > 0``); ``project`` an image into W (:mod:`lightning_gans.projection`).

Deviations: everything DDP needs to resume (the EMA, ``w_avg``, the path-length mean, the images seen, the phase
counters) is in the checkpoint, which the official pickles are not; ADA is off by default (the official ``--aug``
is ``ada``): ``ada: {policy: bgc}`` switches it on (:class:`lightning_gans.adaptive.Ada`; every D input of every
phase goes through it, and the real logits of D main and of R1 steer p, as the official ``Loss/signs/real``; the
pipeline's own deviations are in :mod:`lightning_gans.ada`), DiffAugment (``diffaugment``, Zhao et al. 2020) is the
other choice, not both; no class conditioning, no FP16 layers (``precision: bf16-mixed`` works); ``max_steps``
counts every optimizer step, the regularisation steps too (prefer ``max_epochs`` or ``max_time``). Path-length
regularisation is refused at the setup of a fit (a plain DataLoader's: at the first batch, before any step) when its
batch (``batch // pl_batch_shrink`` per device) is below 4: it is not stable there (NaN reports at batch 4,
rosinality/stylegan2-pytorch#210; the official code fails outright at 1, NVlabs/stylegan2-ada-pytorch#24); the
official ``cifar`` configuration turns it off (``pl_weight: 0``).

DDP (:class:`~lightning_gans.strategy.GANDDPStrategy`, G and D each in their own DDP): gradients are all-reduced in
every phase; the images seen count the global batch. ``w_avg`` lives in G, whose DDP broadcasts rank 0's buffers at
each forward, and the path-length mean is kept per rank: the checkpoint holds rank 0's (the official code tracks
both per rank and snapshots rank 0's).
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans.adaptive import Ada
from lightning_gans.augment import diff_augment, parse_policy
from lightning_gans.core import GANModule, unwrap
from lightning_gans.counters import HostCount
from lightning_gans.ema import EMA
from lightning_gans.losses import discriminator_loss, generator_loss
from lightning_gans.networks.stylegan import (
    NOISE_MODES,
    STYLE_BLOCKS,
    StyleDiscriminator,
    StyleGenerator,
    check_resolution,
)
from lightning_gans.optim import make_optimizer
from lightning_gans.projection import Projection, project
from lightning_gans.regularizers import path_length_penalty, r1_penalty

#: the smallest path-length batch (per device) that is accepted
MIN_PL_BATCH = 4
#: psi of the truncation-sweep grid's columns
SWEEP_PSIS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)
#: How a trained model is used, not how it was trained: kept out of the saved hyperparameters, so `predict` and
#: `validate --ckpt_path` take them from the config and command line (LightningCLI replaces every saved
#: hyperparameter by the checkpoint's value) and `load_from_checkpoint` gives the defaults.
SAMPLING_OPTIONS = ("truncation_psi", "truncation_cutoff", "noise_mode", "interpolation_frames")


def lazy_regularization_ratio(interval: int) -> float:
    """``k / (k + 1)``: the official correction of Adam's lr (``lr * ratio``) and betas (``beta ** ratio``) for a
    regularisation step every ``k`` steps."""
    return interval / (interval + 1)


def ema_beta(batch_size: int, images_seen: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """The EMA decay of one update: ``0.5 ** (batch / half-life)``, the half-life ``ema_kimg`` thousand images,
    ramped up to ``ema_rampup * images_seen`` when set (the official training loop)."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, images_seen * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


def _sanitize_gradients(module: nn.Module) -> None:
    """Replace NaN/inf gradients (0, +-1e5) before an optimizer step, as the official loop does."""
    for p in module.parameters():
        if p.grad is not None:
            torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)


class StyleGAN(GANModule):
    """StyleGAN / StyleGAN2 with the official training procedure (see the module docstring).

    Args:
        latent_dim: size of z (official: 512).
        w_dim: size of w (official: 512).
        mapping_layers: layers of the mapping network (8 in the papers; 2 in the official ``auto``/``cifar``
            configurations for low resolutions).
        mapping_lr_mul: learning-rate multiplier of the mapping network (0.01).
        style_block: "modulated" (StyleGAN2's modulated/demodulated convolution) or "adain" (StyleGAN's AdaIN).
        channel_base: channels at resolution r are ``min(channel_base // r, channel_max)``, in G and D (official:
            32768; the ``auto`` configuration uses 16384 below 512x512).
        channel_max: the cap on channels (512).
        mbstd_group_size: D's minibatch-standard-deviation group size (4; ``cifar``: 32).
        lr_g: G's Adam learning rate before the lazy-regularisation correction (0.002; ``auto``: 0.0025).
        lr_d: D's Adam learning rate before the correction.
        betas: Adam's betas before the correction ((0, 0.99)).
        r1_gamma: weight of R1 (10 at 1024x1024; ``auto``: ``0.0002 res^2 / batch``); 0 turns it off.
        r1_interval: D steps between R1 steps (16).
        pl_weight: weight of path-length regularisation (2); 0 turns it off (``cifar``).
        pl_interval: G steps between path-length steps (4).
        pl_batch_shrink: the path-length batch is the batch divided by this (2).
        pl_decay: decay of the running mean path length (0.01).
        style_mixing_prob: probability of mixing two w in a training batch (0.9; ``cifar``: 0).
        w_avg_beta: decay of the tracked average of w, used by truncation (0.995).
        ema_kimg: half-life of the EMA generator in thousands of images (10; ``auto``: ``batch * 10 / 32``); 0 = no
            EMA generator.
        ema_rampup: ramp the half-life up to this times the images seen (``auto`` and ``cifar``: 0.05); None = off.
        diffaugment: DiffAugment policy applied to every D input, real and fake, in every phase (e.g.
            "color,translation,cutout"; "" = off). For small datasets.
        ada: adaptive discriminator augmentation (ADA), off by default; see :class:`lightning_gans.adaptive.Ada`.
        truncation_psi: truncation of sampling, grids, predict and evaluation (1 = none). Like the next three, a
            setting of use: not saved in the checkpoint's hyperparameters, so ``predict``/``validate --ckpt_path``
            take it from the command line.
        truncation_cutoff: truncate only the first this many style inputs (None = all).
        noise_mode: noise when sampling: "const" (fixed maps, the same z gives the same image), "random", "none".
        interpolation_frames: frames between consecutive keyframes when predicting; > 0 makes ``predict`` write a
            W-space interpolation through ``num_samples`` keyframes (``interpolation/NNNNNN.png``) instead of
            independent samples.
        image_shape: (C, H, W) of the images, a square power of two from 8 up; linked from the datamodule.
        num_classes: classes of the data (unused: this family is unconditional); linked from the datamodule.
        num_grid_samples: images in the fixed-noise sample grid.
    """

    def __init__(
        self,
        *,
        latent_dim: int = 512,
        w_dim: int = 512,
        mapping_layers: int = 8,
        mapping_lr_mul: float = 0.01,
        style_block: str = "modulated",
        channel_base: int = 32768,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        lr_g: float = 0.002,
        lr_d: float = 0.002,
        betas: tuple[float, float] = (0.0, 0.99),
        r1_gamma: float = 10.0,
        r1_interval: int = 16,
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        style_mixing_prob: float = 0.9,
        w_avg_beta: float = 0.995,
        ema_kimg: float = 10.0,
        ema_rampup: float | None = None,
        diffaugment: str = "",
        ada: Ada | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        interpolation_frames: int = 0,
        image_shape: tuple[int, int, int] = (3, 32, 32),
        num_classes: int = 0,
        num_grid_samples: int = 64,
    ) -> None:
        super().__init__(
            image_shape=image_shape, num_classes=num_classes, latent_dim=latent_dim, num_grid_samples=num_grid_samples
        )
        self.save_hyperparameters(ignore=list(SAMPLING_OPTIONS))
        check_resolution(self.image_shape, "StyleGAN")
        self._check_options()
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if interpolation_frames < 0:
            raise ValueError(f"interpolation_frames must be 0 (off) or positive, got {interpolation_frames}")
        self.truncation_psi, self.truncation_cutoff = truncation_psi, truncation_cutoff
        self.noise_mode, self.interpolation_frames = noise_mode, interpolation_frames
        parse_policy(diffaugment)
        self.ada = Ada.of(ada).build(self.image_shape, diffaugment)  # None when off
        self.generator = StyleGenerator(
            latent_dim,
            self.image_shape,
            w_dim,
            mapping_layers,
            mapping_lr_mul,
            channel_base,
            channel_max,
            style_block,
            w_avg_beta,
        )
        self.discriminator = StyleDiscriminator(self.image_shape, channel_base, channel_max, mbstd_group_size)
        self.generator_ema = EMA(self.generator, decay=0.0) if ema_kimg > 0 else None
        self.num_ws = self.generator.num_ws
        if truncation_cutoff is not None and not 0 <= truncation_cutoff <= self.num_ws:
            raise ValueError(f"truncation_cutoff must be in [0, {self.num_ws}] (style inputs), got {truncation_cutoff}")
        # What drives the schedules, in the checkpoint: the images seen (EMA ramp-up) and the path-length mean.
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))
        self.images_seen_count = HostCount(self, "images_seen")  # read on the host: no device sync per step
        self.register_buffer("pl_mean", torch.zeros(()))
        self._sampling: dict[str, Any] = {}
        self._batch_checked = False

    def _check_options(self) -> None:
        h = self.hparams
        if h.style_block not in STYLE_BLOCKS:
            raise ValueError(f"style_block must be one of {STYLE_BLOCKS}, got {h.style_block!r}")
        for name in ("r1_interval", "pl_interval", "pl_batch_shrink", "mapping_layers", "mbstd_group_size"):
            if h[name] < 1:
                raise ValueError(f"{name} must be at least 1, got {h[name]}")
        for name in ("r1_gamma", "pl_weight", "ema_kimg"):
            if h[name] < 0:
                raise ValueError(f"{name} must be 0 (off) or positive, got {h[name]}")
        for name in ("lr_g", "lr_d", "mapping_lr_mul"):
            if h[name] <= 0:
                raise ValueError(f"{name} must be positive, got {h[name]}")
        if not 0 <= h.style_mixing_prob <= 1 or not 0 <= h.pl_decay <= 1 or not 0 <= h.w_avg_beta < 1:
            raise ValueError(
                "style_mixing_prob and pl_decay must be in [0, 1] and w_avg_beta in [0, 1), got "
                f"{h.style_mixing_prob}, {h.pl_decay}, {h.w_avg_beta}"
            )
        if h.ema_rampup is not None and h.ema_rampup <= 0:
            raise ValueError(f"ema_rampup must be positive or null (off), got {h.ema_rampup}")

    def configure_optimizers(self):
        h = self.hparams
        optimizers = []
        for net, lr, interval in ((self.generator, h.lr_g, h.pl_interval), (self.discriminator, h.lr_d, h.r1_interval)):
            ratio = lazy_regularization_ratio(interval)
            betas = tuple(beta**ratio for beta in h.betas)
            optimizers.append(make_optimizer(net.parameters(), "adam", lr * ratio, betas))
        return optimizers

    # ------------------------------------------------------------------------------------------------ training
    def style_mixing(self, n: int) -> dict[str, Any]:
        """A second z and the cutoff for style-mixing regularisation: with probability ``style_mixing_prob`` the
        style inputs from a cutoff drawn uniformly in ``[1, num_ws)`` come from the second z."""
        p = self.hparams.style_mixing_prob
        if p <= 0:
            return {}
        cutoff = random.randrange(1, self.num_ws) if random.random() < p else self.num_ws  # host RNG: no device read
        return {"mix_z": self.noise(n), "mixing_cutoff": cutoff}

    def critic(self, images: Tensor) -> Tensor:
        """D's logits; every D input, real or fake, goes through ADA or DiffAugment when one is on."""
        if self.ada is not None:
            images = self.ada(images)
        if self.hparams.diffaugment:
            images = diff_augment(images, self.hparams.diffaugment)
        return self.discriminator(images)

    def setup(self, stage: str) -> None:
        """Before a fit starts: the datamodule's batch size checked for path-length regularisation (a plain
        DataLoader's batch is checked at the first batch, still before any step)."""
        dm = self.attached_datamodule()
        if stage == "fit" and getattr(dm, "batch_size", None):
            self._check_batch(int(dm.batch_size))

    def _check_batch(self, n: int) -> None:
        """Refuse path-length regularisation on a batch too small for it (per device, before any step)."""
        if self._batch_checked:
            return
        self._batch_checked = True
        h = self.hparams
        if h.pl_weight > 0 and n // h.pl_batch_shrink < MIN_PL_BATCH:
            raise ValueError(
                f"path-length regularisation (pl_weight {h.pl_weight}) would run on {n} // pl_batch_shrink "
                f"{h.pl_batch_shrink} = {n // h.pl_batch_shrink} images per device; below {MIN_PL_BATCH} its running "
                "mean is too noisy to be stable (NaN reports at batch 4). Use a batch of at least "
                f"{MIN_PL_BATCH * h.pl_batch_shrink}, a smaller pl_batch_shrink, or pl_weight 0 (as the official "
                "cifar configuration)."
            )

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        n, h = real.shape[0], self.hparams
        self._check_batch(n)
        opt_g, opt_d = self.optimizers()

        # 1. G main: the non-saturating loss on images from style-mixed w.
        with self.toggled_optimizer(opt_g):
            fake = self.generator(self.noise(n), **self.style_mixing(n))
            g_loss = generator_loss("nonsaturating", self.critic(fake))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            _sanitize_gradients(self.generator)
            opt_g.step()
        g_losses = {"g_loss": g_loss}

        # 2. G reg (lazy): path length every pl_interval G steps, on a shrunk batch, the loss x the interval.
        if h.pl_weight > 0 and self.g_steps % h.pl_interval == 0:
            with self.toggled_optimizer(opt_g):
                m = max(1, n // h.pl_batch_shrink)
                fake, ws = self.generator(self.noise(m), **self.style_mixing(m), return_ws=True)
                penalty, pl_mean = path_length_penalty(fake, ws, self.pl_mean, h.pl_decay)
                self.pl_mean.copy_(pl_mean)
                pl_loss = (fake[:, 0, 0, 0] * 0 + penalty * h.pl_weight).mean() * h.pl_interval  # every G param
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(pl_loss)
                _sanitize_gradients(self.generator)
                opt_g.step()
            g_losses["pl_penalty"] = penalty.detach().mean()
        self.count_g_step(**g_losses)

        # 3. D main: real images as real, style-mixed fakes as fake.
        with self.toggled_optimizer(opt_d):
            with torch.no_grad():
                fake = self.generator(self.noise(n), **self.style_mixing(n))
            real_logits = self.critic(real)
            d_loss = discriminator_loss("nonsaturating", real_logits, self.critic(fake))
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            _sanitize_gradients(self.discriminator)
            opt_d.step()
        d_losses = {"d_loss": d_loss}

        # 4. D reg (lazy): R1 on the real batch every r1_interval D steps, gamma / 2 x the interval.
        if h.r1_gamma > 0 and self.d_steps % h.r1_interval == 0:
            with self.toggled_optimizer(opt_d):
                penalty, r1_logits = r1_penalty(self.critic, real, return_logits=True)
                r1_loss = (r1_logits.mean() * 0 + penalty * (h.r1_gamma / 2)) * h.r1_interval  # every D param
                opt_d.zero_grad(set_to_none=True)
                self.manual_backward(r1_loss)
                _sanitize_gradients(self.discriminator)
                opt_d.step()
            d_losses["r1_penalty"] = penalty.detach()
            if self.ada is not None:  # ADA's r_t counts R1's reals too, as the official signs/real
                self.ada.observe(r1_logits)
        ada = {"ada_p": self.ada.p, "ada_r_t": self.ada.r_t} if self.ada is not None else {}  # p of this step
        self.count_d_step(**d_losses, **ada)
        if self.ada is not None:  # ADA: sign(D(real)) to the controller; every `interval` D steps p moves
            self.ada.observe(real_logits)
            self.ada.adjust(self.d_steps, n * self.trainer.world_size)

        # 5. EMA generator, half-life in images (the global batch under DDP).
        batch_size = n * self.trainer.world_size
        if self.generator_ema is not None:
            beta = ema_beta(batch_size, self.images_seen_count.get(), h.ema_kimg, h.ema_rampup)
            self.generator_ema.update(self.generator, decay=beta)
        self.images_seen_count.add(batch_size)

    # ---------------------------------------------------------------------------------------- using the model
    @torch.no_grad()
    def sample(
        self,
        n: int | None = None,
        *,
        z: Tensor | None = None,
        labels: Tensor | None = None,
        use_ema: bool = True,
        truncation_psi: float | None = None,
        truncation_cutoff: int | None = None,
        noise_mode: str | None = None,
    ) -> Tensor:
        """Images in [-1, 1] (EMA generator, eval mode); ``truncation_psi`` / ``truncation_cutoff`` / ``noise_mode``
        override the model's settings for this call (None keeps them; a cutoff of ``num_ws`` means all layers)."""
        given = {"truncation_psi": truncation_psi, "truncation_cutoff": truncation_cutoff, "noise_mode": noise_mode}
        self._sampling = {k: v for k, v in given.items() if v is not None}
        try:
            return super().sample(n, z=z, labels=labels, use_ema=use_ema)
        finally:
            self._sampling = {}

    def _setting(self, name: str) -> Any:
        return self._sampling.get(name, getattr(self, name))

    def generate(self, generator: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
        psi, cutoff, noise_mode = (self._setting(k) for k in ("truncation_psi", "truncation_cutoff", "noise_mode"))
        return generator(z, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode)

    @torch.no_grad()
    def _synthesize(self, ws: Tensor, use_ema: bool = True) -> Tensor:
        generator = self.sampling_generator(use_ema)
        was_training = generator.training
        generator.eval()
        try:
            return generator.synthesis(ws.to(self.device), noise_mode=self.noise_mode).clamp(-1, 1)
        finally:
            generator.train(was_training)

    @torch.no_grad()
    def mapped(self, z: Tensor, use_ema: bool = True) -> Tensor:
        """``ws [N, num_ws, w_dim]`` of z with the model's truncation (eval mode: ``w_avg`` does not move)."""
        generator = self.sampling_generator(use_ema)
        was_training = generator.mapping.training
        generator.mapping.eval()
        try:
            return generator.mapping(z.to(self.device), self.truncation_psi, self.truncation_cutoff)
        finally:
            generator.mapping.train(was_training)

    def coarse_cutoff(self) -> int:
        """Style inputs acting at coarse resolutions (up to 8x8, or half the image for 8x8 images)."""
        resolutions = unwrap(self.generator).synthesis.layer_resolutions()
        limit = min(8, self.image_shape[-1] // 2)
        return max(1, min(sum(r <= limit for r in resolutions), self.num_ws - 1))

    @torch.no_grad()
    def style_mixing_grid(self, row_z: Tensor, col_z: Tensor, cutoff: int | None = None) -> tuple[Tensor, int]:
        """The style-mixing figure: a blank corner, the column sources along the top, the row sources down the
        left, and in cell (r, c) the image with the coarse styles (inputs ``[0, cutoff)``, default
        :meth:`coarse_cutoff`) of row r and the finer ones of column c. Returns the images and the row length."""
        cutoff = self.coarse_cutoff() if cutoff is None else cutoff
        rows, cols = self.mapped(row_z), self.mapped(col_z)
        R, C = len(rows), len(cols)
        mixed = torch.cat(
            [rows[:, None, :cutoff].expand(R, C, -1, -1), cols[None, :, cutoff:].expand(R, C, -1, -1)], dim=2
        ).flatten(0, 1)
        row_images, col_images = self._synthesize(rows), self._synthesize(cols)
        cells = self._synthesize(mixed).view(R, C, *self.image_shape)
        blank = torch.ones(1, *self.image_shape, device=self.device)
        top = torch.cat([blank, col_images])
        body = torch.cat([row_images[:, None], cells], dim=1).flatten(0, 1)
        return torch.cat([top, body]), C + 1

    @torch.no_grad()
    def truncation_sweep(self, z: Tensor, psis: tuple[float, ...] = SWEEP_PSIS) -> tuple[Tensor, int]:
        """One row per z, one column per psi (``truncation_cutoff`` as set); psi 0 is the ``w_avg`` image. Returns
        the images and the row length."""
        images = torch.stack([self.sample(z=z, truncation_psi=psi) for psi in psis], dim=1)
        return images.flatten(0, 1), len(psis)

    def extra_grids(self) -> dict[str, tuple[Tensor, int]]:
        """The sample-grid callback's extra grids: style mixing (3 rows, 5 columns) and the truncation sweep (4
        rows), from the fixed noise."""
        z = self.fixed_noise[torch.arange(12, device=self.device) % len(self.fixed_noise)]
        return {"style_mixing": self.style_mixing_grid(z[:3], z[3:8]), "truncation": self.truncation_sweep(z[8:12])}

    @torch.no_grad()
    def interpolate(self, z_a: Tensor, z_b: Tensor, t: Tensor) -> Tensor:
        """Images at ``w_a + t (w_b - w_a)`` (linear interpolation in W, per sample ``t``)."""
        ws_a, ws_b = self.mapped(z_a), self.mapped(z_b)
        return self._synthesize(ws_a.lerp(ws_b, t.to(ws_a)[:, None, None]))

    def project(self, target: Tensor, use_ema: bool = True, **kwargs: Any) -> Projection:
        """Project an image ``[C, H, W]`` in [-1, 1] into W (:func:`lightning_gans.projection.project`)."""
        return project(self.sampling_generator(use_ema), target, **kwargs)

    def predict_dataloader(self) -> DataLoader:
        """Independent samples, or with ``interpolation_frames > 0`` the frames of a loop through ``num_samples``
        keyframes (z from the writer's seed)."""
        frames = self.interpolation_frames
        if frames <= 0:
            return super().predict_dataloader()
        req = self.predict_request
        if req.label is not None:
            raise ValueError("StyleGAN is not class-conditional: it cannot generate a chosen label")
        keys = req.num_samples
        z = torch.randn(keys, self.latent_dim, generator=torch.Generator().manual_seed(req.seed))
        index = torch.arange(keys * frames)
        a = index // frames
        t = (index % frames).float() / frames
        return DataLoader(TensorDataset(index, z[a], z[(a + 1) % keys], t), batch_size=req.batch_size)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        if len(batch) != 4:
            return super().predict_step(batch, batch_idx, dataloader_idx)
        index, z_a, z_b, t = batch
        return {"images": self.interpolate(z_a, z_b, t), "names": [f"interpolation/{int(i):06d}.png" for i in index]}
