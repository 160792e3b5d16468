"""DF-GAN: Tao, Tang, Wu, Jing, Bao & Xu 2022, "DF-GAN: A Simple and Effective Baseline for Text-to-Image Synthesis"
(CVPR 2022, arXiv:2008.05865); official code tobran/DF-GAN (``code/models/GAN.py``, ``code/lib/modules.py``,
``code/src/train.py``).

One generator stage per doubling of the image, each fusing the text into the image features with deep affine
fusion blocks (per-channel scale and shift predicted from ``cat(z, sentence)``), and a one-way discriminator that
judges (image, sentence) pairs at its 4x4 features. D's loss is the hinge with mismatched pairs,
``relu(1 - D(x, s)) + (relu(1 + D(G(z, s), s)) + relu(1 + D(x', s))) / 2`` with x' the batch's images shifted by
one row, plus the matching-aware gradient penalty on real pairs, MA-GP = ``2 * mean(||(grad_x, grad_s) D(x, s)||^6)``;
G's loss is ``-D(G(z, s), s)``. Adam with lr 1e-4 for G, 4e-4 for D, betas (0, 0.9), as ``train.py``.

The text encoder: DF-GAN uses AttnGAN's pretrained DAMSM text encoder, frozen. Here the same kind of encoder is
pretrained in-project (:class:`~lightning_gans.text_encoder.TextEncoderPretraining`), loaded from ``text.checkpoint``
and frozen by default (``text.finetune`` trains it with G).

Deviations: G's step draws fresh noise (the official step reuses the D step's fakes, not detached); a mismatched
pair whose caption equals the right one is skipped; MA-GP runs on any device (the official puts its gradient
weights on CUDA); ``conditioning_augmentation`` (StackGAN's, off by default as in DF-GAN) adds a sampled text code
and its KL term to G; 28x28 images (MNIST) use 7x7 as the smallest map.
"""

from __future__ import annotations

from typing import Any

from lightning_gans import text2image as t2i
from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.losses import generator_loss, matching_aware_discriminator_loss
from lightning_gans.networks.dfgan import DFDiscriminator, DFGenerator
from lightning_gans.optim import check_adversarial_options, make_optimizer
from lightning_gans.regularizers import matching_aware_gradient_penalty
from lightning_gans.renames import accepts_renamed
from lightning_gans.text2image import TextEncoderOptions


@accepts_renamed  # the text encoder's options became the group `text` in 0.2.0 (lightning_gans.renames)
class DFGAN(GANModule):
    """Deep-fusion text-to-image GAN with a matching-aware gradient penalty.

    Args:
        vocabulary: the words of the training captions; linked from the caption datamodule (a text encoder
            checkpoint, ``text.checkpoint``, brings its own, which must be the same).
        grid_prompts: prompts of the sample grid (one row each, at most 8); unset: the datamodule's
            ``example_captions`` (eight validation captions), kept in the checkpoint.
        text: the text encoder (``checkpoint`` of a pretrained one, or ``word_dim``/``sentence_dim`` of a fresh one;
            ``finetune``, ``dropout``), ``max_caption_length`` and ``caption_pool_size``; see
            :class:`lightning_gans.text2image.TextEncoderOptions`.
        loss: adversarial loss; DF-GAN's is hinge.
        latent_dim: size of z (the official 100).
        g_channels: ngf, G's width unit (the official 32 for birds, 64 for COCO).
        d_channels: ndf, D's width unit.
        mismatch_weight: weight of the mismatched-pair term in D's loss; the fake term gets 1 - mismatch_weight.
        magp_weight: k of MA-GP (2); 0 turns it off.
        magp_power: p of MA-GP (6).
        conditioning_augmentation: size of StackGAN's conditioning-augmentation code G gets instead of the sentence
            vector (0: off, as in DF-GAN).
        kl_weight: weight of that code's KL term in G's loss (StackGAN's 2, on the per-dimension mean).
        optimizer_g: G's optimizer (adam, adamw, rmsprop, sgd).
        optimizer_d: D's optimizer.
        lr_g: G's learning rate.
        lr_d: D's learning rate.
        betas: Adam's betas for both networks.
        ema_decay: decay of the EMA copy of G used for sampling (0 = off).
        image_shape: (C, H, W) of the images; linked from the datamodule.
        num_classes: linked from the datamodule (unused).
        num_grid_samples: images in the sample grid (rows of grid prompts).
    """

    #: takes prompts: ``lightning-gans predict --writer.text "..."``.
    takes_text = True

    def __init__(
        self,
        *,
        vocabulary: list[str] | None = None,
        grid_prompts: list[str] | None = None,
        text: TextEncoderOptions = TextEncoderOptions(),
        loss: str = "hinge",
        latent_dim: int = 100,
        g_channels: int = 32,
        d_channels: int = 32,
        mismatch_weight: float = 0.5,
        magp_weight: float = 2.0,
        magp_power: float = 6.0,
        conditioning_augmentation: int = 0,
        kl_weight: float = 2.0,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 1e-4,
        lr_d: float = 4e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        ema_decay: float = 0.0,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 0,
        num_grid_samples: int = 64,
    ) -> None:
        super().__init__(
            image_shape=image_shape, num_classes=num_classes, latent_dim=latent_dim, num_grid_samples=num_grid_samples
        )
        self.save_hyperparameters()
        check_adversarial_options(self.hparams)
        if not 0 <= mismatch_weight < 1 or magp_weight < 0 or conditioning_augmentation < 0:
            raise ValueError(
                "mismatch_weight must be in [0, 1), magp_weight and conditioning_augmentation >= 0; got "
                f"{mismatch_weight}, {magp_weight}, {conditioning_augmentation}"
            )
        self.loss, self.mismatch_weight = loss, mismatch_weight
        self.magp_weight, self.magp_power, self.kl_weight = magp_weight, magp_power, kl_weight
        self.text_options = TextEncoderOptions.of(text)
        t2i.build_text_side(self)  # vocab, text_encoder, caption_pool, grid_prompts (a checkpoint's sizes adopted)
        text_dim = self.text_options.sentence_dim
        self.generator = DFGenerator(latent_dim, text_dim, self.image_shape, g_channels, conditioning_augmentation)
        self.discriminator = DFDiscriminator(self.image_shape, text_dim, d_channels)
        self.generator_ema = ema_copy(self.generator, ema_decay)

    # Copied from lightning_gans.models.gan_int_cls.GANINTCLS.configure_optimizers
    def configure_optimizers(self):
        hp = self.hparams
        g_params = [*self.generator.parameters(), *t2i.text_parameters(self)]  # a fine-tuned encoder trains with G
        return (
            make_optimizer(g_params, hp.optimizer_g, hp.lr_g, hp.betas),
            make_optimizer(self.discriminator.parameters(), hp.optimizer_d, hp.lr_d, hp.betas),
        )

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real, tokens, texts = batch
        n = real.shape[0]
        opt_g, opt_d = self.optimizers()
        self.caption_pool.add(tokens)
        sentence = t2i.encode(self, tokens)  # s: the sentence vectors (with grad only when fine-tuning)
        mismatch = t2i.mismatched_pairs(texts, real.device)  # (x_j, s_i) with a different caption

        # 1. D step: hinge on real pairs, and on fake and mismatched pairs weighted 1/2 each; MA-GP on real pairs.
        with self.toggled_optimizer(opt_d):
            penalized = self.magp_weight > 0
            s = sentence.detach().requires_grad_(penalized)
            x = real.detach().requires_grad_(penalized)
            real_logits, mismatched_logits = self.discriminator(x, s, mismatch)
            fake = self.generator(self.noise(n), s.detach()).detach()
            d_loss = matching_aware_discriminator_loss(
                self.loss, real_logits, mismatched_logits, self.discriminator(fake, s), self.mismatch_weight
            )
            penalties = {}
            if penalized:
                magp = matching_aware_gradient_penalty(real_logits, x, s, self.magp_power)
                penalties["magp"] = self.magp_weight * magp
            d_loss = d_loss + sum(penalties.values())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        self.count_d_step(d_loss=d_loss, **penalties)

        # 2. G step: -D(G(z, s), s) (plus the conditioning augmentation's KL term when on).
        with self.toggled_optimizer(opt_g):
            fake, kl = self.generator(self.noise(n), sentence, return_kl=True)
            g_loss = generator_loss(self.loss, self.discriminator(fake, sentence))
            extra = {"kl": self.kl_weight * kl} if self.hparams.conditioning_augmentation else {}
            g_loss = g_loss + sum(extra.values())
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        self.count_g_step(g_loss=g_loss, **extra)

    # ------------------------------------------------------------- text in, images out (lightning_gans/text2image.py)
    # Copied from lightning_gans.models.gan_int_cls.GANINTCLS.setup
    def setup(self, stage: str) -> None:
        t2i.setup(self)

    # Copied from lightning_gans.models.gan_int_cls.GANINTCLS.on_load_checkpoint
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        t2i.on_load_checkpoint(self, checkpoint)

    # Copied from lightning_gans.models.gan_int_cls.GANINTCLS.sample
    def sample(self, n: int | None = None, *, z=None, text=None, tokens=None, labels=None, use_ema: bool = True):
        """Images for prompts (``text="a thick seven"`` or a list, one per image); see :func:`t2i.sample`."""
        if labels is not None:  # the base class's signature; a text family has no class labels to honour
            raise ValueError(
                f"{type(self).__name__} is conditioned on text, not on class labels: pass text=... (prompts) or "
                "tokens=... instead of labels"
            )
        return t2i.sample(self, n, z=z, text=text, tokens=tokens, use_ema=use_ema)

    # Copied from lightning_gans.models.gan_int_cls.GANINTCLS.interpolate
    def interpolate(self, first: str, second: str, steps: int = 8, z=None, use_ema: bool = True):
        """Images from ``first`` to ``second`` (interpolated sentence vectors), one row of ``steps`` per z."""
        return t2i.interpolate(self, first, second, steps, z, use_ema)

    # Copied from lightning_gans.models.gan_int_cls.GANINTCLS.grid_images
    def grid_images(self):
        return t2i.grid_images(self)

    # Copied from lightning_gans.models.gan_int_cls.GANINTCLS.grid_captions
    def grid_captions(self) -> list[str]:
        return t2i.grid_captions(self)

    # Copied from lightning_gans.models.gan_int_cls.GANINTCLS.predict_dataloader
    def predict_dataloader(self):
        return t2i.predict_dataloader(self)

    # Copied from lightning_gans.models.gan_int_cls.GANINTCLS.predict_step
    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return t2i.predict_step(self, batch)
