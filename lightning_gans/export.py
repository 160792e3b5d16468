"""``lightning-gans export``: a trained checkpoint as a pretrained folder (:mod:`lightning_gans.pretrained`), an ONNX
file or a ``torch.export`` program (:mod:`lightning_gans.exporting`).

    lightning-gans export --config configs/fast_mnist.yaml --ckpt_path runs/fast_mnist/checkpoints/last.ckpt \\
        --format pretrained --output pretrained/fast_mnist
    lightning-gans export --ckpt_path runs/fast_mnist/checkpoints/last.ckpt --format onnx --output onnx/fast_mnist

Everything is checked before anything is written: the format, the checkpoint (readable, of a lightning-gans
family, of the family the config names), the output folder (new or empty). The model card gets the config's data
and the command, the checkpoint's epochs and G steps, and the metrics of its last validation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

FORMATS = ("pretrained", "onnx", "pt2")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-gans export", description="Write a trained model in a form to use outside training."
    )
    parser.add_argument("--config", action="append", default=[], help="the run's config file(s) (for the model card)")
    parser.add_argument("--ckpt_path", required=True, help="the checkpoint (a run's checkpoints/last.ckpt)")
    parser.add_argument("--format", default="pretrained", help=f"one of {', '.join(FORMATS)}")
    parser.add_argument("--output", required=True, help="the folder to write (new or empty)")
    parser.add_argument(
        "--generator_mode",
        choices=("eval", "train"),
        help="image-to-image families: how the exported generator runs (onnx/pt2 need eval; Pix2Pix trains with train)",
    )
    return parser


def _config_model_and_data(configs: list[str]) -> tuple[str | None, str | None]:
    """The model family and a one-line description of the data that the config files (merged in order) name."""
    family = data = None
    for file in configs:
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f"--config {file}: no such file (resolved to {path.resolve()})")
        loaded = yaml.safe_load(path.read_text()) or {}
        model, datamodule = loaded.get("model"), loaded.get("data")
        if isinstance(model, dict) and model.get("class_path"):
            family = str(model["class_path"]).rsplit(".", 1)[-1]
        if isinstance(datamodule, dict) and datamodule.get("class_path"):
            args = datamodule.get("init_args") or {}
            data = f"`{datamodule['class_path']}`" + (f" with {args}" if args else "")
    return family, data


def _shown(config: str) -> str:
    """A config path as the card shows it: ``configs/<name>.yaml`` for a shipped config, else as given."""
    shipped = Path(__file__).resolve().parents[1] / "configs"
    try:
        return str(Path("configs") / Path(config).resolve().relative_to(shipped))
    except ValueError:
        return config


def export(configs: list[str], ckpt_path: str, fmt: str, output: str, generator_mode: str | None = None) -> Path:
    """See the module docstring; returns the folder written."""
    from lightning_gans import exporting
    from lightning_gans.checkpointing import CheckpointMismatchError
    from lightning_gans.exporting import require_onnx
    from lightning_gans.loading import load_trained
    from lightning_gans.pretrained import check_output_folder, save_pretrained

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "onnx":
        require_onnx()
    check_output_folder(output)
    family, data = _config_model_and_data(configs)
    model, info = load_trained(ckpt_path, **({"generator_mode": generator_mode} if generator_mode else {}))
    if family is not None and info.family != family:
        raise CheckpointMismatchError(
            f"--ckpt_path {ckpt_path} holds a {info.family}, but the config builds a {family}: give this run's config "
            "and checkpoint together"
        )
    if fmt != "pretrained":
        file, worst, prog = exporting.export(model, fmt, Path(output))
        extra = f"; {'; '.join(prog.notes)}" if prog.notes else ""
        print(f"lightning-gans export: {file} matches the PyTorch module within {worst:.1e}{extra}", file=sys.stderr)
        return Path(output)
    card: dict[str, Any] = {
        "data": data,
        "command": " ".join(["lightning-gans fit", *(f"--config {_shown(c)}" for c in configs)]) if configs else None,
        "training": {
            "epoch (0-based, when saved)": info.epoch,
            "G steps": info.g_steps,
            "D steps": info.d_steps,
            "checkpoint": info.path.name,
        },
        "metrics": info.metrics,
    }
    card["training"] = {k: v for k, v in card["training"].items() if v is not None}
    return save_pretrained(model, output, card=card)


def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    folder = export(args.config, args.ckpt_path, args.format, args.output, args.generator_mode)
    print(f"lightning-gans export: wrote {args.format} to {folder}", file=sys.stderr)


__all__ = ["FORMATS", "export", "main"]
