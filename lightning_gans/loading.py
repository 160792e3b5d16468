"""A trained model from its checkpoint, whatever its family: :func:`load_trained`.

Every :class:`~lightning_gans.core.GANModule` writes its family's name into its checkpoints (the ``lightning_gans``
entry, beside Lightning's own), so a checkpoint says which class rebuilds it: scripts and notebooks that score or
sample trained models call ``load_trained(path)`` instead of guessing the class from a config or from the
hyperparameters. The model itself is rebuilt by Lightning's ``load_from_checkpoint`` (the saved hyperparameters, then
the weights), so the loader depends on no constructor option of any family.

    model, info = load_trained("runs/srgan_celeba/checkpoints/last.ckpt", families=("SRResNet", "SRGAN", "ESRGAN"))
    print(info.family, info.g_steps)      # SRGAN 12000
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lightning_gans.checkpointing import CheckpointMismatchError, CheckpointReadError
from lightning_gans.core import _CKPT_KEY as CKPT_KEY  # the entry GANModule writes: family, G/D steps, RNG states
from lightning_gans.core import GANModule
from lightning_gans.renames import upgrade


@dataclass(frozen=True)
class TrainedInfo:
    """What the checkpoint says about the model :func:`load_trained` rebuilt."""

    path: Path
    family: str  # the class's name, e.g. "SRGAN"
    g_steps: int | None  # G (and D) optimizer steps it was trained for; None for a checkpoint without them
    d_steps: int | None
    epoch: int | None = None  # Lightning's 0-based epoch when it was saved
    metrics: dict[str, float] = field(default_factory=dict)  # its last validation's val/* metrics


def trainable_classes() -> dict[str, type[GANModule]]:
    """Family name -> class, for every GANModule subclass the package defines: the families of
    :data:`lightning_gans.models.FAMILIES` and the text encoder's pretraining module."""
    import lightning_gans.models  # noqa: F401  (imports register the subclasses)
    import lightning_gans.text_encoder  # noqa: F401

    found: dict[str, type[GANModule]] = {}
    todo = list(GANModule.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("lightning_gans."):
            found.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return found


def _read(path: Path) -> dict[str, Any]:
    """The checkpoint's dictionary; tensors are memory-mapped, so reading the family costs no copy of the weights."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # mmap needs a zip archive (torch.save's default format): read it whole, errors and all
        pass
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointReadError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from err


def _class_of_config(config: str | os.PathLike) -> str:
    """The class name of ``model.class_path`` in a config file (a run's config.yaml or an experiment config)."""
    import yaml

    data = yaml.safe_load(Path(config).read_text())
    data = data.get("fit", data) if isinstance(data, dict) else {}  # "fit:" holds a config printed for a subcommand
    model = data.get("model") if isinstance(data, dict) else None
    class_path = model.get("class_path") if isinstance(model, dict) else model if isinstance(model, str) else None
    if not class_path:
        raise ValueError(f"{config}: no model.class_path to name the checkpoint's family")
    return str(class_path).rsplit(".", 1)[-1]


def load_trained(
    ckpt_path: str | os.PathLike,
    config: str | os.PathLike | None = None,
    map_location: Any = "cpu",
    families: Iterable[str] | None = None,
    **overrides: Any,
) -> tuple[GANModule, TrainedInfo]:
    """The model of a checkpoint, rebuilt by its own family's ``load_from_checkpoint``, in eval mode.

    Args:
        ckpt_path: a checkpoint written by a lightning-gans run (``checkpoints/last.ckpt``, ...).
        config: read only when the checkpoint names no family (one not written by a GANModule): the config the model
            was trained with (its run's ``config.yaml``), whose ``model.class_path`` names the class.
        map_location: where the weights go (``"cpu"``, ``"cuda:0"``, ...).
        families: the families the caller can use (e.g. the super-resolution ones); another family is refused with
            a message naming both.
        **overrides: hyperparameters replacing the saved ones (``load_from_checkpoint``'s keyword arguments). A
            text-to-image model is loaded without its pretrained text encoder's file (``text.checkpoint`` is set to
            None): its checkpoint holds the encoder's weights.

    Returns:
        ``(model, info)``: the LightningModule in eval mode and a :class:`TrainedInfo` (family, G/D steps).

    Raises:
        FileNotFoundError: no file at ``ckpt_path``.
        CheckpointReadError: the file is not a readable checkpoint.
        CheckpointMismatchError: the checkpoint names no family (and no ``config`` does), a family this package does
            not define, or one outside ``families``.
    """
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint file at {str(ckpt_path)!r} (resolved to {path.resolve()}); give a run's .ckpt, e.g. "
            "runs/<config>/checkpoints/last.ckpt"
        )
    checkpoint = _read(path)
    state = checkpoint.get(CKPT_KEY) or {}
    family = state.get("family")
    if family is None:
        if config is None:
            raise CheckpointMismatchError(
                f"{path} names no lightning-gans family (it was not written by a lightning-gans run): give the config "
                "it was trained with (config=..., its model.class_path names the class)"
            )
        family = _class_of_config(config)
    classes = trainable_classes()
    if family not in classes:
        raise CheckpointMismatchError(
            f"{path} holds a {family}, which lightning-gans does not define (families: {', '.join(sorted(classes))})"
        )
    wanted = None if families is None else tuple(families)
    if wanted is not None and family not in wanted:
        raise CheckpointMismatchError(f"{path} holds a {family}, not a {' or '.join(wanted)} checkpoint")
    saved = upgrade(family, checkpoint.get("hyper_parameters") or {}, warn=False)
    if isinstance(saved.get("text"), dict) and "text" not in overrides:  # the encoder's weights are in the checkpoint
        overrides["text"] = {**saved["text"], "checkpoint": None}
        if "text_encoder" in (checkpoint.get("hyper_parameters") or {}):  # a 0.1 checkpoint: its old name too
            overrides["text_encoder"] = None
    model = classes[family].load_from_checkpoint(path, map_location=map_location, weights_only=True, **overrides)
    steps = {k: int(state[k]) if state.get(k) is not None else None for k in ("g_steps", "d_steps")}
    info = TrainedInfo(path, family, **steps, epoch=checkpoint.get("epoch"), metrics=dict(state.get("metrics") or {}))
    return model.eval(), info
