"""Pretraining the text encoder of the text-to-image GANs in-project, against a small image encoder.

AttnGAN and DF-GAN condition on a DAMSM text encoder trained beforehand against an ImageNet Inception-v3, then
frozen. This project downloads nothing at run time, so :class:`TextEncoderPretraining` trains both encoders from
scratch on the caption datamodule with DAMSM's sentence loss (Xu et al. 2018, eq. 10-11: cosine similarities of the
sentence and image vectors, scaled by gamma3 = 10, a softmax over the batch in both directions), which is CLIP's
symmetric contrastive loss with a fixed temperature of 0.1:

    lightning-gans fit --config configs/text_encoder_mnist.yaml

The GANs then load its checkpoint (``text: {checkpoint: runs/text_encoder_mnist/checkpoints/last.ckpt}``), frozen or
fine-tuned (``text.finetune``). A second run with another seed gives the *evaluation* encoder of
R-precision, trained apart from the one the GAN was conditioned on (:mod:`lightning_gans.metrics.text2image`).

Deviations from DAMSM: no word-level attention loss (the sentence loss alone; captions here are short), a small CNN
instead of Inception-v3, Adam with lr 1e-3 and no gradient clipping, and captions identical to another in the batch
count as positives (their targets share the probability mass) instead of as negatives: with rule-made captions
("a seven") duplicates in a batch are common, and calling them wrong would punish the right answer.

This is not a GAN family (it generates nothing): it subclasses :class:`~lightning_gans.core.GANModule` for the CLI,
the step counters, the RNG state and exact resume, and lives outside ``lightning_gans.models``, so it is not in the
``FAMILIES`` registry (nor in the contract tests, which sample and predict images).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from datamodules.vocabulary import Vocabulary
from lightning_gans.core import GANModule, unwrap
from lightning_gans.networks.text import ImageEncoder, TextEncoder
from lightning_gans.optim import make_optimizer


def same_text_targets(texts: list[str], device: torch.device) -> Tensor:
    """Float[B, B]: row i spreads probability 1 over the items whose caption equals caption i (itself included)."""
    ids = {t: k for k, t in enumerate(dict.fromkeys(texts))}
    codes = torch.tensor([ids[t] for t in texts], device=device)
    same = (codes[:, None] == codes[None, :]).float()
    return same / same.sum(dim=1, keepdim=True)


def contrastive_loss(image_vectors: Tensor, sentence_vectors: Tensor, targets: Tensor, temperature: float) -> Tensor:
    """DAMSM's sentence loss (symmetric cross-entropy over cosine similarities / temperature), with soft targets."""
    logits = F.normalize(image_vectors, dim=1) @ F.normalize(sentence_vectors, dim=1).T / temperature
    image_to_text = -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()
    text_to_image = -(targets.T * logits.T.log_softmax(dim=1)).sum(dim=1).mean()
    return 0.5 * (image_to_text + text_to_image)


class TextEncoderPretraining(GANModule):
    """A bidirectional-LSTM text encoder and a small image encoder trained together with a contrastive loss.

    Batches are ``(images, tokens, texts)`` from a caption datamodule (``datamodules.captions``), whose vocabulary
    the CLI links in. Logs ``train/loss`` and, on validation batches, ``val/loss`` and ``val/top1`` (share of
    captions whose best-matching image in the batch carries that caption: chance is about 1/batch size).

    Args:
        vocabulary: the words of the training captions (linked from the datamodule; saved in the checkpoint).
        word_dim: size of the word embeddings.
        sentence_dim: size of the sentence vector (and of the image vector it is compared with).
        dropout: dropout on the word embeddings while training.
        image_channels: channels of the image encoder's first layer.
        lr: Adam's learning rate for both encoders.
        betas: Adam's betas.
        temperature: of the softmax over cosine similarities (DAMSM's 1 / gamma3 = 0.1).
        image_shape: (C, H, W) of the images; linked from the datamodule.
        num_classes: linked from the datamodule (unused).
    """

    def __init__(
        self,
        *,
        vocabulary: list[str] | None = None,
        word_dim: int = 128,
        sentence_dim: int = 128,
        dropout: float = 0.25,
        image_channels: int = 32,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        temperature: float = 0.1,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 0,
    ) -> None:
        super().__init__(image_shape=image_shape, num_classes=num_classes, latent_dim=0)
        self.save_hyperparameters()
        if vocabulary is None:
            raise ValueError(
                "TextEncoderPretraining needs a vocabulary: train it on a caption datamodule (e.g. "
                "datamodules.captions.MNISTCaptionsDataModule), which the CLI links in, or pass vocabulary=[...]"
            )
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.vocab = Vocabulary(vocabulary)
        self.temperature = temperature
        self.text_encoder = TextEncoder(len(self.vocab), word_dim, sentence_dim, dropout)
        self.image_encoder = ImageEncoder(self.image_shape, sentence_dim, image_channels)

    def configure_optimizers(self):
        params = [*self.text_encoder.parameters(), *self.image_encoder.parameters()]
        return make_optimizer(params, "adam", self.hparams.lr, self.hparams.betas)

    def _loss(self, batch: Any) -> tuple[Tensor, Tensor, Tensor]:
        images, tokens, texts = batch
        image_vectors = self.image_encoder(images)
        _, sentence_vectors = self.text_encoder(tokens)
        targets = same_text_targets(list(texts), images.device)
        return (
            contrastive_loss(image_vectors, sentence_vectors, targets, self.temperature),
            image_vectors,
            sentence_vectors,
        )

    def training_step(self, batch: Any, batch_idx: int) -> None:
        opt = self.optimizers()
        loss, _, _ = self._loss(batch)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        self.count_g_step(loss=loss)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        loss, image_vectors, sentence_vectors = self._loss(batch)
        texts = list(batch[2])
        best = (F.normalize(sentence_vectors, dim=1) @ F.normalize(image_vectors, dim=1).T).argmax(dim=1).tolist()
        top1 = sum(texts[j] == texts[i] for i, j in enumerate(best)) / len(texts)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(texts))
        self.log("val/top1", top1, on_epoch=True, prog_bar=True, batch_size=len(texts))

    # ------------------------------------------------------------------ what the GANs and the metrics use
    @torch.no_grad()
    def embed_text(self, tokens: Tensor) -> Tensor:
        """Unit sentence vectors of padded word ids (eval mode)."""
        encoder = unwrap(self.text_encoder)
        was = encoder.training
        encoder.eval()
        try:
            return F.normalize(encoder(tokens.to(self.device))[1], dim=1)
        finally:
            encoder.train(was)

    @torch.no_grad()
    def embed_images(self, images: Tensor) -> Tensor:
        """Unit image vectors of images in [-1, 1] (eval mode)."""
        encoder = unwrap(self.image_encoder)
        was = encoder.training
        encoder.eval()
        try:
            return F.normalize(encoder(images.to(self.device)), dim=1)
        finally:
            encoder.train(was)

    def grid_images(self) -> Tensor:
        """Nothing to draw (the sample-grid callback skips it)."""
        return torch.empty(0)

    def predict_dataloader(self):
        raise TypeError(
            "TextEncoderPretraining generates no images: predict with a text-to-image GAN (GANINTCLS, "
            "DFGAN) that loads this checkpoint as its text_encoder"
        )


def read_text_encoder(path: str | os.PathLike, dropout: float | None = None) -> tuple[TextEncoder, Vocabulary, dict]:
    """The text encoder saved in a checkpoint (of :class:`TextEncoderPretraining`, or of a text-to-image GAN), its
    vocabulary, and its sizes ``{"word_dim", "sentence_dim", "dropout"}``. Reads plain data only (``weights_only``).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(
            f"text encoder checkpoint '{p}' (resolved to '{p.resolve()}') does not exist. Pretrain one with "
            "`lightning-gans fit --config configs/text_encoder_mnist.yaml` (or _celeba) and give its "
            "checkpoints/last.ckpt. To load a GAN checkpoint, which holds its text encoder's weights itself, set "
            "text.checkpoint to null (CLI: --model.init_args.text.checkpoint null; Python: "
            "load_from_checkpoint(path, text={**saved, 'checkpoint': None}) with saved = the checkpoint's "
            "hyper_parameters['text'], which holds the encoder's sizes)."
        )
    checkpoint = torch.load(p, map_location="cpu", weights_only=True)
    hparams, state = checkpoint.get("hyper_parameters", {}), checkpoint.get("state_dict", {})
    weights = {k[len("text_encoder.") :]: v for k, v in state.items() if k.startswith("text_encoder.")}
    if not weights or not hparams.get("vocabulary") or "sentence_dim" not in hparams:
        raise ValueError(
            f"'{p}' holds no text encoder: give a checkpoint of TextEncoderPretraining (or of a text-to-image GAN)"
        )
    sizes = {
        "word_dim": int(hparams["word_dim"]),
        "sentence_dim": int(hparams["sentence_dim"]),
        "dropout": float(hparams.get("dropout", hparams.get("text_dropout", 0.25)) if dropout is None else dropout),
    }
    vocabulary = Vocabulary(hparams["vocabulary"])
    encoder = TextEncoder(len(vocabulary), sizes["word_dim"], sizes["sentence_dim"], sizes["dropout"])
    encoder.load_state_dict(weights)
    return encoder, vocabulary, sizes


__all__ = ["TextEncoderPretraining", "contrastive_loss", "read_text_encoder", "same_text_targets"]
