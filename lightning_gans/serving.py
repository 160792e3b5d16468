"""What ``lightning-gans serve`` and ``lightning-gans demo`` do with a trained model, apart from any web framework.

A served model does one of three things, by family (:func:`task_of`):

- ``sample``: images from noise (every noise family, class-conditional ones with a class, StyleGAN with a truncation
  psi and style-mixing seeds, text-to-image ones with a prompt);
- ``translate``: an image in, the family's output at the input's size (Pix2Pix, GauGAN, CycleGAN in either
  direction; label maps are colour images, read with a palette);
- ``upscale``: an image in, ``scale`` times larger (SRResNet, SRGAN, ESRGAN), tiled as ``predict`` tiles.

Requests are checked here (:func:`parse_sample`, :func:`parse_image`), before any model runs: a bad one raises
:class:`BadRequest`, whose message names the problem and the fix, and which the server answers with its status (4xx).
Requests that passed are run together (:func:`run_samples`, :func:`run_images`), one forward pass per group of
requests that share their settings.

**Seeds.** Request ``{"n": n, "seed": s}`` uses ``z = torch.randn(n, latent_dim,
generator=torch.Generator().manual_seed(s))`` (:func:`noise`), as ``lightning-gans predict --writer.seed s`` does:
its images are ``model.sample(z=z)`` (with ``labels=torch.full((n,), k)`` for ``"class": k``; without a class,
``sample``'s own labels for a given z, 0, 1, ..., K-1, 0, ...; with ``"prompt": p``, ``text=p``; with
``"truncation_psi": psi``, ``truncation_psi=psi``), whichever other requests share their batch.
"""

from __future__ import annotations

import argparse
import io
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from lightning_gans.core import GANModule

#: The families of each task besides ``sample`` (every family that draws noise samples).
TRANSLATE_FAMILIES = ("Pix2Pix", "GauGAN", "CycleGAN")
UPSCALE_FAMILIES = ("SRResNet", "SRGAN", "ESRGAN")
FORMATS = ("png", "json")
DIRECTIONS = ("AtoB", "BtoA")
#: Channels of each PIL mode an upload may have (a palette image "P" is read as the RGB it shows).
_MODE_CHANNELS = {"1": 1, "L": 1, "I": 1, "I;16": 1, "F": 1, "LA": 2, "P": 3, "RGB": 3, "YCbCr": 3, "RGBA": 4}


class BadRequest(ValueError):
    """A request the model cannot serve; ``status`` is the HTTP status to answer (400, or 413 for too large)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (the server's and demo's ``--max_*`` options).

    Args:
        max_samples: images per sample request (``n``; a style-mixing grid counts its every cell).
        max_prompt_chars: characters in a text prompt.
        max_upload_bytes: bytes of an uploaded image (and of a request's whole body).
        max_upload_side: pixels of an uploaded image's longer side.
    """

    max_samples: int = 64
    max_prompt_chars: int = 200
    max_upload_bytes: int = 8 * 2**20
    max_upload_side: int = 1024

    def __post_init__(self) -> None:
        for name in ("max_samples", "max_prompt_chars", "max_upload_bytes", "max_upload_side"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class SampleRequest:
    """One checked sample request (see the module docstring for what each field means)."""

    n: int = 1
    seed: int = 0
    label: int | None = None
    truncation_psi: float | None = None
    prompt: str | None = None
    mix_seeds: tuple[int, ...] = ()
    format: str = "png"


@dataclass(frozen=True)
class ImageRequest:
    """One checked upload: the model's input ``[1, C, h, w]`` and the uploaded image's own (H, W)."""

    input: Tensor
    size: tuple[int, int]
    direction: str = "AtoB"
    format: str = "png"
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ the model
def load_model(
    pretrained: str | None = None, config: str | None = None, ckpt_path: str | None = None, device: str = "cpu"
) -> GANModule:
    """A model to serve: a pretrained folder (or Hub repo id), or a run's checkpoint (its config is read only when
    the checkpoint names no family). In eval mode on ``device``."""
    if (pretrained is None) == (ckpt_path is None):
        raise ValueError("give --pretrained DIR (a pretrained folder) or --ckpt_path PATH (with --config), not both")
    if pretrained is not None:
        from lightning_gans.pretrained import from_pretrained

        return from_pretrained(pretrained, map_location=device)
    from lightning_gans.loading import load_trained

    model, _ = load_trained(ckpt_path, config, map_location=device)
    return model


def task_of(model: GANModule) -> str:
    """``"sample"``, ``"translate"`` or ``"upscale"``: what the model is served for."""
    family = type(model).__name__
    if family in TRANSLATE_FAMILIES:
        return "translate"
    if family in UPSCALE_FAMILIES:
        return "upscale"
    if model.latent_dim > 0:
        return "sample"
    raise ValueError(f"{family} makes no images from noise or from an input image: it cannot be served")


def is_stylegan(model: GANModule) -> bool:
    return type(model).__name__ == "StyleGAN"


def takes_label_maps(model: GANModule) -> bool:
    """A translation model whose input is a one-hot label map (GauGAN; Pix2Pix trained on label maps)."""
    channels = getattr(model, "input_channels", None)
    return task_of(model) == "translate" and model.num_classes > 0 and channels == model.num_classes


def input_channels(model: GANModule) -> int:
    """Channels an uploaded image must have: the model's input's (3 for a colour label map)."""
    if takes_label_maps(model):
        return 3
    return int(getattr(model, "input_channels", model.image_shape[0]))


def resolve_palette(model: GANModule, label_palette: str | None) -> Any:
    """The palette that turns an uploaded colour label map into the model's classes (None for other models): a
    shipped palette's name, a JSON list of ``[R, G, B]`` (one per class), or None for the shipped palette with the
    model's number of classes."""
    if not takes_label_maps(model):
        return None
    from datamodules.paired import PALETTES, resolve_palette

    if label_palette is None:  # the one shipped palette whose class count matches
        matching = [name for name, (colours, _) in PALETTES.items() if len(colours) == model.num_classes]
        if not matching:
            raise ValueError(
                f"{type(model).__name__} reads label maps of {model.num_classes} classes and no shipped palette has "
                f"that many ({', '.join(PALETTES)}): give --label_palette with the colours it was trained with"
            )
        label_palette = matching[0]
    if label_palette.lstrip().startswith("["):  # --label_palette '[[0, 0, 0], [255, 0, 0], ...]'
        import json

        try:
            label_palette = json.loads(label_palette)
        except ValueError as err:
            raise ValueError(f"--label_palette is neither a palette name nor a JSON list of [R, G, B]: {err}") from None
    palette, _ = resolve_palette(label_palette)
    if len(palette) != model.num_classes:
        raise ValueError(f"label_palette has {len(palette)} colours, the model reads {model.num_classes} classes")
    return palette


def describe(model: GANModule, limits: Limits, source: str = "", metrics: Mapping[str, Any] | None = None) -> dict:
    """What ``/info`` answers: family, task and endpoint, shapes, the request fields the model takes, the limits,
    and the model card's metrics."""
    task = task_of(model)
    fields: dict[str, str] = {"format": "png (a grid when n > 1) or json (base64 PNGs)"}
    if task == "sample":
        fields |= {"n": f"1..{limits.max_samples}", "seed": "0..2**63-1"}
        if model.conditional:
            fields["class"] = f"0..{model.num_classes - 1} (default: 0, 1, ... in turn)"
        if is_stylegan(model):
            fields["truncation_psi"] = "-2..2 (default: the model's)"
            fields["mix_seeds"] = "seeds of the style-mixing columns (a grid: n rows, one column per seed)"
        if model.takes_text:
            fields["prompt"] = f"1..{limits.max_prompt_chars} characters, {max_words(model)} words at most"
    else:
        fields["image"] = f"the uploaded file (multipart field 'image'), {input_channels(model)} channels"
        if type(model).__name__ == "CycleGAN":
            fields["direction"] = "AtoB (default) or BtoA"
    info: dict[str, Any] = {
        "family": type(model).__name__,
        "task": task,
        "endpoint": f"/{task}",
        "image_shape": list(model.image_shape),
        "num_classes": model.num_classes,
        "latent_dim": model.latent_dim,
        "fields": fields,
        "limits": {k: getattr(limits, k) for k in limits.__dataclass_fields__},
        "source": source,
        "metrics": dict(metrics or {}),
    }
    if task == "upscale":
        info["scale"] = int(model.scale)
    return info


def card_metrics(pretrained: str | None) -> dict[str, Any]:
    """The model card's metrics of a pretrained folder (``config.json``'s ``metrics``), empty for a checkpoint."""
    if pretrained is None or not Path(pretrained).is_dir():
        return {}
    from lightning_gans.pretrained import read_config

    return dict(read_config(Path(pretrained)).get("metrics") or {})


# ------------------------------------------------------------------------------------------------ command lines
def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that name the model and the request limits (``serve`` and ``demo`` share them)."""
    parser.add_argument(
        "--pretrained", help="a pretrained folder (lightning-gans export --format pretrained) or Hub id"
    )
    parser.add_argument("--config", help="the run's config (read only when the checkpoint names no family)")
    parser.add_argument("--ckpt_path", help="a run's checkpoint, instead of --pretrained")
    parser.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda, cuda:1, ...")
    parser.add_argument("--label_palette", help="label-map models: the palette of the label colours (default: facades)")
    defaults = Limits()
    parser.add_argument("--max_samples", type=int, default=defaults.max_samples, help="images per sample request")
    parser.add_argument("--max_prompt_chars", type=int, default=defaults.max_prompt_chars, help="characters a prompt")
    parser.add_argument(
        "--max_upload_mb", type=float, default=defaults.max_upload_bytes / 2**20, help="megabytes an upload"
    )
    parser.add_argument("--max_upload_side", type=int, default=defaults.max_upload_side, help="pixels an upload's side")


def model_source(args: argparse.Namespace) -> dict[str, Any]:
    if (args.pretrained is None) == (args.ckpt_path is None):
        raise ValueError("give --pretrained DIR, or --ckpt_path PATH (with --config), not both")
    return {"pretrained": args.pretrained, "config": args.config, "ckpt_path": args.ckpt_path}


def limits_of(args: argparse.Namespace) -> Limits:
    return Limits(args.max_samples, args.max_prompt_chars, int(args.max_upload_mb * 2**20), args.max_upload_side)


# ------------------------------------------------------------------------------------------------ requests
def _integer(body: Mapping[str, Any], key: str, default: Any, low: int, high: int) -> Any:
    value = body.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadRequest(f"{key} must be an integer, got {value!r}")
    if not low <= int(value) <= high:
        raise BadRequest(f"{key} must be in {low}..{high}, got {value}")
    return int(value)


def _format(body: Mapping[str, Any]) -> str:
    fmt = body.get("format", "png")
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def _known_keys(body: Mapping[str, Any], allowed: Sequence[str], family: str) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"{family} takes no {', '.join(map(repr, unknown))}; its fields: {', '.join(allowed)}")


def max_words(model: GANModule) -> int:
    return int(model.text_options.max_caption_length)


def parse_sample(model: GANModule, body: Any, limits: Limits) -> SampleRequest:
    """A checked :class:`SampleRequest` from a JSON object; :class:`BadRequest` for anything the model cannot do."""
    family = type(model).__name__
    if not isinstance(body, Mapping):
        raise BadRequest(f'the request body must be a JSON object, e.g. {{"n": 4, "seed": 0}}, got {body!r:.80}')
    allowed = ["n", "seed", "format"]
    allowed += ["class"] if model.conditional else []
    allowed += ["truncation_psi", "mix_seeds"] if is_stylegan(model) else []
    allowed += ["prompt"] if model.takes_text else []
    _known_keys(body, allowed, family)
    n = _integer(body, "n", 1, 1, limits.max_samples)
    seed = _integer(body, "seed", 0, 0, 2**63 - 1)
    label = _integer(body, "class", None, 0, model.num_classes - 1) if model.conditional else None
    psi = body.get("truncation_psi")
    if psi is not None:
        if isinstance(psi, bool) or not isinstance(psi, numbers.Real) or not math.isfinite(psi) or abs(psi) > 2:
            raise BadRequest(f"truncation_psi must be a number in -2..2, got {psi!r}")
        psi = float(psi)
    mix = body.get("mix_seeds") or []
    if not isinstance(mix, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in mix):
        raise BadRequest(f"mix_seeds must be a list of seeds (integers 0 or more), got {mix!r:.80}")
    if mix and (n + 1) * (len(mix) + 1) > limits.max_samples:
        raise BadRequest(
            f"a style-mixing grid of {n} rows and {len(mix)} columns is {(n + 1) * (len(mix) + 1)} images, above "
            f"this server's limit of {limits.max_samples}: ask for fewer rows (n) or mix_seeds"
        )
    prompt = None
    if model.takes_text:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadRequest(f'{family} needs a prompt: a non-empty string, e.g. {{"prompt": "a thick seven"}}')
        check_prompt(model, prompt, limits)
    return SampleRequest(n, seed, label, psi, prompt, tuple(mix), _format(body))


def check_prompt(model: GANModule, prompt: str, limits: Limits) -> None:
    """Refuse a prompt that is too long for the server or for the model's text encoder."""
    from datamodules.vocabulary import tokenize

    if len(prompt) > limits.max_prompt_chars:
        raise BadRequest(f"the prompt has {len(prompt)} characters, above the limit of {limits.max_prompt_chars}")
    words = len(tokenize(prompt))
    if words > max_words(model):
        raise BadRequest(
            f"the prompt has {words} words; {type(model).__name__} reads {max_words(model)} at most (its text "
            "encoder's max_caption_length): shorten it"
        )


def unknown_words(model: GANModule, prompt: str) -> list[str]:
    """Words of a prompt that the model's vocabulary lacks (each read as ``<unk>``)."""
    from datamodules.vocabulary import tokenize

    return [w for w in tokenize(prompt) if w not in model.vocab.index]


def read_image(data: bytes, channels: int, limits: Limits) -> Image.Image:
    """The uploaded bytes as a PIL image of ``channels`` channels, after the size and type checks."""
    if len(data) > limits.max_upload_bytes:
        raise BadRequest(f"the upload is {len(data)} bytes, above the limit of {limits.max_upload_bytes}", 413)
    if not data:
        raise BadRequest("the upload is empty: send an image file (PNG or JPEG) in the multipart field 'image'")
    try:
        img = Image.open(io.BytesIO(data))
        if max(img.size) > limits.max_upload_side:  # before decoding the pixels
            raise BadRequest(
                f"the image is {img.width}x{img.height}, above this server's limit of {limits.max_upload_side} pixels "
                "a side: send a smaller image",
                413,
            )
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        if isinstance(err, BadRequest):
            raise
        raise BadRequest(f"the upload is not an image PIL can read (PNG, JPEG, ...): {err}") from None
    got = _MODE_CHANNELS.get(img.mode)
    if got != channels:
        want = {1: "grey (L)", 3: "RGB"}.get(channels, f"{channels}-channel")
        raise BadRequest(
            f"the model takes {want} images, this one has {got or 'an unsupported number of'} channels (mode "
            f"{img.mode}): convert it to {want} first (e.g. PIL's image.convert('{'L' if channels == 1 else 'RGB'}'))"
        )
    return img.convert("L" if channels == 1 else "RGB")


def parse_image(
    model: GANModule, data: bytes, fields: Mapping[str, Any], limits: Limits, palette: Any = None
) -> ImageRequest:
    """A checked :class:`ImageRequest` from an upload and its form fields."""
    from datamodules.transforms import to_signed_tensor

    family = type(model).__name__
    allowed = ["image", "format"] + (["direction"] if family == "CycleGAN" else [])
    _known_keys(fields, allowed, family)
    direction = fields.get("direction", "AtoB")
    if direction not in DIRECTIONS:
        raise BadRequest(f"direction must be AtoB or BtoA, got {direction!r}")
    img = read_image(data, input_channels(model), limits)
    size = (img.height, img.width)
    if task_of(model) == "upscale":
        x = to_signed_tensor(img)
    elif palette is not None:
        from datamodules.paired import LabelEncoder

        x = LabelEncoder(palette, model.image_shape[-1])(img)["input"]
    else:
        x = to_signed_tensor(img.resize((model.image_shape[-1], model.image_shape[-2]), Image.BICUBIC))
    return ImageRequest(x[None], size, direction, _format(fields))


# ------------------------------------------------------------------------------------------------ running
def noise(model: GANModule, n: int, seed: int) -> Tensor:
    """The z of a request: ``torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))``."""
    return torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))


def _labels(model: GANModule, req: SampleRequest) -> Tensor:
    if req.label is not None:
        return torch.full((req.n,), req.label, dtype=torch.long)
    return torch.arange(req.n) % model.num_classes  # what sample() gives a given z


def style_mixing(model: GANModule, req: SampleRequest) -> Tensor:
    """StyleGAN's style-mixing figure: rows from ``seed`` (n of them), columns from ``mix_seeds`` (one each)."""
    rows = noise(model, req.n, req.seed)
    cols = torch.cat([noise(model, 1, s) for s in req.mix_seeds])
    images, _ = model.style_mixing_grid(rows, cols)
    return images


@torch.no_grad()
def run_samples(model: GANModule, requests: Sequence[SampleRequest]) -> list[Tensor]:
    """Each request's images ([-1, 1], on the CPU): one forward pass per group of requests with the same settings."""
    out: list[Tensor | None] = [None] * len(requests)
    groups: dict[Any, list[int]] = {}
    for i, req in enumerate(requests):
        groups.setdefault(("mix", i) if req.mix_seeds else ("psi", req.truncation_psi), []).append(i)
    for key, index in groups.items():
        if key[0] == "mix":
            out[index[0]] = style_mixing(model, requests[index[0]]).cpu()
            continue
        reqs = [requests[i] for i in index]
        kwargs: dict[str, Any] = {"z": torch.cat([noise(model, r.n, r.seed) for r in reqs])}
        if model.conditional:
            kwargs["labels"] = torch.cat([_labels(model, r) for r in reqs])
        if model.takes_text:
            kwargs["text"] = [r.prompt for r in reqs for _ in range(r.n)]
        if key[1] is not None:
            kwargs["truncation_psi"] = key[1]
        images = model.sample(**kwargs).cpu()
        for i, part in zip(index, images.split([r.n for r in reqs])):
            out[i] = part
    return out  # type: ignore[return-value]


@torch.no_grad()
def run_images(model: GANModule, requests: Sequence[ImageRequest]) -> list[Tensor]:
    """Each upload's output ([-1, 1], ``[1, C, H, W]`` on the CPU): translations at the upload's size, upscales at
    ``scale`` times it. Uploads of one shape and direction run as one batch."""
    out: list[Tensor | None] = [None] * len(requests)
    groups: dict[Any, list[int]] = {}
    for i, req in enumerate(requests):
        groups.setdefault((tuple(req.input.shape), req.direction), []).append(i)
    upscale = task_of(model) == "upscale"
    for (_, direction), index in groups.items():
        x = torch.cat([requests[i].input for i in index]).to(model.device)
        if type(model).__name__ == "CycleGAN":
            y = model.translate(x, direction)
        else:
            y = model.translate(x)
        for i, image in zip(index, y.float().cpu().split(1)):
            size = requests[i].size
            if not upscale and tuple(image.shape[-2:]) != size:  # back to the upload's size, as predict writes it
                image = F.interpolate(image, size=size, mode="bicubic", align_corners=False)
            out[i] = image.clamp(-1, 1)
    return out  # type: ignore[return-value]


def bicubic(model: GANModule, req: ImageRequest) -> Tensor:
    """The upload upscaled ``scale`` times by bicubic interpolation (what an SR model is compared with)."""
    from lightning_gans.superres import interpolated

    return interpolated(req.input, int(model.scale), "bicubic").clamp(-1, 1)


# ------------------------------------------------------------------------------------------------ answers
def grid_columns(n: int) -> int:
    return max(1, math.ceil(math.sqrt(n)))


def pil_image(images: Tensor, nrow: int | None = None) -> Image.Image:
    """One picture: the image itself for one image, else a grid (``nrow`` per row, default about square)."""
    from lightning_gans.callbacks.common import make_grid_uint8, to_uint8

    if len(images) == 1:
        picture = to_uint8(images)[0]
    else:
        picture = make_grid_uint8(images, nrow or grid_columns(len(images)))
    array = picture.numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def png_bytes(images: Tensor, nrow: int | None = None) -> bytes:
    """:func:`pil_image` as PNG (what the server answers)."""
    buffer = io.BytesIO()
    pil_image(images, nrow).save(buffer, format="PNG")
    return buffer.getvalue()


def enlarged(picture: Image.Image, side: int = 384) -> Image.Image:
    """``picture`` scaled by the largest whole factor that keeps its longer side within ``side`` (at least 1),
    each pixel repeated (nearest): how the demo shows 28x28 digits at a size one can see."""
    factor = max(1, side // max(picture.size))
    return picture if factor == 1 else picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)


def uint8_images(png: bytes) -> Tensor:
    """A PNG back to uint8 ``[H, W, C]`` (what clients compare)."""
    import numpy as np

    array = np.asarray(Image.open(io.BytesIO(png)))
    return torch.from_numpy(array.copy() if array.ndim == 3 else array[..., None].copy())
