"""Text and image encoders for text-to-image GANs, and conditioning augmentation.

- :class:`TextEncoder`: the DAMSM text encoder of AttnGAN (Xu et al. 2018, ``RNN_ENCODER`` in taoxugit/AttnGAN and
  tobran/DF-GAN ``code/models/DAMSM.py``): word embeddings (uniform in [-0.1, 0.1]), dropout, one bidirectional LSTM
  layer; the word features are the LSTM outputs, the sentence vector is the last hidden state of both directions.
  Deviations: padding-aware packing without sorting the batch (``enforce_sorted=False``), a padding row of zeros in
  the embedding, smaller default sizes (128-d words and sentences instead of 300 and 256) for captions of a few
  dozen words, and the LSTM kept in float32 under mixed precision (autocast is off around it).
- :class:`ImageEncoder`: the image side of the in-project pretraining and of the R-precision evaluation encoder. DAMSM
  uses an ImageNet Inception-v3, which this project cannot download; here a small strided CNN (DCGAN-like, batch
  norm, LeakyReLU) pooled to one vector, trained from scratch against the text encoder.
- :class:`ConditioningAugmentation`: StackGAN's (Zhang et al. 2017) sentence vector -> N(mu, sigma) -> a sample,
  with its KL term against N(0, I); in eval mode it returns mu, so a fixed z and prompt always give the same image.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lightning_gans.networks.vae import reparameterize

__all__ = ["ConditioningAugmentation", "ImageEncoder", "TextEncoder"]


class TextEncoder(nn.Module):
    """Word ids -> (word features, sentence vector) through a bidirectional LSTM.

    Args:
        vocab_size: entries of the vocabulary (id 0 is padding).
        word_dim: size of the word embeddings.
        sentence_dim: size of the sentence vector and of each word feature (even: half per direction).
        dropout: dropout on the word embeddings (training mode only).
    """

    def __init__(self, vocab_size: int, word_dim: int = 128, sentence_dim: int = 128, dropout: float = 0.25) -> None:
        super().__init__()
        if vocab_size < 3:
            raise ValueError(f"vocab_size must count <pad>, <unk> and at least one word, got {vocab_size}")
        if sentence_dim < 2 or sentence_dim % 2:
            raise ValueError(f"sentence_dim must be even (half per LSTM direction), got {sentence_dim}")
        self.vocab_size, self.word_dim, self.sentence_dim = vocab_size, word_dim, sentence_dim
        self.embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(word_dim, sentence_dim // 2, batch_first=True, bidirectional=True)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """``tokens`` Long[B, L] (0-padded) -> (words Float[B, L, sentence_dim], sentence Float[B, sentence_dim])."""
        if tokens.dim() != 2:
            raise ValueError(f"TextEncoder takes Long[B, L] word ids, got shape {tuple(tokens.shape)}")
        lengths = tokens.ne(0).sum(1).clamp_min(1).cpu()
        embedded = self.dropout(self.embedding(tokens))
        # The recurrence runs in the LSTM's own precision (float32) even inside autocast: under bf16-mixed, oneDNN
        # has no bf16 LSTM on CPUs without AVX-512 BF16 or AMX (primitive creation fails), and a recurrence carries
        # its rounding from word to word. The cost is small: one layer over a few dozen words.
        with torch.autocast(tokens.device.type, enabled=False):
            embedded = embedded.to(self.lstm.weight_ih_l0.dtype)
            packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
            output, (hidden, _) = self.lstm(packed)
        words, _ = pad_packed_sequence(output, batch_first=True, total_length=tokens.shape[1])
        sentence = hidden.transpose(0, 1).reshape(tokens.shape[0], self.sentence_dim)
        return words, sentence


class ImageEncoder(nn.Module):
    """Image -> one vector: strided 4x4 convolutions (batch norm, LeakyReLU) down to 8x8 or less, mean-pooled, then
    a linear layer.

    Args:
        image_shape: (C, H, W) of the images.
        embed_dim: size of the output vector (the text encoder's sentence_dim).
        base_channels: channels of the first layer; doubled at each further stage (at most 8x).
    """

    def __init__(self, image_shape: tuple[int, int, int], embed_dim: int = 128, base_channels: int = 32) -> None:
        super().__init__()
        channels, height, _ = image_shape
        layers: list[nn.Module] = [nn.Conv2d(channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch, size = base_channels, (height + 1) // 2
        while size > 8 or len(layers) < 6:
            out = min(ch * 2, base_channels * 8)
            layers += [nn.Conv2d(ch, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, True)]
            ch, size = out, (size + 1) // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(ch, embed_dim)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images).mean(dim=(2, 3)))


class ConditioningAugmentation(nn.Module):
    """Sentence vector -> (sample, mu, logvar) of N(mu, diag(exp(logvar))): StackGAN's CA_NET with one linear layer
    (StackGAN puts a ReLU after it, StackGAN++ a GLU; here mu and logvar are unconstrained). The sample is mu in eval
    mode.

    Args:
        text_dim: size of the sentence vector.
        out_dim: size of the sample.
    """

    def __init__(self, text_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, 2 * out_dim)

    def forward(self, sentence: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.fc(sentence).chunk(2, dim=1)
        return (reparameterize(mu, logvar) if self.training else mu), mu, logvar
