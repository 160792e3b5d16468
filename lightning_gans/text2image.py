"""What the text-to-image families (GANINTCLS, DFGAN) share: plain functions and two small modules.

- :class:`TextEncoderOptions`: the typed option group ``text`` (the encoder's checkpoint or sizes, fine-tuning,
  caption length, caption pool);
- :func:`build_text_side`: the vocabulary, the text encoder (pretrained checkpoint or fresh; frozen or fine-tuned),
  the caption pool and the grid prompts of a family, from its ``text`` options;
- :func:`encode`: sentence vectors of a batch (frozen: eval mode, no grad; fine-tuned: with grad);
- :func:`mismatched_pairs`: each caption with the next row's image, skipping pairs whose texts are equal;
- :class:`CaptionPool`: recent training captions (word ids) kept in buffers, so ``sample(n)`` (and with it FID in the
  evaluation callback) draws prompts from the data, and checkpoints hold them;
- :func:`sample`, :func:`interpolate`, :func:`grid_images`, :func:`grid_captions`, :func:`predict_dataloader`,
  :func:`predict_step`, :func:`setup`, :func:`on_load_checkpoint`: the sampling contract with text, for one-line
  hooks.

What these functions use of a family is :class:`TextFamily` (checked over the families by tests/test_contracts.py).
Nothing here is a base class or a mixin: each family file keeps its own networks, losses, training step and hooks.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from datamodules.vocabulary import Vocabulary
from lightning_gans.core import PredictRequest, unwrap
from lightning_gans.counters import HostCount
from lightning_gans.networks.text import TextEncoder
from lightning_gans.options import OptionGroup
from lightning_gans.text_encoder import read_text_encoder


class CaptionPool(nn.Module):
    """The last ``size`` training captions as word ids (a ring buffer in the checkpoint).

    Args:
        size: captions kept.
        max_length: words kept per caption.
    """

    def __init__(self, size: int = 1024, max_length: int = 24) -> None:
        super().__init__()
        if size < 1 or max_length < 1:
            raise ValueError(f"caption pool size and max_length must be at least 1, got {size} and {max_length}")
        self.register_buffer("tokens", torch.zeros(size, max_length, dtype=torch.long))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        self.seen_count = HostCount(self, "seen")  # read on the host: no device sync per step

    def __len__(self) -> int:
        return min(self.seen_count.get(), len(self.tokens))

    @torch.no_grad()
    def add(self, tokens: Tensor) -> None:
        tokens = fit_length(tokens, self.tokens.shape[1])[-len(self.tokens) :]
        rows = (self.seen_count.get() + torch.arange(len(tokens), device=self.tokens.device)) % len(self.tokens)
        self.tokens[rows] = tokens.to(self.tokens.device)
        self.seen_count.add(len(tokens))

    def draw(self, n: int) -> Tensor:
        """``n`` captions drawn uniformly (torch's RNG) from those kept."""
        return self.tokens[torch.randint(len(self), (n,), device=self.tokens.device)]


def fit_length(tokens: Tensor, length: int) -> Tensor:
    """Word ids cut or 0-padded to ``length`` columns."""
    if tokens.shape[1] >= length:
        return tokens[:, :length]
    return torch.nn.functional.pad(tokens, (0, length - tokens.shape[1]))


# ------------------------------------------------------------------------------------------------ options, contract
@dataclass(frozen=True)
class TextEncoderOptions(OptionGroup):
    """The text side of a text-to-image family, one typed option group: ``text: {checkpoint: PATH, finetune: true}``
    in a config, ``--model.init_args.text.checkpoint PATH`` on the command line.

    Args:
        checkpoint: checkpoint of :class:`~lightning_gans.text_encoder.TextEncoderPretraining` (its weights, vocabulary
            and sizes are adopted); null: a text encoder from random weights.
        finetune: train the text encoder with G (else it is frozen, in eval mode).
        word_dim: size of the word embeddings (when no checkpoint is given).
        sentence_dim: size of the sentence vector (when no checkpoint is given).
        dropout: dropout on word embeddings while fine-tuning.
        max_caption_length: words kept per prompt and per caption in the caption pool.
        caption_pool_size: recent training captions kept for ``sample(n)`` (and FID).
    """

    checkpoint: str | None = None
    finetune: bool = False
    word_dim: int = 128
    sentence_dim: int = 128
    dropout: float = 0.25
    max_caption_length: int = 24
    caption_pool_size: int = 1024

    _group = "text"

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.word_dim, self.sentence_dim, self.max_caption_length, self.caption_pool_size) < 1:
            raise ValueError(
                "text.word_dim, sentence_dim, max_caption_length and caption_pool_size must be at least 1, got "
                f"{self.word_dim}, {self.sentence_dim}, {self.max_caption_length}, {self.caption_pool_size}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"text.dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class PredictPlan:
    """What :func:`predict_dataloader` planned for :func:`predict_step`: the prompts, their word ids and the layout
    (``("interpolation", steps)``, ``("prompts", per prompt)`` or ``("default", per row)``)."""

    prompts: list[str]
    tokens: Tensor
    layout: tuple[str, int]


@runtime_checkable
class TextFamily(Protocol):
    """What this module's functions use of a text-to-image family (GANINTCLS, DFGAN). :func:`build_text_side` sets
    ``vocab``, ``text_encoder``, ``caption_pool``, ``grid_prompts`` and ``predict_plan`` from ``text_options`` and
    ``hparams`` (``vocabulary``, ``grid_prompts``, ``text``); the family provides the rest (``generate`` runs its
    generator on noise and sentence vectors)."""

    text_options: TextEncoderOptions
    vocab: Vocabulary
    text_encoder: nn.Module
    caption_pool: CaptionPool
    grid_prompts: list[str]
    predict_plan: PredictPlan | None
    predict_request: PredictRequest
    hparams: Any
    fixed_noise: Tensor
    latent_dim: int
    device: torch.device

    def noise(self, n: int) -> Tensor: ...

    def sampling_generator(self, use_ema: bool = True) -> nn.Module: ...

    def generate(self, generator: nn.Module, z: Tensor, sentences: Tensor) -> Tensor: ...

    def attached_datamodule(self) -> Any: ...


# ------------------------------------------------------------------------------------------------ construction
def build_text_side(module: TextFamily) -> None:
    """Give ``module`` its ``vocab``, ``text_encoder``, ``caption_pool``, ``grid_prompts`` and an empty
    ``predict_plan``, from ``module.text_options`` and the ``vocabulary`` and ``grid_prompts`` hyperparameters.

    With a ``text_options.checkpoint`` its weights, vocabulary and sizes are adopted and written back into
    ``text_options`` and the hyperparameters (so the GAN's own checkpoint says what it holds); a vocabulary linked from
    the datamodule must then be the same. Without one the encoder starts from random weights (fine-tune it, or it
    stays a random but fixed map of the words).
    """
    hp, opts, name = module.hparams, module.text_options, type(module).__name__
    if opts.checkpoint:
        encoder, vocab, sizes = read_text_encoder(opts.checkpoint, dropout=opts.dropout)
        if hp.vocabulary is not None and Vocabulary(hp.vocabulary) != vocab:
            mine = Vocabulary(hp.vocabulary)
            raise ValueError(
                f"{name}: the text encoder '{opts.checkpoint}' was trained on another vocabulary ({len(vocab)} "
                f"entries) than the datamodule's ({len(mine)} entries; e.g. words only in one: "
                f"{sorted(set(vocab.words) ^ set(mine.words))[:5]}). Pretrain the encoder on the same caption "
                "datamodule settings (captions, min_word_count) as the GAN."
            )
        opts = dataclasses.replace(opts, word_dim=sizes["word_dim"], sentence_dim=sizes["sentence_dim"])
        module.text_options, hp.text = opts, dataclasses.asdict(opts)
        hp.vocabulary = list(vocab.words)
    else:
        if hp.vocabulary is None:
            raise ValueError(
                f"{name} needs a vocabulary: train it on a caption datamodule (datamodules.captions: "
                "MNISTCaptionsDataModule, CelebACaptionsDataModule, CaptionFolderDataModule), which the CLI links "
                "in, or give a pretrained text encoder (text.checkpoint; it holds its vocabulary)"
            )
        vocab = Vocabulary(hp.vocabulary)
        encoder = TextEncoder(len(vocab), opts.word_dim, opts.sentence_dim, opts.dropout)
    encoder.requires_grad_(bool(opts.finetune))
    module.vocab, module.text_encoder = vocab, encoder
    module.caption_pool = CaptionPool(opts.caption_pool_size, opts.max_caption_length)
    prompts = list(hp.grid_prompts or [w for w in vocab.words[2:10]])
    if not prompts:
        raise ValueError(f"{name}: grid_prompts is empty")
    module.grid_prompts = prompts[:8]
    module.predict_plan = None


def text_parameters(module: TextFamily) -> list[nn.Parameter]:
    """The text encoder's parameters when it is fine-tuned (they train with G), else none."""
    return list(module.text_encoder.parameters()) if module.text_options.finetune else []


def encode(module: TextFamily, tokens: Tensor, sampling: bool = False) -> Tensor:
    """Sentence vectors of a batch. Training: a fine-tuned encoder in training mode with grad, a frozen one in eval
    mode (no dropout) without grad. ``sampling``: eval mode, no grad, either way."""
    if module.text_options.finetune and not sampling and torch.is_grad_enabled():
        return module.text_encoder(tokens)[1]
    encoder = unwrap(module.text_encoder)
    was = encoder.training
    if sampling or not module.text_options.finetune:
        encoder.eval()
    try:
        with torch.no_grad():
            return encoder(tokens)[1]
    finally:
        encoder.train(was)


def mismatched_pairs(texts: Sequence[str], device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """(image rows, sentence rows) of the mismatched pairs of a batch: caption i with the image of row i + 1
    (the official DF-GAN roll), except where the two captions are the same text (a "wrong" pair that is right)."""
    n = len(texts)
    rows = [i for i in range(n) if n > 1 and texts[i] != texts[(i + 1) % n]]
    # built on the host and copied without waiting (torch.tensor(..., device=cuda) would synchronise)
    sentence_rows = torch.tensor(rows, dtype=torch.long).to(device, non_blocking=True)
    return (sentence_rows + 1) % max(n, 1), sentence_rows


def prompt_tokens(module: TextFamily, prompts: Sequence[str]) -> Tensor:
    """Word ids of prompts with the model's vocabulary (unknown words -> ``<unk>``, with a counted warning)."""
    length = module.text_options.max_caption_length
    return module.vocab.encode_batch(list(prompts), length, what="prompts").to(module.device)


def setup(module: TextFamily) -> None:
    """At setup: a datamodule with a vocabulary must have the model's (its batches' word ids are the model's); a
    model without its own ``grid_prompts`` takes the datamodule's ``example_captions`` (and keeps them in its
    hyperparameters, so its checkpoints have them)."""
    datamodule = module.attached_datamodule()
    if datamodule is None:
        return
    if module.hparams.grid_prompts is None and getattr(datamodule, "example_captions", None):
        module.hparams.grid_prompts = list(datamodule.example_captions)[:8]
        module.grid_prompts = module.hparams.grid_prompts
    words = getattr(datamodule, "vocabulary", None)
    if words is not None and list(words) != module.vocab.words:
        raise ValueError(
            f"{type(module).__name__} was built for a vocabulary of {len(module.vocab)} entries, the datamodule's "
            f"has {len(words)}: its word ids would mean other words. Build the model with the datamodule's "
            "vocabulary (the CLI links it) and a text encoder pretrained on the same captions."
        )


def on_load_checkpoint(module: TextFamily, checkpoint: dict[str, Any]) -> None:
    """The grid prompts a checkpoint was trained with, unless the model was given its own."""
    saved = checkpoint.get("hyper_parameters", {}).get("grid_prompts")
    if module.hparams.grid_prompts is None and saved:
        module.hparams.grid_prompts = list(saved)
        module.grid_prompts = list(saved)[:8]


# ------------------------------------------------------------------------------------------------ sampling
def _run(module: TextFamily, z: Tensor, sentences: Tensor, use_ema: bool) -> Tensor:
    generator = module.sampling_generator(use_ema)
    was = generator.training
    generator.eval()
    try:
        return module.generate(generator, z, sentences).clamp(-1.0, 1.0)
    finally:
        generator.train(was)


@torch.no_grad()
def sample(
    module: TextFamily,
    n: int | None = None,
    *,
    z: Tensor | None = None,
    text: str | Sequence[str] | None = None,
    tokens: Tensor | None = None,
    use_ema: bool = True,
) -> Tensor:
    """Images in [-1, 1] for prompts (``text``, or word ids ``tokens``): one prompt for all, or one per image.

    Without prompts: for a given ``z``, the grid prompts in turn (so the same z always gives the same images); for
    fresh noise, captions drawn from the recent training captions (the grid prompts before any training).
    """
    if z is None and n is None and text is None and tokens is None:
        raise ValueError("sample() needs n (how many), z (the noise) or prompts")
    if tokens is None and text is not None:
        tokens = prompt_tokens(module, [text] if isinstance(text, str) else list(text))
    count = len(z) if z is not None else n if n is not None else len(tokens)
    if tokens is None:
        if z is None and len(module.caption_pool):
            tokens = module.caption_pool.draw(count)
        else:
            prompts = module.grid_prompts
            tokens = prompt_tokens(module, [prompts[i % len(prompts)] for i in range(count)])
    tokens = tokens.to(module.device)
    if len(tokens) == 1 and count > 1:
        tokens = tokens.expand(count, -1)
    if len(tokens) != count:
        raise ValueError(f"{len(tokens)} prompts for {count} images: give one prompt, or one per image")
    z = module.noise(count) if z is None else z.to(module.device)
    return _run(module, z, encode(module, tokens, sampling=True), use_ema)


@torch.no_grad()
def interpolate(
    module: TextFamily, first: str, second: str, steps: int = 8, z: Tensor | None = None, use_ema: bool = True
) -> Tensor:
    """``steps`` images per noise vector (one row per z), from ``first`` to ``second`` along the straight line
    between their sentence vectors, as GAN-INT's interpolated embeddings: Float[len(z) * steps, C, H, W]."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    z = module.noise(1) if z is None else z.to(module.device)
    ends = encode(module, prompt_tokens(module, [first, second]), sampling=True)
    weights = torch.linspace(0, 1, steps, device=module.device).repeat(len(z))[:, None]
    sentences = torch.lerp(ends[0].expand(len(weights), -1), ends[1].expand(len(weights), -1), weights)
    return _run(module, z.repeat_interleave(steps, dim=0), sentences, use_ema)


def _grid_prompts(module: TextFamily) -> list[str]:
    """The prompt of each fixed-noise image: the grid prompts in rows of equal length."""
    n, prompts = len(module.fixed_noise), module.grid_prompts
    per = math.ceil(n / len(prompts))
    return [prompts[min(i // per, len(prompts) - 1)] for i in range(n)]


def grid_images(module: TextFamily) -> Tensor:
    return sample(module, z=module.fixed_noise, text=_grid_prompts(module))


def grid_captions(module: TextFamily) -> list[str]:
    return _grid_prompts(module)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:48] or "prompt"


def predict_dataloader(module: TextFamily) -> DataLoader:
    """Noise and prompt indices from ``predict_request`` (set by the image writer): ``num_samples`` images per
    prompt of ``text``; with ``interpolation_steps`` and two prompts, that many steps from the first to the second
    per noise vector; without prompts, ``num_samples`` images over the grid prompts. The plan is kept in
    ``module.predict_plan`` for :func:`predict_step`."""
    req = module.predict_request
    prompts, steps = list(req.text or []), req.interpolation_steps
    n, gen = req.num_samples, torch.Generator().manual_seed(req.seed)
    if steps:
        if len(prompts) != 2 or steps < 2:
            raise ValueError(
                f"interpolation_steps={steps} needs exactly two prompts and at least 2 steps, got "
                f"{len(prompts)} prompts"
            )
        z = torch.randn(n, module.latent_dim, generator=gen).repeat_interleave(steps, dim=0)
        first = torch.zeros(n * steps, dtype=torch.long)
        weight = torch.linspace(0, 1, steps).repeat(n)
        layout = ("interpolation", steps)
    elif prompts:
        z = torch.randn(n * len(prompts), module.latent_dim, generator=gen)
        first = torch.arange(len(prompts)).repeat_interleave(n)
        weight = torch.zeros(len(z))
        layout = ("prompts", n)
    else:
        prompts = list(module.grid_prompts)
        per = math.ceil(n / len(prompts))
        z = torch.randn(n, module.latent_dim, generator=gen)
        first = (torch.arange(n) // per).clamp(max=len(prompts) - 1)
        weight = torch.zeros(n)
        layout = ("default", per)
    module.predict_plan = PredictPlan(prompts, prompt_tokens(module, prompts).cpu(), layout)
    second = torch.ones_like(first) if layout[0] == "interpolation" else first
    return DataLoader(TensorDataset(torch.arange(len(z)), z, first, second, weight), batch_size=req.batch_size)


@torch.no_grad()
def predict_step(module: TextFamily, batch: Any) -> dict[str, Any]:
    """Images, file names, captions and the grid's row length, for :class:`lightning_gans.callbacks.ImageWriter`."""
    index, z, first, second, weight = batch
    plan = module.predict_plan
    if plan is None:
        raise RuntimeError("predict_step runs after predict_dataloader, which plans the prompts")
    prompts, (kind, per) = plan.prompts, plan.layout
    ends = encode(module, plan.tokens.to(module.device), sampling=True)
    sentences = torch.lerp(ends[first], ends[second], weight[:, None].to(ends.dtype))
    images = _run(module, z, sentences, use_ema=True)
    names, captions = [], []
    for i, a in zip(index.tolist(), first.tolist()):
        if kind == "interpolation":
            names.append(f"interpolation/{i // per:03d}_{i % per:02d}.png")
            captions.append(f"{prompts[0]} -> {prompts[1]}")
        elif kind == "prompts":
            names.append(f"{a:03d}_{_slug(prompts[a])}/{i % per:06d}.png")
            captions.append(prompts[a])
        else:
            names.append(f"{i:06d}.png")
            captions.append(prompts[a])
    return {"images": images, "names": names, "captions": captions, "nrow": min(per, 16)}


__all__ = [
    "CaptionPool",
    "PredictPlan",
    "TextEncoderOptions",
    "TextFamily",
    "build_text_side",
    "encode",
    "fit_length",
    "grid_captions",
    "grid_images",
    "interpolate",
    "mismatched_pairs",
    "on_load_checkpoint",
    "predict_dataloader",
    "predict_step",
    "prompt_tokens",
    "sample",
    "setup",
    "text_parameters",
]
