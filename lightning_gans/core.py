"""The thin base every family shares: sampling, fixed noise, an EMA generator and step counters.

It holds no training step. Each family (one file in ``lightning_gans/models``) writes its own ``training_step``
with manual optimisation, reading top to bottom like its paper's algorithm, and calls:

- ``self.finalize_networks()`` once its networks exist (spectral-norm switches, then the EMA copy of G);
- ``self.after_discriminator_step()`` after each D update and ``self.after_generator_step()`` after each G update
  (counters, EMA, logging);
- ``self.should_step_generator()`` to honour ``n_critic`` (D steps per G step, one batch per D step, as in the
  WGAN paper).

**The stabilisation toolbox** is a set of options every image family accepts (they are this base's arguments)
and honours through a few hooks: ``d_input`` (DiffAugment and annealed instance noise on every discriminator
input, real and fake, in the D and the G step), ``discriminator_penalty`` (gradient penalty, R1),
``generator_feature_matching``, ``real_label`` (one-sided label smoothing), ``spectral_norm_d``/``_g``, the
optimizer and learning rate of each network (TTUR), ``n_critic`` and ``ema_decay``. Families whose step is
Goodfellow et al.'s Algorithm 1 call :func:`lightning_gans.steps.adversarial_step`, which uses all of them.

**What ``trainer.max_steps`` means here.** With manual optimisation Lightning's ``global_step`` advances on every
``optimizer.step()``, of G and D alike: one batch with one D and one G step counts 2, and with ``n_critic=5``
six optimizer steps make one G step. The counters ``d_steps`` and ``g_steps`` (logged as ``train/d_steps`` and
``train/g_steps``, saved in checkpoints) count each network's updates on their own; prefer ``max_epochs`` or read
``max_steps`` as "optimizer steps of all networks together".

**Sampling.** ``sample`` runs the generator (the EMA copy when there is one) under ``no_grad`` in *eval* mode, so
batch-norm uses its running statistics and the same ``z`` always gives the same image. Early in training those
statistics lag the train-mode batch statistics; the sample grids show what evaluation sees.

**Checkpoints** hold, besides weights and optimizer states: the EMA weights and the fixed noise (both buffers or
submodules), the step counters and the RNG states, so ``fit --ckpt_path last`` continues where it stopped. The
RNG state is restored when the checkpoint is loaded for ``fit`` (Lightning isolates the sanity check's RNG), so a
resumed run draws the same noise and data order as an uninterrupted one (bit-exact at epoch boundaries on one
process). Under DDP each rank reseeds from the restored
state plus its rank: ranks must not draw the same noise.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

import lightning as L
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans.augment import annealed_std, diff_augment, instance_noise, parse_policy
from lightning_gans.ema import EMA
from lightning_gans.losses import feature_matching_loss
from lightning_gans.networks.blocks import apply_spectral_norm
from lightning_gans.optim import OPTIMIZERS, make_optimizer
from lightning_gans.regularizers import gradient_penalty, r1_penalty

_CKPT_KEY = "lightning_gans"


def rng_states() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python RNG states as tensors and plain tuples (``weights_only``-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["torch.cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` saved (CUDA states only where CUDA is there)."""
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "torch.cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch.cuda"])


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


class GANModule(L.LightningModule):
    """Base of all families: hold ``image_shape``/``num_classes`` (linked from the datamodule) and sampling state.

    Subclasses call ``super().__init__(...)`` first, then build ``self.generator`` (and the rest), then
    ``self.configure_ema()``.

    Args:
        image_shape: (C, H, W) of the images the generator makes; linked from the datamodule by the CLI.
        num_classes: number of classes of the data (0 when unlabelled); linked from the datamodule.
        latent_dim: size of the noise vector z (0 for families that translate images instead).
        n_critic: discriminator steps per generator step.
        ema_decay: decay of the EMA copy of the generator used for sampling and evaluation; 0 turns it off.
        num_grid_samples: images in the fixed-noise sample grid.
        optimizer_g: generator optimizer (adam, adamw, rmsprop, sgd).
        optimizer_d: discriminator optimizer (adam, adamw, rmsprop, sgd).
        lr_g: generator learning rate.
        lr_d: discriminator learning rate (TTUR: lr_d > lr_g, e.g. 4e-4 vs 1e-4).
        betas: Adam's betas for both networks (SGD uses the first as momentum).
        diffaugment: DiffAugment policy applied to every D input, real and fake, e.g. "color,translation,cutout"
            ("" = off). Cures a discriminator that overfits small data.
        instance_noise: std of Gaussian noise added to every D input (0 = off). Cures vanishing gradients from a
            too-strong D early on.
        instance_noise_anneal_steps: G steps over which instance_noise decays linearly to 0 (0 = constant).
        real_label: target for real samples in the D loss; < 1 is one-sided label smoothing (over-confident D).
        feature_matching: weight of the feature-matching term in G's loss (0 = off). Cures mode collapse and an
            over-trained D.
        gradient_penalty: weight of the WGAN-GP gradient penalty in D's loss (0 = off; the paper uses 10).
        r1_gamma: gamma of the R1 penalty on real samples in D's loss (0 = off). Cures oscillation.
        spectral_norm_d: spectral norm on every layer of D (Lipschitz D; strong-D cure).
        spectral_norm_g: spectral norm on every layer of G.
    """

    #: True for class-conditional families: ``sample`` then draws labels when none are given.
    conditional: bool = False

    def __init__(
        self,
        *,
        image_shape: tuple[int, ...] = (1, 28, 28),
        num_classes: int = 0,
        latent_dim: int = 100,
        n_critic: int = 1,
        ema_decay: float = 0.0,
        num_grid_samples: int = 64,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        diffaugment: str = "",
        instance_noise: float = 0.0,
        instance_noise_anneal_steps: int = 0,
        real_label: float = 1.0,
        feature_matching: float = 0.0,
        gradient_penalty: float = 0.0,
        r1_gamma: float = 0.0,
        spectral_norm_d: bool = False,
        spectral_norm_g: bool = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) not in (1, 3) or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) (or (D,) for points), got {image_shape}")
        if latent_dim < 0:
            raise ValueError(f"latent_dim must be 0 (no noise: image-to-image) or more, got {latent_dim}")
        if n_critic < 1:
            raise ValueError(f"n_critic must be at least 1, got {n_critic}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0 turns EMA off), got {ema_decay}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be 0 or more, got {num_classes}")
        if self.conditional and num_classes < 1:
            raise ValueError(
                f"{type(self).__name__} is class-conditional and needs num_classes >= 1; use a labelled datamodule "
                "(its num_classes is linked into the model) or set model.init_args.num_classes"
            )
        for name in (optimizer_g, optimizer_d):
            if name not in OPTIMIZERS:
                raise ValueError(f"Unknown optimizer {name!r}. Valid optimizers: {', '.join(OPTIMIZERS)}.")
        for name, value in (("instance_noise", instance_noise), ("feature_matching", feature_matching),
                            ("gradient_penalty", gradient_penalty), ("r1_gamma", r1_gamma)):
            if value < 0:
                raise ValueError(f"{name} must be 0 (off) or positive, got {value}")
        if diffaugment and len(image_shape) != 3:
            raise ValueError("diffaugment works on images (C, H, W); this data has shape " f"{image_shape}")
        self.diffaugment = parse_policy(diffaugment)
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.lr_g, self.lr_d, self.betas = lr_g, lr_d, tuple(betas)
        self.instance_noise_std = instance_noise
        self.instance_noise_anneal_steps = instance_noise_anneal_steps
        if not 0.0 < real_label <= 1.0:
            raise ValueError(f"real_label must be in (0, 1] (1 = no label smoothing), got {real_label}")
        self.real_label = real_label
        self.feature_matching_weight = feature_matching
        self.gradient_penalty_weight = gradient_penalty
        self.r1_gamma = r1_gamma
        self.spectral_norm_d, self.spectral_norm_g = spectral_norm_d, spectral_norm_g
        self.image_shape = image_shape
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        self.n_critic = n_critic
        self.ema_decay = ema_decay
        self.generator_ema: EMA | None = None
        self.d_steps = 0
        self.g_steps = 0
        self.predict_request: dict[str, Any] = {"num_samples": 64, "label": None, "seed": 0, "batch_size": 64}
        # Fixed noise for sample grids: seeded on its own, so grids of two runs with other seeds compare.
        gen = torch.Generator().manual_seed(20140610)
        self.register_buffer("fixed_noise", torch.randn(num_grid_samples, latent_dim, generator=gen))
        labels = torch.arange(num_grid_samples) % max(num_classes, 1)
        self.register_buffer("fixed_labels", labels if self.conditional else labels[:0])

    # ------------------------------------------------------------------ construction helpers
    def finalize_networks(self) -> None:
        """Apply the spectral-norm switches, then create the EMA copy of G. Call once the networks are built."""
        if self.spectral_norm_d:
            apply_spectral_norm(self.discriminator)
        if self.spectral_norm_g:
            apply_spectral_norm(self.generator)
        if self.ema_decay > 0:
            self.generator_ema = EMA(self.generator, self.ema_decay)

    def generator_parameters(self):
        """Parameters the G optimizer updates (override for G + encoder, two generators, ...)."""
        return self.generator.parameters()

    def discriminator_parameters(self):
        """Parameters the D optimizer updates."""
        return self.discriminator.parameters()

    def configure_optimizers(self):
        """Two optimizers, G first, D second, each with its own name and learning rate (TTUR)."""
        opt_g = make_optimizer(self.generator_parameters(), self.optimizer_g, self.lr_g, self.betas)
        opt_d = make_optimizer(self.discriminator_parameters(), self.optimizer_d, self.lr_d, self.betas)
        return opt_g, opt_d

    # ------------------------------------------------------------------ sampling
    def noise(self, n: int) -> Tensor:
        """``n`` latent vectors z ~ N(0, I) on the module's device."""
        return torch.randn(n, self.latent_dim, device=self.device)

    def sampling_generator(self, use_ema: bool = True) -> nn.Module:
        """The network that makes samples: the EMA copy when there is one (and ``use_ema``), else G itself."""
        if use_ema and self.generator_ema is not None:
            return self.generator_ema.module
        return unwrap(self.generator)

    def generate(self, generator: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Map noise (and labels) to images with ``generator``. Families with other inputs override this."""
        return generator(z) if labels is None else generator(z, labels)

    @torch.no_grad()
    def sample(
        self,
        n: int | None = None,
        *,
        z: Tensor | None = None,
        labels: Tensor | None = None,
        use_ema: bool = True,
    ) -> Tensor:
        """Generate images in [-1, 1] on the module's device (eval mode, no grad, EMA generator when on).

        Give either ``n`` (fresh noise) or ``z``. Conditional families without ``labels`` draw uniform labels for
        fresh noise, and use the labels 0, 1, ..., K-1, 0, ... for a given ``z`` (so a fixed z is deterministic).
        """
        given_z = z is not None
        if z is None:
            if n is None:
                raise ValueError("sample() needs n (how many) or z (the noise)")
            z = self.noise(n)
        z = z.to(self.device)
        if self.conditional:
            if labels is None and given_z:  # the same z always gives the same images: labels 0, 1, ..., K-1, 0, ...
                labels = torch.arange(z.shape[0], device=self.device) % self.num_classes
            elif labels is None:
                labels = torch.randint(self.num_classes, (z.shape[0],), device=self.device)
            labels = labels.to(self.device)
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f"labels must be in [0, {self.num_classes}), got {labels.min()}..{labels.max()}")
        else:
            labels = None
        generator = self.sampling_generator(use_ema)
        was_training = generator.training
        generator.eval()
        try:
            images = self.generate(generator, z, labels)
        finally:
            generator.train(was_training)
        return images.clamp(-1.0, 1.0)

    def grid_images(self) -> Tensor:
        """Images for the sample-grid callback: the fixed noise (and fixed labels) through ``sample``."""
        labels = self.fixed_labels if self.conditional else None
        return self.sample(z=self.fixed_noise, labels=labels)

    # ------------------------------------------------------------------ training-step helpers
    def discriminate(self, x: Tensor, labels: Tensor | None = None, return_features: bool = False):
        """D on a batch already passed through :meth:`d_input`. Families whose D takes more inputs override."""
        kwargs = {"return_features": True} if return_features else {}
        if labels is None:
            return self.discriminator(x, **kwargs)
        return self.discriminator(x, labels, **kwargs)

    def d_input(self, x: Tensor) -> Tensor:
        """What D sees of any sample, real or fake: DiffAugment, then (annealed) instance noise."""
        if self.diffaugment:
            x = diff_augment(x, ",".join(self.diffaugment))
        std = annealed_std(self.instance_noise_std, self.g_steps, self.instance_noise_anneal_steps)
        if std > 0:
            x = instance_noise(x, std)
        return x

    def discriminator_penalty(self, real: Tensor, fake: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """The weighted regularisers of D's loss that are switched on: ``{"gp": ..., "r1": ...}``."""
        terms: dict[str, Tensor] = {}
        if self.gradient_penalty_weight > 0:
            critic = lambda x: self.discriminate(self.d_input(x), labels)  # noqa: E731
            terms["gp"] = self.gradient_penalty_weight * gradient_penalty(critic, real, fake)
        if self.r1_gamma > 0:
            real = real.detach().requires_grad_(True)
            terms["r1"] = 0.5 * self.r1_gamma * r1_penalty(self.discriminate(self.d_input(real), labels), real)
        return terms

    def generator_feature_matching(self, real: Tensor, fake: Tensor, labels: Tensor | None = None) -> Tensor:
        """Weighted feature matching (Salimans et al. 2016) between D's features of real and generated batches."""
        with torch.no_grad():
            _, real_features = self.discriminate(self.d_input(real), labels, return_features=True)
        _, fake_features = self.discriminate(self.d_input(fake), labels, return_features=True)
        return self.feature_matching_weight * feature_matching_loss(real_features, fake_features)

    def should_step_generator(self) -> bool:
        """True when the D steps done so far call for a G step (every ``n_critic`` D steps)."""
        return self.d_steps % self.n_critic == 0

    def after_discriminator_step(self, **losses: Tensor) -> None:
        """Count a D update and log its losses under ``train/``."""
        self.d_steps += 1
        self._log_losses(losses)
        self.log("train/d_steps", float(self.d_steps), on_step=True, on_epoch=False)

    def after_generator_step(self, **losses: Tensor) -> None:
        """Count a G update, move the EMA copy and log the losses under ``train/``."""
        self.g_steps += 1
        if self.generator_ema is not None:
            self.generator_ema.update(unwrap(self.generator))
        self._log_losses(losses)
        self.log("train/g_steps", float(self.g_steps), on_step=True, on_epoch=False)

    def _log_losses(self, losses: dict[str, Tensor]) -> None:
        for name, value in losses.items():
            self.log(f"train/{name}", value.detach(), on_step=True, on_epoch=False, prog_bar=name.endswith("loss"))

    # ------------------------------------------------------------------ loops
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Nothing by default: evaluation (sample grids, FID, ...) lives in callbacks that read the batches."""
        return None

    def predict_dataloader(self) -> DataLoader:
        """Noise for ``predict``: ``predict_request`` (set by the image-writer callback) says how many and which label."""
        req = self.predict_request
        n = int(req["num_samples"])
        gen = torch.Generator().manual_seed(int(req["seed"]))
        z = torch.randn(n, self.latent_dim, generator=gen)
        if req["label"] is not None:
            if not self.conditional:
                raise ValueError(f"{type(self).__name__} is not class-conditional: it cannot generate a chosen label")
            if not 0 <= int(req["label"]) < self.num_classes:
                raise ValueError(f"label must be in [0, {self.num_classes}), got {req['label']}")
            labels = torch.full((n,), int(req["label"]), dtype=torch.long)
        else:
            labels = torch.randint(max(self.num_classes, 1), (n,), generator=gen)
        return DataLoader(TensorDataset(torch.arange(n), z, labels), batch_size=int(req["batch_size"]))

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Generated images with their file names, for :class:`lightning_gans.callbacks.ImageWriter`."""
        index, z, labels = batch
        images = self.sample(z=z, labels=labels if self.conditional else None)
        return {"images": images, "names": [f"{int(i):06d}.png" for i in index]}

    # ------------------------------------------------------------------ checkpoint & RNG
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[_CKPT_KEY] = {
            "d_steps": self.d_steps,
            "g_steps": self.g_steps,
            "rng_states": rng_states(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(_CKPT_KEY)
        if state is None:
            return
        self.d_steps = int(state["d_steps"])
        self.g_steps = int(state["g_steps"])
        # Resuming a fit: restore the RNG here, before Lightning builds the data iterator (it does so before
        # on_train_start when resuming). Not in load_from_checkpoint: that must not touch the caller's RNG.
        trainer = self._trainer
        if trainer is not None and trainer.state.fn == "fit" and state.get("rng_states") is not None:
            set_rng_states(state["rng_states"])

    def on_train_start(self) -> None:
        if self.trainer.world_size > 1:
            # Ranks seeded alike would draw identical noise: offset each rank's stream by its rank.
            base = int(torch.randint(0, 2**31 - 1, ()).item())
            torch.manual_seed(base + self.trainer.global_rank)

    # ------------------------------------------------------------------ helpers for families
    @property
    def image_numel(self) -> int:
        return math.prod(self.image_shape)
