"""The MNIST zoo: every MNIST config in ``configs/`` trained to the budget it states, one table and one grid each.

    python benchmarks/mnist_zoo.py                     # every configs/*_mnist.yaml (about 2-3 hours on 2 cores)
    python benchmarks/mnist_zoo.py --only dcgan        # the configs whose name contains "dcgan"
    python benchmarks/mnist_zoo.py --jobs 2            # two configs at a time, each in its own process on 1 thread
    python benchmarks/mnist_zoo.py --collect --jobs 2  # the table again from the runs already in --runs-dir

With ``--jobs N`` each config trains in a child process with ``cores / N`` threads, N at a time, the configs with
the most stated epochs first (on 2 cores two 1-thread runs finish the zoo sooner than one 2-thread run after another;
each run's wall time is then its own, with the machine shared).

Each config runs through ``lightning-gans fit`` (in this process) exactly as shipped, into ``runs/zoo/<name>``; its
own EvaluationCallback (``configs/evaluation/mnist_classifier.yaml``: 10,000 samples against the 5,000 validation
digits on the project's MNIST classifier) gives the numbers after the last epoch. Written:

- ``docs/zoo/<name>.png``: the config's final sample grid (fixed noise, EMA generator when on);
- ``docs/mnist_zoo.md``: the table (FID, IS analogue, classes covered, confident share, precision, recall, G/D steps,
  wall time), the protocol and the machine;
- the same table in README.md between the ``mnist-zoo`` markers.

The table's last row is the reference: the 10,000 MNIST test digits scored as if generated, the same way
(``python benchmarks/mnist_zoo.py --reference`` prints it alone).

A table from a partial run (``--only``) goes to ``--out-dir`` (default ``runs/zoo``) instead of docs/ and README.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # `datamodules`, `lightning_gans` and `benchmarks` from this checkout

import torch  # noqa: E402

from benchmarks._runs import Run, fit, load_run, replace_between, save_run  # noqa: E402

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


def markdown_table(runs: list[Run], reference: dict[str, float] | None = None) -> str:
    lines = [
        "| config | MNIST FID | IS analogue | classes covered | confident share | precision | recall | G / D steps "
        "| wall time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        m = r.final
        if not m:  # --collect --missing-ok: a config without a finished run
            lines.append(f"| `{r.name}` | not run | - | - | - | - | - | - | - |")
            continue
        lines.append(
            f"| `{r.name}` | {m['fid']:.1f} | {m.get('is', float('nan')):.2f} | {int(m['classes_covered'])}/10 "
            f"| {100 * m.get('confident_share', float('nan')):.0f}% | {m['precision']:.3f} | {m['recall']:.3f} "
            f"| {r.g_steps:,} / {r.d_steps:,} | {r.wall_s / 60:.1f} min |"
        )
    if reference is not None:
        lines.append(reference_row(reference))
    return "\n".join(lines)


def stated_epochs(config: Path) -> float:
    """The epochs a config's trainer states (``max_steps`` counted as two optimizer steps per batch of 859), for
    starting the longest runs first."""
    text = config.read_text()
    if match := re.search(r"^\s*max_epochs:\s*(\d+)", text, re.M):
        return float(match.group(1))
    if match := re.search(r"^\s*max_steps:\s*(\d+)", text, re.M):
        return int(match.group(1)) / 2 / 859
    return 0.0


def real_reference(data_dir: str | None = None, num_test: int | None = None) -> dict[str, float]:
    """The evaluation's metrics for real digits: the MNIST test digits (the first ``num_test``, default all 10,000) as
    the "generated" set against the 5,000 validation digits, on the zoo's extractor and settings."""
    from datamodules import MNISTDataModule
    from lightning_gans.metrics import selection
    from lightning_gans.metrics.evaluator import GenerativeMetrics

    data_dir = data_dir or os.environ.get("LIGHTNING_GANS_DATA_DIR") or str(REPO / "data")
    datamodule = MNISTDataModule(data_dir=data_dir, num_workers=0, batch_size=500)
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.setup("test")
    metrics = GenerativeMetrics(selection.load_extractor("mnist_classifier", None, "tf1", (1, 28, 28)))
    seen = 0
    with torch.no_grad():
        for images, _ in datamodule.val_dataloader():
            metrics.update_real_images(images)
        for images, _ in datamodule.test_dataloader():
            images = images[: None if num_test is None else num_test - seen]
            metrics.update_fake_images(images)
            seen += len(images)
            if num_test is not None and seen >= num_test:
                break
    return {name: float(value) for name, value in metrics.compute().items()}


def reference_row(m: dict[str, float]) -> str:
    return (
        f"| real digits (10,000 test vs the 5,000 validation) | {m['fid']:.1f} | {m['is']:.2f} "
        f"| {int(m['classes_covered'])}/10 | {100 * m['confident_share']:.0f}% | {m['precision']:.3f} "
        f"| {m['recall']:.3f} | - | - |"
    )


def run_file(runs_dir: Path, name: str) -> Path:
    """Where a finished run's row is saved."""
    return runs_dir / name / "zoo_run.json"


def threads_per_run(jobs: int) -> int:
    """Threads each of ``jobs`` concurrent runs gets (the cores shared out)."""
    return max(1, (os.cpu_count() or 1) // jobs)


def fit_in_child(config: Path, runs_dir: Path, cli_args: list[str], threads: int) -> Run:
    """``fit`` in a child process with ``threads`` threads; its :class:`Run` comes back through a JSON file."""
    result = run_file(runs_dir, config.stem)
    result.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log = runs_dir / f"{config.stem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--child", str(config), "--runs-dir", str(runs_dir), "--", *cli_args]
    with log.open("w") as out:
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0 or not result.is_file():
        raise RuntimeError(f"{config.stem} failed (exit code {code}); its output is in {log}")
    return load_run(result)


def write_report(
    runs: list[Run],
    out_dir: Path,
    command: str,
    readme: Path | None,
    jobs: int = 1,
    reference: dict[str, float] | None = None,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    grids = out_dir / "zoo"
    grids.mkdir(exist_ok=True)
    for r in runs:
        if r.grid:
            shutil.copyfile(r.grid, grids / f"{r.name}.png")
    threads = threads_per_run(jobs) if jobs > 1 else torch.get_num_threads()
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{threads} thread{'s' * (threads != 1)} per run" + (f", {jobs} runs at a time" if jobs > 1 else "")
    )
    table = markdown_table(runs, reference)
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
    parser.add_argument("--jobs", type=int, default=1, help="configs trained at a time, each in its own process")
    parser.add_argument("--reference", action="store_true", help="only print the real digits' row")
    parser.add_argument(
        "--collect", action="store_true", help="no training: the table from the runs in --runs-dir (and their --jobs)"
    )
    parser.add_argument("--missing-ok", action="store_true", help="with --collect: configs without a run say so")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # one config, its Run to zoo_run.json
    parser.add_argument("cli_args", nargs="*", help="after --: extra arguments for every run's CLI")
    args = parser.parse_args(argv)
    runs_dir = Path(args.runs_dir)
    if args.child:
        config = Path(args.child)
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
        run = fit(config, runs_dir / config.stem, list(args.cli_args))
        save_run(run, run_file(runs_dir, config.stem))
        return [run]
    if args.reference:
        print(reference_row(real_reference()))
        return []
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    configs = zoo_configs(args.only)
    if not configs:
        raise SystemExit(f"no MNIST config matches {args.only!r}")
    whole = args.only is None and not args.cli_args
    out_dir = Path(args.out_dir) if args.out_dir else (REPO / "docs" if whole else runs_dir)

    def one(config: Path) -> Run:
        start = time.perf_counter()
        if args.jobs == 1:
            run = fit(config, runs_dir / config.stem, list(args.cli_args))
            save_run(run, run_file(runs_dir, config.stem))
        else:
            run = fit_in_child(config, runs_dir, list(args.cli_args), threads_per_run(args.jobs))
        print(
            f"[zoo] {config.stem}: FID {run.final['fid']:.1f}, {int(run.final['classes_covered'])}/10 classes, "
            f"{run.g_steps} G steps, {(time.perf_counter() - start) / 60:.1f} min",
            flush=True,
        )
        return run

    if args.collect:
        missing = [c.stem for c in configs if not run_file(runs_dir, c.stem).is_file()]
        if missing and not args.missing_ok:
            raise SystemExit(
                f"--collect: no finished run of {', '.join(missing)} in {runs_dir}; train each with "
                f"`python benchmarks/mnist_zoo.py --only NAME --runs-dir {runs_dir}` first (or pass --missing-ok)"
            )
        runs = [
            load_run(run_file(runs_dir, c.stem)) if c.stem not in missing else Run(name=c.stem, final={})
            for c in configs
        ]
    elif args.jobs == 1:
        runs = [one(config) for config in configs]
    else:
        longest_first = sorted(configs, key=stated_epochs, reverse=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            done = dict(zip(longest_first, pool.map(one, longest_first)))
        runs = [done[config] for config in configs]
    command = "python benchmarks/mnist_zoo.py" + (f" --only {args.only}" if args.only else "")
    command += f" --jobs {args.jobs}" if args.jobs > 1 else ""
    reference = real_reference() if whole else None
    report = write_report(runs, out_dir, command, REPO / "README.md" if whole else None, args.jobs, reference)
    print(f"[zoo] wrote {report}")
    return runs


if __name__ == "__main__":
    main()
