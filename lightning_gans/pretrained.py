"""Pretrained folders: what sampling needs of a trained model, in a safe file that loads in one line.

A folder written by :func:`save_pretrained` (``model.save_pretrained(DIR)``, or ``lightning-gans export --format
pretrained``) holds:

- ``model.safetensors``: the sampling weights and buffers, never a pickle: the generator (the EMA generator where the
  family keeps one, with its batch-norm statistics), StyleGAN's ``w_avg`` (a buffer of its mapping network), the
  text encoder of a text-to-image family, an autoencoder's code Gaussian, the fixed grid noise; not the
  discriminators, encoders, image pools, grid pairs or ADA state, which only training uses;
- ``config.json``: the family, its constructor arguments (vocabulary and class count included, so no datamodule is
  needed), the image shape, the project version and the SHA-256 of the weights file;
- ``README.md``: a model card in the Hugging Face Hub's format (family and paper, data, how it was trained, the last
  evaluation's metrics, a sample grid ``samples.png``).

:func:`from_pretrained` takes such a folder, or a Hugging Face Hub repo id (through ``huggingface_hub``), and returns
the family's module in eval mode, ready for ``sample`` / ``translate`` / ``sample(text=...)`` without a Trainer, a
datamodule or the training config; :func:`push_to_hub` uploads a folder. Loading reads no pickle: a missing or
changed file fails with a message that names it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lightning_gans.core import GANModule

FORMAT_VERSION = 1
WEIGHTS, CONFIG, CARD, GRID = "model.safetensors", "config.json", "README.md", "samples.png"

#: Top-level parts of a module that only training uses: not written, and absent (None) in a loaded module.
TRAINING_ONLY = (
    "discriminator",
    "discriminator_a",
    "discriminator_b",
    "encoder",
    "fixed_batch",
    "fixed_real",
    "pool_a",
    "pool_b",
    "pl_mean",
    "images_seen",
    "ada",  # ADA's p and its accumulators (lightning_gans.adaptive): they drive D's training only
    "generator_ema",  # its weights are written as the generator's (see sampling_state)
)

#: Constructor arguments that point at training-time files; a pretrained folder holds what they gave.
_NO_FILES: dict[str, dict[str, Any]] = {
    "SRGAN": {"init_from": None},
    "ESRGAN": {"init_from": None},
    "GauGAN": {"lambda_vgg": 0.0},  # its VGG loss trains only, and would look for the VGG19 file at construction
}


class PretrainedError(ValueError):
    """A pretrained folder that cannot be loaded (a missing, damaged or changed file), or one that cannot be written."""


def _plain(value: Any) -> Any:
    """Hyperparameters as JSON data (option groups as mappings, tuples as lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise PretrainedError(f"hyperparameter value {value!r} ({type(value).__name__}) cannot be written to {CONFIG}")


def constructor_args(module: GANModule) -> dict[str, Any]:
    """The module's constructor arguments as JSON data, with the training-time files taken out (see ``_NO_FILES``)."""
    args = _plain(dict(module.hparams))
    family = type(module).__name__
    args.update(_NO_FILES.get(family, {}))
    if isinstance(args.get("text"), dict):
        args["text"]["checkpoint"] = None  # the text encoder's weights are in the folder
    return args


def _sampling_entries(module: GANModule) -> dict[str, Tensor]:
    """The entries of ``module``'s state that sampling needs (the module's own tensors, not copies): every entry
    outside :data:`TRAINING_ONLY`, with the EMA generator's weights and buffers as the generator's."""
    state = {k: v for k, v in module.state_dict().items() if k.split(".", 1)[0] not in TRAINING_ONLY}
    if getattr(module, "generator_ema", None) is not None:
        state = {k: v for k, v in state.items() if not k.startswith("generator.")}
        state.update({f"generator.{k}": v for k, v in module.generator_ema.module.state_dict().items()})
    return state


def sampling_state(module: GANModule) -> dict[str, Tensor]:
    """What sampling needs of ``module``'s state (see :func:`_sampling_entries`), as CPU copies to write: the EMA
    generator's weights and buffers written as the generator's (what ``sample`` uses)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in _sampling_entries(module).items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_output_folder(folder: str | Path) -> Path:
    """Refuse a folder that exists and is not empty (nothing is replaced), or a path that is a file."""
    path = Path(folder).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(
            f"{path} {'is a file' if path.is_file() else 'already holds files'}: a pretrained folder is written into a "
            "new or empty folder, so nothing is replaced. Name another --output."
        )
    return path


def save_pretrained(
    module: GANModule,
    folder: str | Path,
    *,
    card: Mapping[str, Any] | None = None,
    grid: bool = True,
) -> Path:
    """Write ``module``'s pretrained folder (see the module docstring) into ``folder``, new or empty.

    ``card`` adds to the model card: ``data`` (a line on the training data), ``command`` (how it was trained),
    ``metrics`` ({name: value}, e.g. ``loading.load_trained``'s ``info.metrics``), ``training`` ({"epoch": ...,
    "G steps": ...}). ``grid``: write ``samples.png`` (the module's grid images). Returns the folder.
    """
    from safetensors.torch import save_file

    from lightning_gans import __version__
    from lightning_gans.callbacks.common import make_grid_uint8, save_image

    path = check_output_folder(folder)
    family = type(module).__name__
    config = {
        "format_version": FORMAT_VERSION,
        "library": "lightning-gans",
        "version": __version__,
        "family": family,
        "init_args": constructor_args(module),
        "image_shape": list(module.image_shape),
        "num_classes": module.num_classes,
        "latent_dim": module.latent_dim,
        "metrics": {str(k): _plain(v) for k, v in dict((card or {}).get("metrics") or {}).items()},  # the card's
    }
    state = sampling_state(module)
    path.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path / WEIGHTS), metadata={"format": "pt", "family": family, "lightning_gans": __version__})
    config["weights"] = {"file": WEIGHTS, "sha256": _sha256(path / WEIGHTS), "tensors": len(state)}
    (path / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    wrote_grid = False
    if grid and len(module.image_shape) == 3:
        was = module.training
        try:
            images = module.grid_images()
            nrow = getattr(getattr(module, "fixed_batch", None), "size", None) or int(math.sqrt(len(images))) or 1
            save_image(make_grid_uint8(images.cpu(), nrow=nrow), path / GRID)
            wrote_grid = True
        finally:
            module.train(was)
    (path / CARD).write_text(model_card(module, config, dict(card or {}), wrote_grid))
    return path


def model_card(module: GANModule, config: Mapping[str, Any], card: Mapping[str, Any], grid: bool) -> str:
    """The README.md of a pretrained folder: Hub front matter, then the family, data, training, metrics, use."""
    family = config["family"]
    doc = sys.modules[type(module).__module__].__doc__ or ""
    paper = " ".join(doc.strip().split("\n\n")[0].split()) if doc.strip() else family  # the first paragraph
    lines = [
        "---",
        "library_name: lightning-gans",
        f"tags: [gan, lightning-gans, {family.lower()}, image-generation]",
        "---",
        "",
        f"# {family}",
        "",
        f"{paper}",
        "",
        f"Trained with lightning-gans {config['version']}; image shape "
        f"{tuple(config['image_shape'])}"
        + (f", {config['num_classes']} classes" if config["num_classes"] else "")
        + ".",
        "",
        "## Data",
        "",
        str(card.get("data") or "Not recorded."),
        "",
        "## Training",
        "",
    ]
    if card.get("command"):
        lines += ["```bash", str(card["command"]), "```", ""]
    training = card.get("training") or {}
    if training:
        lines += [", ".join(f"{k}: {v}" for k, v in training.items()), ""]
    elif not card.get("command"):
        lines += ["Not recorded.", ""]
    lines += ["## Evaluation", ""]
    metrics = card.get("metrics") or {}
    if metrics:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {_number(v)} |" for k, v in sorted(metrics.items())]
    else:
        lines += ["No evaluation was recorded in the checkpoint."]
    call = {
        True: "model.sample(16)",
        False: "model.translate(images)",
    }[module.latent_dim > 0]
    if getattr(module, "takes_text", False):
        call = 'model.sample(text="a prompt")'
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "import lightning_gans",
        "",
        'model = lightning_gans.from_pretrained("path/or/hub-repo-id")',
        f"images = {call}  # [N, C, H, W] in [-1, 1]",
        "```",
        "",
    ]
    if grid:
        lines += ["## Samples", "", f"![samples]({GRID})", ""]
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------------------ loading
def _resolve(source: str | Path, revision: str | None) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = str(source)
    if path.exists() or text.startswith((".", "/", "~")) or not re.fullmatch(r"[\w.-]+/[\w.-]+", text):
        raise FileNotFoundError(
            f"{source!r} is neither a pretrained folder (resolved to {path.resolve()}) nor a Hugging Face Hub repo "
            "id (owner/name); write one with `lightning-gans export --format pretrained` or model.save_pretrained(DIR)"
        )
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=text, revision=revision))


def read_config(folder: Path) -> dict[str, Any]:
    file = folder / CONFIG
    if not file.is_file():
        raise PretrainedError(
            f"{folder} is not a pretrained folder: {CONFIG} is missing (save_pretrained writes it beside {WEIGHTS})"
        )
    try:
        config = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise PretrainedError(f"{file} is damaged: not JSON ({err})") from None
    if config.get("format_version") != FORMAT_VERSION or "family" not in config or "init_args" not in config:
        raise PretrainedError(
            f"{file} is not a lightning-gans pretrained config (format_version {config.get('format_version')!r}, "
            f"expected {FORMAT_VERSION}, with family and init_args)"
        )
    return config


def from_pretrained(
    source: str | Path, map_location: str | torch.device = "cpu", revision: str | None = None
) -> GANModule:
    """The family's module of a pretrained folder or Hub repo id, in eval mode on ``map_location``.

    Its sampling side only: the parts in :data:`TRAINING_ONLY` are None. Raises :class:`PretrainedError` for a
    missing, damaged or changed file (the weights' SHA-256 is checked, and their names and shapes against the
    model that ``config.json`` builds), before anything is built from it.
    """
    from lightning_gans.models import FAMILIES

    folder = _resolve(source, revision)
    config = read_config(folder)
    family = config["family"]
    if family not in FAMILIES:
        raise PretrainedError(f"{folder}: family {family!r} is not one of lightning-gans' ({', '.join(FAMILIES)})")
    state = read_weights(folder, config)
    module = FAMILIES[family](**config["init_args"])
    load_weights(module, state, folder)
    return module.to(map_location).eval()


def read_weights(folder: Path, config: Mapping[str, Any]) -> dict[str, Tensor]:
    """The folder's weights, after checking that the file is there and unchanged (its SHA-256 against config.json)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = folder / WEIGHTS
    if not weights.is_file():
        raise PretrainedError(f"{folder}: {WEIGHTS} is missing (the sampling weights; config.json names it)")
    expected = (config.get("weights") or {}).get("sha256")
    if expected is not None and _sha256(weights) != expected:
        raise PretrainedError(
            f"{weights} was changed after it was written: its SHA-256 is not the one config.json records. Use the "
            "folder as exported (or export it again)."
        )
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise PretrainedError(f"{weights} is damaged: {err}") from None


def load_weights(module: GANModule, state: Mapping[str, Tensor], folder: Path | str = "the folder") -> None:
    """Load a pretrained folder's weights into ``module`` (built from its config.json), checking names and shapes; the
    EMA copy gets the generator's weights, and the training-only parts are dropped (None)."""
    family = type(module).__name__
    ours = _sampling_entries(module)  # names and shapes only: no copy
    missing, unexpected = sorted(set(ours) - set(state)), sorted(set(state) - set(ours))
    reshaped = sorted(k for k in ours.keys() & state.keys() if ours[k].shape != state[k].shape)
    if missing or unexpected or reshaped:
        details = [f"missing: {', '.join(missing[:3])}"] if missing else []
        details += [f"not in the model: {', '.join(unexpected[:3])}"] if unexpected else []
        details += [f"{k}: file {tuple(state[k].shape)}, model {tuple(ours[k].shape)}" for k in reshaped[:3]]
        raise PretrainedError(
            f"{folder}: {WEIGHTS} does not fit the {family} that {CONFIG} builds ({'; '.join(details)}): the two files "
            "come from different exports"
        )
    module.load_state_dict(dict(state), strict=False)
    if getattr(module, "generator_ema", None) is not None:
        module.generator_ema.module.load_state_dict(module.generator.state_dict())
    for name in TRAINING_ONLY:
        if name != "generator_ema" and isinstance(getattr(module, name, None), (nn.Module, Tensor)):
            _drop(module, name)


def _drop(module: nn.Module, name: str) -> None:
    if name in module._buffers:
        module._buffers[name] = None
    else:
        setattr(module, name, None)


def push_to_hub(folder: str | Path, repo_id: str, *, private: bool = True, token: str | None = None) -> str:
    """Upload a pretrained folder to the Hugging Face Hub (the repo is created when missing); returns its URL. Then
    ``from_pretrained(repo_id)`` loads it anywhere."""
    from huggingface_hub import HfApi

    path = Path(folder)
    read_config(path)  # only pretrained folders
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(path), repo_id=repo_id)
    return f"https://huggingface.co/{repo_id}"


__all__ = [
    "CARD",
    "CONFIG",
    "GRID",
    "TRAINING_ONLY",
    "WEIGHTS",
    "PretrainedError",
    "constructor_args",
    "from_pretrained",
    "load_weights",
    "model_card",
    "push_to_hub",
    "read_config",
    "read_weights",
    "sampling_state",
    "save_pretrained",
]
