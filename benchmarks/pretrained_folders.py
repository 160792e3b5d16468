"""Build the pretrained folders of the shipped configs at their budgets: train (or resume) each config, then export it.

    python benchmarks/pretrained_folders.py                          # every config below
    python benchmarks/pretrained_folders.py --only fast_mnist --out-dir pretrained

Each config trains with its own budget into ``<runs-dir>/<name>`` (``--ckpt_path last`` when a run is already there,
so an interrupted build continues) and is exported with ``lightning-gans export --format pretrained`` into
``<out-dir>/<name>``, whose README.md is the model card (the weights are never committed: this script rebuilds them).
Afterwards ``lightning_gans.from_pretrained("<out-dir>/<name>")`` loads one. A config that needs another run first (a
text-to-image GAN needs its text encoder, which its config names as ``runs/text_encoder_mnist/...``, relative to the
working directory: run this script from the folder that holds ``<runs-dir>``) trains that run first. StyleGAN's
32x32 config reads the shared 10,000-face CelebA copy (``$LIGHTNING_GANS_DATA_DIR/celeba_small``), as its header says.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("fast_mnist", "dcgan_mnist", "srresnet_celeba", "stylegan_celeba32", "gan_int_cls_mnist")
#: Runs a config's model reads (trained, not exported, before the config itself).
REQUIRES = {"gan_int_cls_mnist": "text_encoder_mnist"}


def data_args(name: str) -> list[str]:
    """Data flags a config's header gives for the shared data (the 10,000-face CelebA copy)."""
    if name != "stylegan_celeba32":
        return []
    root = Path(os.environ.get("LIGHTNING_GANS_DATA_DIR", "data"))
    folder = ["--data.init_args.image_folder", "img_align_celeba_89x109"]
    return ["--data.init_args.data_dir", str(root / "celeba_small"), *folder]


def fit_command(name: str, runs_dir: Path) -> list[str]:
    """Train ``name`` at its config's budget into ``<runs_dir>/<name>`` (resuming a run that is there)."""
    config = str(ROOT / "configs" / f"{name}.yaml")
    run = runs_dir / name
    fit = [
        sys.executable,
        "-m",
        "lightning_gans.cli",
        "fit",
        "--config",
        config,
        "--trainer.default_root_dir",
        str(run),
    ]
    if (run / "checkpoints" / "last.ckpt").is_file():
        fit += ["--ckpt_path", "last"]
    return [*fit, *data_args(name)]


def commands(name: str, runs_dir: Path, out_dir: Path) -> list[list[str]]:
    """The fit (or resume) commands of one config and what it needs, then its export command."""
    config = str(ROOT / "configs" / f"{name}.yaml")
    last = runs_dir / name / "checkpoints" / "last.ckpt"
    export = [sys.executable, "-m", "lightning_gans.cli", "export", "--config", config, "--ckpt_path", str(last)]
    before = [] if name not in REQUIRES else [fit_command(REQUIRES[name], runs_dir)]
    export += ["--format", "pretrained", "--output", str(out_dir / name)]
    return [*before, fit_command(name, runs_dir), export]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=list(CONFIGS), help=f"configs (default: {' '.join(CONFIGS)})")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/pretrained"))
    parser.add_argument("--out-dir", type=Path, default=Path("pretrained"))
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    for name in args.only:
        if (args.out_dir / name).exists():
            raise SystemExit(f"{args.out_dir / name} exists: remove it or name another --out-dir")
        for command in commands(name, args.runs_dir, args.out_dir):
            print("$", " ".join(command), flush=True)
            if not args.dry_run:
                subprocess.run(command, check=True)
        if not args.dry_run:
            print((args.out_dir / name / "README.md").read_text())


if __name__ == "__main__":
    main()
