"""Options renamed in 0.2.0, which keep working until 0.3.0 with a ``FutureWarning`` that names the new option.

:data:`RENAMED` is the one table: for each class, the old option name and the new one, dotted when the option moved
into a typed group (``"lambda_gp": "toolbox.gradient_penalty"``). It is applied at every door an old name can come
through:

- Python: the classes' constructors are wrapped by :func:`accepts_renamed`, so ``Pix2Pix(base_channels=32)`` builds
  ``Pix2Pix(g_channels=32)`` and warns;
- checkpoints: ``load_from_checkpoint`` passes a checkpoint's saved hyperparameters to that constructor, and
  :func:`upgrade_hparams` renames them in a checkpoint being resumed, so checkpoints of 0.1 load and resume;
- the command line: :func:`upgrade_argv` rewrites ``--model.init_args.<old>`` flags and the old keys of ``--config``
  files (and of the files they reference) before jsonargparse reads them.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: Removed in this release (the last one that accepts the old names).
REMOVED_IN = "0.3.0"

_WIDTHS = {"base_channels": "g_channels", "d_base_channels": "d_channels"}
_SR_WIDTHS = {"channels": "g_channels", "d_base_channels": "d_channels"}
_TILING = {"tile_size": "tiling.size", "tile_overlap": "tiling.overlap"}
_CONTENT = {
    name: f"content.{name}"
    for name in (
        "lambda_vgg",
        "vgg_layer",
        "vgg_criterion",
        "vgg_weights",
        "lambda_pixel",
        "pixel_loss",
        "lambda_d_features",
        "lambda_ssim",
    )
}
_TEXT = {
    "text_encoder": "text.checkpoint",
    "finetune_text_encoder": "text.finetune",
    "word_dim": "text.word_dim",
    "sentence_dim": "text.sentence_dim",
    "text_dropout": "text.dropout",
    "max_caption_length": "text.max_caption_length",
    "caption_pool_size": "text.caption_pool_size",
}

#: class name -> {old option: new option (dotted inside a typed group)}.
RENAMED: dict[str, dict[str, str]] = {
    "Pix2Pix": dict(_WIDTHS),
    "CycleGAN": {**_WIDTHS, "n_blocks": "num_blocks"},
    "GauGAN": {**_WIDTHS, "lambda_feat": "lambda_d_features"},
    "WGANGP": {"lambda_gp": "toolbox.gradient_penalty"},
    "SRResNet": {"channels": "g_channels", **_TILING},
    "SRGAN": {**_SR_WIDTHS, **_TILING, **_CONTENT},
    "ESRGAN": {**_SR_WIDTHS, **_TILING, **{k: v for k, v in _CONTENT.items() if k != "pixel_loss"}},
    "GANINTCLS": dict(_TEXT),
    "DFGAN": dict(_TEXT),
    "EvaluationCallback": {
        "extractor": "feature_extractor.name",
        "extractor_path": "feature_extractor.path",
        "resize": "feature_extractor.resize",
        **{
            k: f"metric_options.{k}"
            for k in ("kid_subsets", "kid_subset_size", "is_splits", "pr_k", "coverage_threshold", "mode_num_std")
        },
        "cache": "real_cache.enabled",
        "cache_dir": "real_cache.dir",
        "cache_key": "real_cache.key",
        "image_key": "batch_keys.images",
        "input_key": "batch_keys.inputs",
    },
}


def _warn(owner: str, moves: list[tuple[str, str]], where: str) -> None:
    listed = ", ".join(f"{old!r} -> {new!r}" for old, new in moves)
    warnings.warn(
        f"{owner}: option(s) renamed in 0.2.0{where}, the old names are removed in {REMOVED_IN}: {listed} (the values "
        "were moved there; see CHANGELOG.md)",
        FutureWarning,
        stacklevel=4,
    )


def _as_dict(group: Any) -> dict[str, Any]:
    if group is None:
        return {}
    if dataclasses.is_dataclass(group) and not isinstance(group, type):
        return dataclasses.asdict(group)
    if isinstance(group, Mapping):
        return dict(group)
    raise TypeError(f"an option group must be a mapping or its dataclass, got {type(group).__name__}")


def upgrade(owner: str, options: Mapping[str, Any], *, warn: bool = True, where: str = "") -> dict[str, Any]:
    """``options`` with ``owner``'s old names replaced by the new ones (a moved option goes into its group, as a
    mapping the constructor completes with its defaults). Giving an old name together with its new one is an error."""
    table = RENAMED.get(owner, {})
    out = dict(options)
    moves = [(old, new) for old, new in table.items() if old in out]
    if moves and warn:
        _warn(owner, moves, where)
    for old, new in moves:
        value = out.pop(old)
        group, _, field = new.partition(".")
        if field:
            merged = _as_dict(out.get(group))
            merged[field] = value
            out[group] = merged
        elif new in out:
            raise TypeError(f"{owner}: both {old!r} (deprecated) and {new!r} were given: keep only {new!r}")
        else:
            out[new] = value
    return out


def upgrade_hparams(owner: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's saved hyperparameters with the new names, in place (no warning: the file is not the user's
    config); returns them."""
    upgraded = upgrade(owner, hparams, warn=False)
    hparams.clear()
    hparams.update(upgraded)
    return hparams


def accepts_renamed(cls: type) -> type:
    """Class decorator: the constructor takes ``RENAMED[cls.__name__]``'s old names too, with a ``FutureWarning``.

    The signature jsonargparse and ``inspect.signature`` see stays the new one (``functools.wraps``)."""
    init: Callable[..., None] = cls.__init__
    owner = cls.__name__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        # Lightning before 2.6 hands load_from_checkpoint's weights_only to the constructor and filters it out by the
        # signature, which this wrapper's **kwargs would let through
        kwargs.pop("weights_only", None)
        init(self, *args, **upgrade(owner, kwargs))

    cls.__init__ = __init__
    return cls


# ------------------------------------------------------------------------------------------------ the command line
def _class_name(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("class_path")
    return value.rsplit(".", 1)[-1] if isinstance(value, str) else None


def _is_reference(value: Any, base: Path) -> bool:
    return isinstance(value, str) and value.endswith((".yaml", ".yml")) and (base / value).is_file()


def _reference(value: str, base: Path, found: list[str]) -> Any:
    """A file a config refers to: its upgraded content when it holds an old name, else its absolute path."""
    import yaml

    path = (base / value).resolve()
    before = len(found)
    upgraded = _upgrade_config(yaml.safe_load(path.read_text()), path.parent, found)
    return upgraded if len(found) > before else str(path)


def _upgrade_config(config: Any, base: Path, found: list[str]) -> Any:
    """A loaded config with old names renamed in every ``{class_path, init_args}`` of a renamed class. File references
    (``callbacks: [evaluation/x.yaml]``) are made absolute, or replaced by their upgraded content, so that the config
    can be handed over as text."""
    if isinstance(config, Mapping):
        out = {
            k: _reference(v, base, found) if _is_reference(v, base) else _upgrade_config(v, base, found)
            for k, v in config.items()
        }
        owner = _class_name(out)
        if owner in RENAMED and isinstance(out.get("init_args"), Mapping):
            before = set(out["init_args"])
            out["init_args"] = upgrade(owner, out["init_args"], where=" in a config file")
            found += sorted(before - set(out["init_args"]))
        return out
    if isinstance(config, list):
        return [
            _reference(v, base, found) if _is_reference(v, base) else _upgrade_config(v, base, found) for v in config
        ]
    return config


def upgrade_argv(argv: list[str]) -> list[str]:
    """Command-line arguments with the old option names renamed (see the module docstring), warning for each.

    A ``--config`` file that holds an old name is handed to jsonargparse as its upgraded text (the file itself is
    not changed); ``--model.init_args.<old>`` flags are renamed for the model class the configs or ``--model`` name.
    """
    import yaml

    out: list[str] = []
    model: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        if name in ("--config", "-c") and (eq or i + 1 < len(argv)):
            value = inline if eq else argv[i + 1]
            i += 1 if eq else 2
            path = Path(value)
            if path.is_file():
                loaded = yaml.safe_load(path.read_text()) or {}
                model = _class_name(loaded.get("model")) or model if isinstance(loaded, dict) else model
                found: list[str] = []
                upgraded = _upgrade_config(loaded, path.parent, found)
                if found:
                    value = yaml.safe_dump(upgraded, sort_keys=False)
            out += [name, value]
            continue
        if name == "--model" and (eq or i + 1 < len(argv)):
            model = _class_name(inline if eq else argv[i + 1]) or model
        elif name.startswith("--model.init_args.") and model in RENAMED:
            option = name[len("--model.init_args.") :]
            new = RENAMED[model].get(option)
            if new is not None:
                _warn(model, [(f"--model.init_args.{option}", f"--model.init_args.{new}")], " on the command line")
                arg = f"--model.init_args.{new}{eq}{inline}"
        elif name.startswith("--trainer.callbacks."):  # the last callback's options (only the evaluation's renamed)
            prefix = "--trainer.callbacks.init_args." if ".init_args." in name else "--trainer.callbacks."
            option = name[len(prefix) :]
            new = RENAMED["EvaluationCallback"].get(option)
            if new is not None:
                _warn("EvaluationCallback", [(f"{prefix}{option}", f"{prefix}{new}")], " on the command line")
                arg = f"{prefix}{new}{eq}{inline}"
        out.append(arg)
        i += 1
    return out


__all__ = ["REMOVED_IN", "RENAMED", "accepts_renamed", "upgrade", "upgrade_argv", "upgrade_hparams"]
