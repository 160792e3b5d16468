"""``lightning-gans optimize``: write a dataset the datamodules read as LitData chunks, for streaming at scale.

    lightning-gans optimize --config configs/dcgan_celeba.yaml --output_dir /shared/celeba_chunks
    lightning-gans optimize --data CelebADataModule --data.init_args.data_dir /data/celeba --output_dir s3://b/celeba
    lightning-gans fit --config configs/dcgan_celeba.yaml --data.init_args.streaming_dir /shared/celeba_chunks

The datamodule is configured as for ``fit`` (an experiment config's ``data`` section, then ``--data...`` flags); every
split it has (train, val, test) is written with the files' bytes, labels, attributes or captions (see
:mod:`datamodules.streaming`). Transform options (image size, crop) apply when the chunks are read, so one optimize
output serves every resolution unless ``--min_side`` shrinks the images to save space.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser

from datamodules import ImageDataModule
from datamodules.streaming import optimize


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="lightning-gans optimize",
        description="Write a datamodule's splits as LitData chunks (see lightning_gans/optimize.py).",
        env_prefix="LIGHTNING_GANS_OPTIMIZE",
    )
    parser.add_subclass_arguments(ImageDataModule, "data", required=True, help="the datamodule, as for fit")
    parser.add_argument("--output_dir", required=True, help="a new or empty folder, or an s3://, gs://, azure:// URI")
    parser.add_argument("--splits", type=list[str], default=["train", "val", "test"], help="splits to write")
    parser.add_argument(
        "--min_side", type=int | None, default=None, help="re-encode images with their shorter side at most this"
    )
    parser.add_argument(
        "--image_format", choices=["source", "jpeg", "png"], default="source", help="keep the bytes, or re-encode"
    )
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality when re-encoding")
    parser.add_argument("--num_workers", type=int, default=1, help="LitData worker processes")
    parser.add_argument("--chunk_bytes", default="64MB", help="target size of one chunk")
    return parser


def _expand_config(argv: list[str]) -> list[str]:
    """``--config X.yaml`` (an experiment config) becomes ``--data <its data section>``; the rest is ignored."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" or arg.startswith("--config="):
            path = arg.split("=", 1)[1] if "=" in arg else argv[i + 1]
            i += 1 if "=" in arg else 2
            config = yaml.safe_load(Path(path).read_text()) or {}
            if "data" not in config:
                raise SystemExit(f"lightning-gans optimize: error: '{path}' has no data section; give --data")
            out += ["--data", yaml.safe_dump(config["data"])]
            continue
        out.append(arg)
        i += 1
    return out


def main(argv: list[str]) -> None:
    parser = _parser()
    cfg = parser.parse_args(_expand_config(argv))
    init = parser.instantiate_classes(cfg)
    datamodule = init.data
    if getattr(datamodule, "streaming_dir", None):
        raise SystemExit(
            "lightning-gans optimize: error: the datamodule reads from streaming_dir; optimize reads the folder"
        )
    manifest = optimize(
        datamodule,
        cfg.output_dir,
        splits=tuple(cfg.splits),
        min_side=cfg.min_side,
        image_format=cfg.image_format,
        quality=cfg.quality,
        num_workers=cfg.num_workers,
        chunk_bytes=cfg.chunk_bytes,
    )
    counts = ", ".join(f"{split} {n:,}" for split, n in manifest["splits"].items())
    print(f"lightning-gans optimize: wrote {manifest['datamodule']} ({counts}) to {cfg.output_dir}", file=sys.stderr)
