"""GAN-INT-CLS: Reed, Akata, Yan, Logeswaran, Schiele & Lee 2016, "Generative Adversarial Text to Image Synthesis"
(arXiv:1605.05396); official code reedscot/icml2016 (``main_cls_int.lua``, ``scripts/train_cub.sh``).

A DCGAN whose G sees the sentence vector (projected to 128-d, LeakyReLU, concatenated with z) and whose D is
*matching-aware* (GAN-CLS): it scores three kinds of pairs, real image with its own text (real), real image with a
mismatched text (fake) and generated image with its text (fake): ``L_D = real + 0.5 (wrong + fake)`` (the official
``cls_weight = 0.5``). GAN-INT: G also learns from sentence vectors interpolated between two captions of the batch,
``(t1 + t2) / 2``, which have no image: D judges them only for realism, filling the gaps of the text manifold. As in
the official script G's loss is one mean over the batch and its ``n / 2`` interpolations, the latter weighted
``interpolation_weight`` (the official ``interp_weight = 1``).

The text encoder: the paper's char-CNN-RNN was pretrained on the captions with a joint embedding loss; here the
DAMSM-style bidirectional LSTM of :class:`~lightning_gans.text_encoder.TextEncoderPretraining`, loaded from its
checkpoint (``text.checkpoint``) and frozen by default, or fine-tuned with G (``text.finetune``).

Deviations: D returns a logit (BCE on logits); the official script's extra residual blocks are left out (see
:mod:`lightning_gans.networks.gan_int_cls`); the number of stages follows the image size (MNIST's 28x28 joins text
and image at 7x7); the mismatched texts are the batch's captions shifted by one row (the official loader draws an
image of another class), skipping pairs whose captions are the same text; no learning-rate decay (the official
halves it every 100 epochs).
"""

from __future__ import annotations

from typing import Any

import torch

from lightning_gans import text2image as t2i
from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.losses import generator_loss, matching_aware_discriminator_loss
from lightning_gans.networks.gan_int_cls import TextConditionalDCGANGenerator, TextConditionalDiscriminator
from lightning_gans.optim import check_adversarial_options, make_optimizer
from lightning_gans.renames import accepts_renamed
from lightning_gans.text2image import TextEncoderOptions


@accepts_renamed  # the text encoder's options became the group `text` in 0.2.0 (lightning_gans.renames)
class GANINTCLS(GANModule):
    """Text-to-image DCGAN with a matching-aware discriminator and interpolated text embeddings.

    Args:
        vocabulary: the words of the training captions; linked from the caption datamodule (a text encoder
            checkpoint, ``text.checkpoint``, brings its own, which must be the same).
        grid_prompts: prompts of the sample grid (one row each, at most 8); unset: the datamodule's
            ``example_captions`` (eight validation captions), kept in the checkpoint.
        text: the text encoder (``checkpoint`` of a pretrained one, or ``word_dim``/``sentence_dim`` of a fresh one;
            ``finetune``, ``dropout``), ``max_caption_length`` and ``caption_pool_size``; see
            :class:`lightning_gans.text2image.TextEncoderOptions`.
        loss: adversarial loss (nonsaturating, minimax, hinge, wasserstein, lsgan); the paper's is BCE.
        latent_dim: size of z.
        projection_dim: size of the projected sentence in G and D (the paper's 128).
        g_channels: channels of G's last hidden layer (ngf).
        d_channels: channels of D's first layer (ndf).
        mismatch_weight: weight of the mismatched-text term in D's loss; the fake term gets 1 - mismatch_weight.
        interpolation_weight: weight of G's loss on interpolated sentence vectors (0: GAN-CLS without INT).
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
        loss: str = "nonsaturating",
        latent_dim: int = 100,
        projection_dim: int = 128,
        g_channels: int = 64,
        d_channels: int = 64,
        mismatch_weight: float = 0.5,
        interpolation_weight: float = 1.0,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
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
        if not 0 <= mismatch_weight < 1 or interpolation_weight < 0:
            raise ValueError(
                f"mismatch_weight must be in [0, 1) and interpolation_weight >= 0, got {mismatch_weight} "
                f"and {interpolation_weight}"
            )
        self.loss, self.mismatch_weight, self.interpolation_weight = loss, mismatch_weight, interpolation_weight
        self.text_options = TextEncoderOptions.of(text)
        t2i.build_text_side(self)  # vocab, text_encoder, caption_pool, grid_prompts (a checkpoint's sizes adopted)
        text_dim = self.text_options.sentence_dim
        self.generator = TextConditionalDCGANGenerator(
            latent_dim, text_dim, self.image_shape, g_channels, projection_dim
        )
        self.discriminator = TextConditionalDiscriminator(self.image_shape, text_dim, d_channels, projection_dim)
        self.generator_ema = ema_copy(self.generator, ema_decay)

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
        sentence = t2i.encode(self, tokens)  # t: the sentence vectors (with grad only when fine-tuning)
        mismatch = t2i.mismatched_pairs(texts, real.device)  # (x_j, t_i) with a different caption

        # 1. D step (GAN-CLS): {real image, right text} is real; {real image, wrong text}, {fake image, right text}
        #    are fake.
        with self.toggled_optimizer(opt_d):
            t = sentence.detach()
            fake = self.generator(self.noise(n), t).detach()
            real_logits, wrong_logits = self.discriminator(real, t, mismatch)
            d_loss = matching_aware_discriminator_loss(
                self.loss, real_logits, wrong_logits, self.discriminator(fake, t), self.mismatch_weight
            )
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        self.count_d_step(d_loss=d_loss)

        # 2. G step (GAN-INT): fool D with the batch's texts and with (t1 + t2) / 2 of its two halves.
        with self.toggled_optimizer(opt_g):
            h = n // 2 if self.interpolation_weight else 0  # GAN-CLS alone: no interpolations
            t_all = torch.cat([sentence, 0.5 * (sentence[:h] + sentence[h : 2 * h])])
            logits = self.discriminator(self.generator(self.noise(n + h), t_all), t_all)
            g_loss = generator_loss(self.loss, logits[:n]) * n
            if h:
                g_loss = g_loss + self.interpolation_weight * h * generator_loss(self.loss, logits[n:])
            g_loss = g_loss / (n + h)  # one weighted mean over the n + n/2 samples, as the official criterion
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        self.count_g_step(g_loss=g_loss)

    # ------------------------------------------------------------- text in, images out (lightning_gans/text2image.py)
    def setup(self, stage: str) -> None:
        t2i.setup(self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        t2i.on_load_checkpoint(self, checkpoint)

    def sample(self, n: int | None = None, *, z=None, text=None, tokens=None, labels=None, use_ema: bool = True):
        """Images for prompts (``text="a thick seven"`` or a list, one per image); see :func:`t2i.sample`."""
        if labels is not None:  # the base class's signature; a text family has no class labels to honour
            raise ValueError(
                f"{type(self).__name__} is conditioned on text, not on class labels: pass text=... (prompts) or "
                "tokens=... instead of labels"
            )
        return t2i.sample(self, n, z=z, text=text, tokens=tokens, use_ema=use_ema)

    def interpolate(self, first: str, second: str, steps: int = 8, z=None, use_ema: bool = True):
        """Images from ``first`` to ``second`` (interpolated sentence vectors), one row of ``steps`` per z."""
        return t2i.interpolate(self, first, second, steps, z, use_ema)

    def grid_images(self):
        return t2i.grid_images(self)

    def grid_captions(self) -> list[str]:
        return t2i.grid_captions(self)

    def predict_dataloader(self):
        return t2i.predict_dataloader(self)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return t2i.predict_step(self, batch)
