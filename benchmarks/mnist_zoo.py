"""The MNIST zoo: every MNIST config in ``configs/`` trained to the budget it states, one table and one grid each.

    python benchmarks/mnist_zoo.py                     # every configs/*_mnist.yaml (about 2-3 hours on 2 cores)
    python benchmarks/mnist_zoo.py --only dcgan        # the configs whose name contains "dcgan"

Each config runs through ``lightning-gans fit`` (in this process) exactly as shipped, into ``runs/zoo/<name>``; its
own EvaluationCallback (``configs/evaluation/mnist_classifier.yaml``: 10,000 samples against the 5,000 validation
digits on the project's MNIST classifier) gives the numbers after the last epoch. Written:

- ``docs/zoo/<name>.png``: the config's final sample grid (fixed noise, EMA generator when on);
- ``docs/mnist_zoo.md``: the table (FID, IS analogue, classes covered, confident share, precision, recall, G/D steps,
  wall time), the protocol and the machine;
- the same table in README.md between the ``mnist-zoo`` markers.

A table from a partial run (``--only``) goes to ``--out-dir`` (default ``runs/zoo``) instead of docs/ and README.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # `datamodules`, `lightning_gans` and `benchmarks` from this checkout

import torch  # noqa: E402

from benchmarks._runs import Run, fit, replace_between  # noqa: E402

BEGIN = "<!-- mnist-zoo:begin (written by benchmarks/mnist_zoo.py) -->"
END = "<!-- mnist-zoo:end -->"


def zoo_configs(only: str | None = None) -> list[Path]:
    """``configs/*_mnist.yaml`` that train on MNIST images and evaluate on the classifier, by name."""
    paths = []
    for path in sorted((REPO / "configs").glob("*mnist*.yaml")):
        text = path.read_text()
        if (
            "MNISTDataModule" in text
            and "evaluation/mnist_classifier.yaml" in text
            and (only is None or only in path.stem)
        ):
            paths.append(path)
    return paths


def markdown_table(runs: list[Run]) -> str:
    lines = [
        "| config | MNIST FID | IS analogue | classes covered | confident share | precision | recall | G / D steps "
        "| wall time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        m = r.final
        lines.append(
            f"| `{r.name}` | {m['fid']:.1f} | {m.get('is', float('nan')):.2f} | {int(m['classes_covered'])}/10 "
            f"| {100 * m.get('confident_share', float('nan')):.0f}% | {m['precision']:.3f} | {m['recall']:.3f} "
            f"| {r.g_steps:,} / {r.d_steps:,} | {r.wall_s / 60:.1f} min |"
        )
    return "\n".join(lines)


def write_report(runs: list[Run], out_dir: Path, command: str, readme: Path | None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    grids = out_dir / "zoo"
    grids.mkdir(exist_ok=True)
    for r in runs:
        if r.grid:
            shutil.copyfile(r.grid, grids / f"{r.name}.png")
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    table = markdown_table(runs)
    grid_list = "\n".join(f"- `{r.name}`: ![{r.name}](zoo/{r.name}.png)" for r in runs if r.grid)
    text = f"""# The MNIST zoo

Every MNIST config in `configs/` trained to the budget it states (`{command}`), evaluated by its own
EvaluationCallback after the last epoch: 10,000 samples (EMA generator with standing batch-norm statistics when
`ema_decay > 0`, eval mode) against the 5,000 validation digits, on the project's MNIST classifier (FID on its 128
features: not comparable to Inception FIDs; IS analogue from its logits; a class counts only from confident
predictions; precision/recall with k=3). Machine: {machine}.

{table}

## Final sample grids

{grid_list}
"""
    report = out_dir / "mnist_zoo.md"
    report.write_text(text)
    if readme is not None and readme.is_file():
        readme.write_text(replace_between(readme.read_text(), BEGIN, END, table))
    return report


def main(argv: list[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="run only the configs whose name contains this")
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "zoo"), help="where the runs go")
    parser.add_argument("--out-dir", default=None, help="table and grids (default: docs/ for the whole zoo)")
    parser.add_argument("cli_args", nargs="*", help="after --: extra arguments for every run's CLI")
    args = parser.parse_args(argv)
    configs = zoo_configs(args.only)
    if not configs:
        raise SystemExit(f"no MNIST config matches {args.only!r}")
    whole = args.only is None and not args.cli_args
    out_dir = Path(args.out_dir) if args.out_dir else (REPO / "docs" if whole else Path(args.runs_dir))
    runs = []
    for config in configs:
        start = time.perf_counter()
        run = fit(config, Path(args.runs_dir) / config.stem, list(args.cli_args))
        runs.append(run)
        print(
            f"[zoo] {config.stem}: FID {run.final['fid']:.1f}, {int(run.final['classes_covered'])}/10 classes, "
            f"{run.g_steps} G steps, {(time.perf_counter() - start) / 60:.1f} min",
            flush=True,
        )
    command = "python benchmarks/mnist_zoo.py" + (f" --only {args.only}" if args.only else "")
    report = write_report(runs, out_dir, command, REPO / "README.md" if whole else None)
    print(f"[zoo] wrote {report}")
    return runs


if __name__ == "__main__":
    main()
