"""The mode-collapse lab: every row of ``configs/lab/`` on the 8-Gaussian ring, one table and one figure.

``configs/lab/base.yaml`` holds what every row shares (the small MLPs, data, seed, evaluation and G-step budget); each
other ``configs/lab/<row>.yaml`` is one loss with or without the stabilisation-toolbox options that matter, written as
what it changes in the base. This script runs the rows one after another through the real CLI, in-process
(``GANCLI(args=["fit", "--config", base, "--config", row, ...])``, exactly what ``lightning-gans fit --config
configs/lab/base.yaml --config configs/lab/<row>.yaml`` does), each into its own folder under ``--runs-dir``, and
reads what the config's :class:`~lightning_gans.callbacks.EvaluationCallback` measured: modes covered (/8), the share
of high-quality samples (within 3 std of a centre) and the mode KL, at every evaluation and at the end. It then
writes

- ``docs/mode_collapse.md``: the table (config, loss, toolbox options, optimiser, modes covered, high-quality share,
  mode KL, both counts at each evaluation, G/D steps, wall time) between two markers; text outside the markers (the
  observations) is kept when the file is rewritten;
- ``docs/mode_collapse.png``: the final scatter plot of every config side by side, each under its title, after a
  panel of the real data (one grid, :func:`lightning_gans.callbacks.common.save_grid`).

    OMP_NUM_THREADS=1 python benchmarks/mode_collapse_lab.py          # the whole lab, a few minutes on CPU
    python benchmarks/mode_collapse_lab.py --only hinge               # rows whose name contains "hinge"
    python benchmarks/mode_collapse_lab.py -- --seed_everything 1     # extra CLI arguments for every run

Only the whole lab with no extra arguments writes to ``docs/`` by default; a partial or modified lab writes its
table and figure into ``--runs-dir`` unless ``--out-dir`` says otherwise, so the committed results stay as measured.

Wall times are per config, in-process (imports excluded), on ``--threads`` torch threads; they depend on the load
of the machine. Each run is seeded by its config (``seed_everything``), so the numbers repeat on the same machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported: tiny MLPs gain nothing from more
    sys.path.insert(0, str(REPO))  # `datamodules` and `lightning_gans` from this checkout

from benchmarks._runs import fit  # noqa: E402
from lightning_gans.toolbox import Toolbox  # noqa: E402

CONFIG_DIR = REPO / "configs" / "lab"
#: The file every lab row is composed on (``--config base.yaml --config <row>.yaml``); not a row itself.
BASE_NAME = "base.yaml"
BEGIN = "<!-- mode-collapse-lab:begin (written by benchmarks/mode_collapse_lab.py) -->"
END = "<!-- mode-collapse-lab:end -->"

#: Options shown in the "toolbox" column when they differ from the GAN family's defaults: its own n_critic and
#: ema_decay, then every field of its ``toolbox`` group, in the group's order.
TOOLBOX = ("n_critic", "ema_decay", *(f.name for f in dataclasses.fields(Toolbox)))


@dataclass
class LabResult:
    """What one config gave: final metrics, the metrics at each evaluation, the final scatter plot and the cost."""

    name: str
    loss: str
    toolbox: str
    optimiser: str
    modes_covered: float
    num_modes: int
    high_quality: float
    mode_kl: float
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (G steps, modes covered, hq share)
    g_steps: int = 0
    d_steps: int = 0
    wall_s: float = 0.0
    scatter: Any = None  # 3 x H x W uint8 tensor
    run_dir: str = ""
    protocol: dict[str, Any] = field(default_factory=dict)  # the evaluation's settings (samples, 3 std, threshold)


def _merged(base: Any, delta: Any) -> Any:
    """``delta`` over ``base`` as ``--config base --config delta`` merges them: mappings key by key, anything else
    (values, lists) replaced."""
    if isinstance(base, dict) and isinstance(delta, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in delta.items()}}
    return delta


def lab_config(row: Path) -> dict[str, Any]:
    """A lab row's config as it runs: the base beside it (``base.yaml``) with the row's changes, as plain data."""
    import yaml

    row = Path(row)
    return _merged(yaml.safe_load((row.parent / BASE_NAME).read_text()), yaml.safe_load(row.read_text()) or {})


def lab_configs(config_dir: Path = CONFIG_DIR, only: str | None = None) -> list[Path]:
    """The lab's rows (those whose name contains ``only`` when given; every ``*.yaml`` but the base), by loss in the
    order of :data:`lightning_gans.losses.LOSSES`, then by name: each baseline comes before its toolbox variants."""
    from lightning_gans.losses import LOSSES

    def key(path: Path) -> tuple[int, str]:
        loss = lab_config(path)["model"]["init_args"].get("loss", "nonsaturating")
        return (LOSSES.index(loss) if loss in LOSSES else len(LOSSES), path.stem)

    paths = [p for p in Path(config_dir).glob("*.yaml") if p.name != BASE_NAME and (only is None or only in p.stem)]
    return sorted(paths, key=key)


def _defaults() -> dict[str, Any]:
    """The lab family's (GAN) argument defaults, with its toolbox group's fields alongside."""
    from lightning_gans.models import GAN

    params = inspect.signature(GAN.__init__).parameters
    defaults = {name: p.default for name, p in params.items() if p.default is not inspect.Parameter.empty}
    return {**defaults, **dataclasses.asdict(Toolbox())}


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe_options(hparams: dict[str, Any]) -> tuple[str, str]:
    """(toolbox options that differ from the base's defaults, optimiser settings) of a model's hyperparameters."""
    defaults = _defaults()
    hparams = {**hparams, **dataclasses.asdict(Toolbox.of(hparams.get("toolbox")))}  # the group's fields, flat
    value = lambda name: hparams.get(name, defaults.get(name))  # noqa: E731
    toolbox = []
    for name in TOOLBOX:
        v = value(name)
        if isinstance(v, list):
            v = tuple(v)
        if name in defaults and v != defaults[name]:
            toolbox.append(name if v is True else f"{name} {_fmt(v)}")
    betas = tuple(value("betas"))
    opt_g, opt_d, lr_g, lr_d = value("optimizer_g"), value("optimizer_d"), value("lr_g"), value("lr_d")
    opt = opt_g if opt_g == opt_d else f"{opt_g}/{opt_d}"
    lr = _fmt(lr_g) if lr_g == lr_d else f"G {_fmt(lr_g)}, D {_fmt(lr_d)}"
    return (", ".join(toolbox) or "none"), f"{opt} {lr}, betas ({_fmt(betas[0])}, {_fmt(betas[1])})"


def run_config(config: Path, runs_dir: Path, extra_args: list[str] = ()) -> LabResult:
    """Fit one lab row (on the base beside it) through the CLI in-process into ``runs_dir/<name>`` and collect its
    :class:`LabResult`."""
    name = Path(config).stem
    out = Path(runs_dir) / name
    configs = [Path(config).parent / BASE_NAME, config]
    run = fit(configs, out, ["--trainer.logger.init_args.save_dir", str(out), *extra_args], name=name)
    if run.history[-1][0] != run.g_steps:
        raise RuntimeError(
            f"{config}: no evaluation at the end of training; a lab config needs an EvaluationCallback "
            "and check_val_every_n_epoch dividing max_epochs"
        )
    toolbox, optimiser = describe_options(run.hparams)
    cb = run.evaluation
    return LabResult(
        name=name,
        loss=run.loss,
        toolbox=toolbox,
        optimiser=optimiser,
        modes_covered=run.final["modes_covered"],
        num_modes=len(run.mode_centers),
        high_quality=run.final["high_quality"],
        mode_kl=run.final["mode_kl"],
        history=[(g, m["modes_covered"], m["high_quality"]) for g, m in run.history],
        g_steps=run.g_steps,
        d_steps=run.d_steps,
        wall_s=run.wall_s,
        scatter=cb.last_scatter,
        run_dir=run.run_dir,
        protocol={
            "num_samples": cb.num_samples,
            "num_std": cb.mode_num_std,
            "threshold": cb.coverage_threshold,
            "seed": cb.seed,
            "use_ema": cb.use_ema,
            "scatter_points": cb.scatter_points,
        },
    )


# --------------------------------------------------------------------------------------------------- report


def markdown_table(results: list[LabResult]) -> str:
    """The results as a markdown table, one row per config.

    The history column gives, at each evaluation, the modes covered with the high-quality share in brackets: a
    count of covered modes means little while that share is near 0 (a few stray samples near centres).
    """
    evals = sorted({g for r in results for g, _, _ in r.history})
    when = (
        f" at {', '.join(f'{g:,}' for g in evals)} G steps"
        if all([g for g, _, _ in r.history] == evals for r in results)
        else " at each evaluation"
    )
    lines = [
        "| config | loss | toolbox options | optimiser | modes covered | high-quality share | mode KL "
        f"| modes (high-quality share){when} | G / D steps | wall time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        history = ", ".join(f"{int(m)} ({100 * hq:.0f}%)" for _, m, hq in r.history)
        if when == " at each evaluation":
            history += f" at {', '.join(f'{g:,}' for g, _, _ in r.history)} G steps"
        lines.append(
            f"| `{r.name}` | {r.loss} | {r.toolbox} | {r.optimiser} | {int(r.modes_covered)}/{r.num_modes} "
            f"| {100 * r.high_quality:.1f}% | {r.mode_kl:.3f} | {history} | {r.g_steps:,} / {r.d_steps:,} "
            f"| {r.wall_s:.0f} s |"
        )
    return "\n".join(lines)


def data_panel(config: Path, num_points: int = 2000) -> tuple[str, Any]:
    """A panel of the real data of ``config``'s datamodule (its settings, seed 0), drawn like the samples."""
    import torch

    from datamodules.mixtures import GaussianMixtureDataModule
    from lightning_gans.metrics.coverage import scatter_image

    settings = lab_config(config)["data"]["init_args"]
    dm = GaussianMixtureDataModule(
        kind=settings.get("kind", "ring8"), std=settings.get("std"), scale=settings.get("scale")
    )
    points, _ = dm.sample(num_points, torch.Generator().manual_seed(0))
    image = scatter_image(points, dm.mode_centers, 3.0 * dm.mode_std)
    return f"data ({dm.kind})\nreal points, 3-std circles", image


def write_report(
    results: list[LabResult],
    out_dir: Path,
    command: str,
    total_s: float,
    data: tuple[str, Any] | None = None,
    columns: int = 5,
) -> tuple[Path, Path]:
    """Write ``out_dir/mode_collapse.md`` (table between markers, other text kept) and ``mode_collapse.png``."""
    import lightning
    import torch

    from lightning_gans.callbacks.common import save_grid

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    panels = [data] if data is not None else []
    for r in results:
        if r.scatter is not None:
            title = (
                f"{r.name.removeprefix('ring8_')}\n"
                f"{int(r.modes_covered)}/{r.num_modes} modes, {100 * r.high_quality:.0f}% high quality"
            )
            panels.append((title, r.scatter))
    figure = out_dir / "mode_collapse.png"
    if panels:  # uint8 scatter plots, all of one size, each under its title
        save_grid(torch.stack([image for _, image in panels]), figure, columns, titles=[t for t, _ in panels])

    steps = sorted({r.g_steps for r in results})
    protocols = [dict(p) for p in dict.fromkeys(tuple(sorted(r.protocol.items())) for r in results)]
    if len(protocols) != 1:
        raise ValueError(f"the configs evaluate differently ({protocols}); one table needs one protocol")
    p = protocols[0]
    num_modes = results[0].num_modes
    ema_note = ", the EMA copy where there is one" if p["use_ema"] else ""
    generated = "\n".join(
        [
            BEGIN,
            "",
            f"Command: `{command}`. Total wall time {total_s / 60:.1f} min ({total_s:.0f} s) for {len(results)} "
            "configs, "
            f"one after another in one process on {torch.get_num_threads()} CPU thread(s) ({platform.machine()}, torch "
            f"{torch.__version__}, lightning {lightning.__version__}); wall times depend on the machine's load.",
            "",
            f"Protocol: every run is seeded (`seed_everything` and the data seed in its config) and trained for "
            f"{' / '.join(f'{s:,}' for s in steps)} generator steps. The config's EvaluationCallback then draws "
            f"{p['num_samples']:,} samples from G (eval mode{ema_note}, "
            f"seed {p['seed']}), assigns each to its nearest mode centre and counts it as *high quality* within "
            f"{p['num_std']:g} standard deviations of that centre. A mode is *covered* when it holds at least "
            f"{100 * p['threshold']:g}% of the high-quality samples a uniform share (1/{num_modes}) would give it, "
            "so with "
            'a high-quality share near 0 a handful of stray samples can "cover" modes: read the two columns together. '
            f"Mode KL: KL(nearest-mode histogram of all samples || uniform); 0 is uniform, log {num_modes} = "
            f"{math.log(num_modes):.2f} is a single mode.",
            "",
            markdown_table(results),
            "",
            f"![scatter plots of every config]({figure.name})",
            "",
            f"*Final samples of each config (blue; {p['scatter_points']:,} points), mode centres (red crosses) and "
            f"their {p['num_std']:g}-std circles (green); the first panel is the real data.*",
            "",
            END,
        ]
    )
    md = out_dir / "mode_collapse.md"
    if md.is_file() and BEGIN in md.read_text() and END in md.read_text():
        text = md.read_text()
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        md.write_text(head + generated + tail)
    else:
        md.write_text(
            "# Mode-collapse lab: losses and toolbox options on the 8-Gaussian ring\n\n"
            + generated
            + "\n\n## Observations\n\n(Not written yet.)\n"
        )
    return md, figure


def main(argv: list[str] | None = None) -> list[LabResult]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config-dir", type=Path, default=CONFIG_DIR, help="folder of the lab configs: base.yaml and the rows"
    )
    parser.add_argument("--only", default=None, help="run only the configs whose name contains this")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "lab", help="where the runs go")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where the table and figure go (default: docs/ for the whole lab, else --runs-dir)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (tiny MLPs: 1 is fastest)")
    parser.add_argument("--columns", type=int, default=5, help="panels per row in the figure")
    parser.add_argument("cli_args", nargs="*", help="after --: extra arguments for every run's CLI")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    configs = lab_configs(args.config_dir, args.only)
    if not configs:
        raise SystemExit(f"no configs in {args.config_dir}" + (f" matching {args.only!r}" if args.only else ""))
    out_dir = args.out_dir or (REPO / "docs" if args.only is None and not args.cli_args else args.runs_dir)
    results, start = [], time.perf_counter()
    for config in configs:
        print(f"[lab] {config.name} ...", flush=True)
        result = run_config(config, args.runs_dir, args.cli_args)
        print(
            f"[lab] {result.name}: {int(result.modes_covered)}/{result.num_modes} modes, "
            f"{100 * result.high_quality:.1f}% high quality, {result.wall_s:.0f} s",
            flush=True,
        )
        results.append(result)
    total = time.perf_counter() - start
    command = "OMP_NUM_THREADS=1 python benchmarks/mode_collapse_lab.py" + (f" {' '.join(argv)}" if argv else "")
    md, figure = write_report(results, out_dir, command, total, data_panel(configs[0]), args.columns)
    print(markdown_table(results))
    print(f"[lab] {len(results)} configs in {total:.0f} s; wrote {md} and {figure}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
