"""A recipe sweep: one config trained under a wall-clock budget with variations, one table of what each gave.

    python benchmarks/recipe_sweep.py benchmarks/sweeps/dcgan_mnist.yaml            # every variant of the sweep
    python benchmarks/recipe_sweep.py benchmarks/sweeps/dcgan_mnist.yaml --only paper,ema   # two variants

A sweep file names the config, the budget in minutes, arguments every run gets and the variants, each a list of
``lightning-gans`` arguments (architecture width, loss, learning rates, batch size, EMA, n_critic, toolbox
options...)::

    config: configs/dcgan_mnist.yaml
    minutes: 10
    common: [--trainer.max_epochs, "-1", --trainer.check_val_every_n_epoch, "1000"]
    variants:
      paper: []
      ema: [--model.init_args.ema_decay, "0.999"]

Each variant trains with ``--trainer.max_time`` = the budget (the config's evaluation is then run once on the
final model; its time is outside the budget), in this process, one after the other, into ``runs/sweeps/<sweep>/``
(``--runs-dir``).
Each finished variant saves its row as ``sweep_run.json`` in its run folder, so several processes can share a sweep
(``--only a,b`` in one, ``--only c,d`` in another) and ``--collect`` then writes the table of all of them without
training. The table goes to ``benchmarks/results/<sweep>.md`` (FID, IS analogue, classes covered, precision, recall,
G steps, images per second), so every recipe choice in ``configs/`` can point at its evidence.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import yaml  # noqa: E402

from benchmarks._runs import Run, fit, load_run, save_run  # noqa: E402


def load_sweep(path: Path) -> dict:
    sweep = yaml.safe_load(Path(path).read_text())
    missing = {"config", "minutes", "variants"} - set(sweep)
    if missing:
        raise ValueError(f"{path}: a sweep file needs {sorted(missing)} (see benchmarks/recipe_sweep.py)")
    return sweep


def markdown_table(runs: list[Run]) -> str:
    lines = [
        "| variant | arguments | MNIST FID | IS analogue | classes | precision | recall | G steps | images/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        m, args = r.final, " ".join(r.args) or "(only the common ones)"
        rate = r.g_steps * r.batch_size / r.wall_s if r.wall_s else float("nan")
        lines.append(
            f"| `{r.name}` | `{args}` | {m['fid']:.1f} | {m.get('is', float('nan')):.2f} "
            f"| {int(m.get('classes_covered', 0))}/10 | {m['precision']:.3f} | {m['recall']:.3f} "
            f"| {r.g_steps:,} | {rate:.0f} |"
        )
    return "\n".join(lines)


def run_file(runs_dir: Path, variant: str) -> Path:
    """Where a finished variant's row is saved."""
    return runs_dir / variant / "sweep_run.json"


def selected(variants: dict, only: str | None) -> dict:
    """The variants named by the comma-separated ``only`` (all without it): a variant's full name selects it alone
    (``ema``, not every ``*_ema``), any other word the variants whose name contains it."""
    if not only:
        return variants
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = {
        v: extra for v, extra in variants.items() if any(w == v or (w not in variants and w in v) for w in wanted)
    }
    if not chosen:
        raise SystemExit(f"--only {only}: no variant matches; the sweep has {', '.join(variants)}")
    return chosen


def main(argv: list[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="a sweep file (benchmarks/sweeps/*.yaml)")
    parser.add_argument(
        "--only",
        default=None,
        help="only these variants, comma-separated (a full name selects that variant, a part every variant with it)",
    )
    parser.add_argument("--minutes", type=float, default=None, help="override the sweep's budget")
    parser.add_argument("--out", type=Path, default=None, help="the table (default benchmarks/results/<sweep>.md)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="where the runs go (default runs/sweeps/<sweep>)")
    parser.add_argument(
        "--collect",
        action="store_true",
        help="train nothing: write the table from the variants' saved runs (several processes can share a sweep, "
        "each with its own --only, then one --collect writes the whole table)",
    )
    args = parser.parse_args(argv)
    sweep = load_sweep(args.sweep)
    minutes = args.minutes or float(sweep["minutes"])
    seconds = max(1, round(minutes * 60))
    budget = f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    name = args.sweep.stem
    runs_dir = args.runs_dir or REPO / "runs" / "sweeps" / name
    runs = []
    for variant, extra in selected(sweep["variants"], args.only).items():
        if args.collect:
            if not run_file(runs_dir, variant).is_file():
                raise SystemExit(
                    f"no finished run of {variant} in {runs_dir}: train it first "
                    f"(python benchmarks/recipe_sweep.py {args.sweep} --only {variant})"
                )
            runs.append(load_run(run_file(runs_dir, variant)))
            continue
        extra = [str(a) for a in (extra or [])]
        run = fit(
            REPO / sweep["config"],
            runs_dir / variant,
            [*map(str, sweep.get("common", [])), "--trainer.max_time", budget, *extra],
            name=variant,
            final_validation=True,
        )
        run.args = extra
        save_run(run, run_file(runs_dir, variant))
        runs.append(run)
        print(
            f"[sweep] {variant}: FID {run.final['fid']:.1f}, {int(run.final.get('classes_covered', 0))}/10 classes, "
            f"{run.g_steps} G steps",
            flush=True,
        )
    threads = sorted({r.threads for r in runs if r.threads}) or [torch.get_num_threads()]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch threads per run: {'/'.join(map(str, threads))}"
    out = args.out or REPO / "benchmarks" / "results" / f"{name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"# Recipe sweep `{name}`\n\n`{sweep['config']}`, {minutes:g} minutes of training each on {machine}; "
        f"`python benchmarks/recipe_sweep.py {args.sweep}`. Common arguments: "
        f"`{' '.join(map(str, sweep.get('common', [])))}`.\n\n{markdown_table(runs)}\n"
    )
    print(f"[sweep] wrote {out}")
    return runs


if __name__ == "__main__":
    main()
