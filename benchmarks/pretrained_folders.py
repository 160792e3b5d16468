"""Build the pretrained folders of the shipped configs at their budgets: train (or resume) each config, then export it.

    python benchmarks/pretrained_folders.py                          # fast_mnist, dcgan_mnist, srresnet_celeba
    python benchmarks/pretrained_folders.py --only fast_mnist --out-dir pretrained

Each config trains with its own budget into ``<runs-dir>/<name>`` (``--ckpt_path last`` when a run is already there,
so an interrupted build continues) and is exported with ``lightning-gans export --format pretrained`` into
``<out-dir>/<name>``, whose README.md is the model card (the weights are never committed: this script rebuilds them).
Afterwards ``lightning_gans.from_pretrained("<out-dir>/<name>")`` loads one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("fast_mnist", "dcgan_mnist", "srresnet_celeba")


def commands(name: str, runs_dir: Path, out_dir: Path) -> list[list[str]]:
    """The fit (or resume) and export commands of one config."""
    config = str(ROOT / "configs" / f"{name}.yaml")
    run = runs_dir / name
    cli = [sys.executable, "-m", "lightning_gans.cli"]
    fit = [*cli, "fit", "--config", config, "--trainer.default_root_dir", str(run)]
    if (run / "checkpoints" / "last.ckpt").is_file():
        fit += ["--ckpt_path", "last"]
    export = [*cli, "export", "--config", config, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")]
    return [fit, [*export, "--format", "pretrained", "--output", str(out_dir / name)]]


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
