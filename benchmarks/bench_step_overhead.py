"""Per-step overhead: milliseconds and host reads per batch when the networks cost almost nothing.

With tiny networks and small batches a training step is all overhead (Python, hooks, logging, host reads), which
is what a GPU run at 64x64 is close to: its kernels take a few milliseconds. Rows, each measured over the same
batches:

- ``plain loop``: DCGAN's tiny G and D, Adam, the non-saturating loss, one D and one G step per batch, in plain
  PyTorch;
- ``bare LightningModule``: the same step through a minimal Trainer (manual optimisation, ``toggled_optimizer``,
  two ``self.log`` calls per step; no logger, checkpoint or progress bar);
- each family of ``tests/families.py`` (tiny shapes) twice: through the same minimal Trainer (``module``), and with
  what ``lightning-gans fit`` adds: the CLI's default callbacks, a TensorBoard logger every 50 steps and the
  progress bar (``CLI defaults``).

Each round is one fresh process that runs every row in turn; ``--rounds`` rounds (at least 7), medians reported.
Host reads per batch (``lightning_gans.host_reads``) are counted in a separate, untimed pass, split into the
project's own and Lightning's; ``--profile`` adds Lightning's SimpleProfiler per-hook milliseconds per batch for the
DCGAN CLI row, so every millisecond is attributed.

    python benchmarks/bench_step_overhead.py                        # CPU, all families, 7 rounds
    python benchmarks/bench_step_overhead.py --families DCGAN WGANGP StyleGAN Pix2Pix --profile
    python benchmarks/bench_step_overhead.py --device cuda --families DCGAN WGANGP StyleGAN Pix2Pix
    python benchmarks/bench_step_overhead.py --device cuda --precision bf16-mixed --families DCGAN StyleGAN

On a GPU the read-count pass also runs the window under ``torch.cuda.set_sync_debug_mode("warn")`` and reports the
synchronisations CUDA itself saw per batch (``cuda_syncs``), with where they came from.

Targets: the DCGAN row with the CLI defaults within 1.5x of the bare LightningModule's milliseconds per batch
(overhead-bound), and no host read by the project's code between two logging steps.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._process import in_process  # noqa: E402
from benchmarks._references import bare_module, plain_step  # noqa: E402


def _quiet() -> None:
    import logging

    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _tiny_dcgan():
    from lightning_gans.models import DCGAN
    from tests.families import TINY

    return DCGAN(**TINY["DCGAN"].kwargs)


class _Window:
    """Times batches [warmup, warmup + steps) through on_train_batch_start (the first callback)."""

    def __init__(self, args, device: str) -> None:
        import lightning as L
        import torch

        window = self

        class Timer(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                if batch_idx in (args["warmup"], args["warmup"] + args["steps"]):
                    if device == "cuda":
                        torch.cuda.synchronize()
                    window.marks.append(time.perf_counter())

        self.marks: list[float] = []
        self.callback = Timer()

    @property
    def ms_per_batch(self) -> float:
        return (self.marks[1] - self.marks[0]) * 1000 / self.steps

    def with_steps(self, steps: int) -> _Window:
        self.steps = steps
        return self


def _trainer(args, callbacks, root: Path, cli: bool):
    import lightning as L
    from lightning.pytorch.loggers import TensorBoardLogger

    from lightning_gans.cli import default_callbacks

    common = dict(
        accelerator=args["device"],
        devices=1,
        max_epochs=1,
        precision=args["precision"],
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
    )
    if cli:
        return L.Trainer(
            callbacks=[*callbacks, *default_callbacks(root)],
            logger=TensorBoardLogger(root, name="logs"),
            log_every_n_steps=50,
            **common,
        )
    return L.Trainer(callbacks=callbacks, logger=False, enable_checkpointing=False, enable_progress_bar=False, **common)


def _plain_ms(args) -> float:
    import torch

    from tests.families import TINY

    torch.manual_seed(0)
    device = torch.device(args["device"])
    tiny = _tiny_dcgan()
    real = TINY["DCGAN"].batch()[0].to(device)
    update = plain_step(tiny, tiny.hparams.latent_dim, device, autocast=args["precision"] == "bf16-mixed")

    def step():
        update(real)

    for _ in range(args["warmup"]):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args["steps"]):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000 / args["steps"]


def _fit(args, model, batch, root: Path, cli: bool, extra_callbacks=(), profiler=None) -> _Window:
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    window = _Window(args, args["device"]).with_steps(args["steps"])
    trainer = _trainer(args, [window.callback, *extra_callbacks], root, cli)
    if profiler is not None:
        trainer.profiler = profiler
    n = args["warmup"] + args["steps"] + 1
    with contextlib.redirect_stdout(io.StringIO()):  # the progress bar (stdout, where the report goes)
        trainer.fit(model, DataLoader([batch] * n, batch_size=None))
    return window


def _rows(args):
    """(row name, make model, make batch, cli) for each row but the plain loop."""
    from lightning_gans.models import FAMILIES
    from tests.families import TINY

    def bare():
        tiny = _tiny_dcgan()
        return bare_module(tiny, latent_dim=tiny.hparams.latent_dim)

    rows = [("bare LightningModule", bare, lambda: TINY["DCGAN"].batch(), False)]
    for name in args["families"] or sorted(FAMILIES):
        spec, cls = TINY[name], FAMILIES[name]

        def make(cls=cls, spec=spec):
            return cls(**spec.kwargs)

        rows.append((f"{name}, module", make, spec.batch, False))
        rows.append((f"{name}, CLI defaults", make, spec.batch, True))
    return rows


def run_round(args, queue) -> None:
    """One process: every row once, timed."""
    import tempfile

    import torch

    _quiet()
    sys.path.insert(0, str(ROOT))
    if args["threads"]:
        torch.set_num_threads(args["threads"])
    out = {"plain loop": _plain_ms(args)}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, make, batch, cli) in enumerate(_rows(args)):
            torch.manual_seed(0)
            window = _fit(args, make(), batch(), Path(tmp) / str(i), cli)
            out[name] = window.ms_per_batch
    queue.put(out)


def count_reads(args, queue) -> None:
    """One process, untimed: host reads per batch of each row, over the same window."""
    import tempfile

    import lightning as L
    import torch

    from lightning_gans.host_reads import count_host_reads

    _quiet()
    sys.path.insert(0, str(ROOT))
    out, cuda = {}, args["device"] == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, make, batch, cli) in enumerate(_rows(args)):
            with count_host_reads(active=False) as reads:

                class Gate(L.Callback):
                    def on_train_batch_start(self, trainer, pl_module, b, batch_idx):
                        on = batch_idx == args["warmup"]
                        if on or batch_idx == args["warmup"] + args["steps"]:
                            reads.active = on
                            if cuda:
                                torch.cuda.set_sync_debug_mode("warn" if on else "default")

                torch.manual_seed(0)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    _fit(args, make(), batch(), Path(tmp) / str(i), cli, extra_callbacks=[Gate()])
            steps = args["steps"]
            syncs = [w for w in caught if "synchroniz" in str(w.message)]
            out[name] = {
                "project": reads.total_project / steps,
                "all": reads.total / steps,
                "host_only": sum(reads.host.values()) / steps,
                "sites": [f"{site} ({count / steps:.2f}/batch)" for site, count in reads.by_site(6)],
            }
            if cuda:
                out[name]["cuda_syncs"] = len(syncs) / steps
                out[name]["cuda_sync_sites"] = sorted({f"{w.filename}:{w.lineno}" for w in syncs})[:6]
    queue.put(out)


def profile_dcgan(args, queue) -> None:
    """SimpleProfiler's milliseconds per batch for each hook of the DCGAN row with the CLI defaults."""
    import tempfile

    from lightning.pytorch.profilers import SimpleProfiler

    _quiet()
    sys.path.insert(0, str(ROOT))
    from lightning_gans.models import DCGAN
    from tests.families import TINY

    profiler = SimpleProfiler()
    with tempfile.TemporaryDirectory() as tmp:
        _fit(args, DCGAN(**TINY["DCGAN"].kwargs), TINY["DCGAN"].batch(), Path(tmp), True, profiler=profiler)
    batches = args["warmup"] + args["steps"] + 1
    per_batch = {
        action: 1000 * sum(durations) / batches
        for action, durations in profiler.recorded_durations.items()
        if len(durations) >= batches - 1 and "run_training_batch" not in action and "_Window" not in action
    }
    queue.put(dict(sorted(per_batch.items(), key=lambda kv: -kv[1])[:14]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--families", nargs="*", default=None, help="rows to run (default: every family)")
    parser.add_argument("--steps", type=int, default=100, help="timed batches per row")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    parser.add_argument("--profile", action="store_true", help="per-hook milliseconds of the DCGAN CLI row")
    parser.add_argument("--no-reads", action="store_true", help="skip the host-read count")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = vars(parser.parse_args())
    os.environ.setdefault("WANDB_MODE", "disabled")

    rounds = [in_process(run_round, args) for _ in range(args["rounds"])]
    names = list(rounds[0])
    median = {name: statistics.median(r[name] for r in rounds) for name in names}
    import lightning
    import torch

    bare = median["bare LightningModule"]
    plain = median["plain loop"]
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {mp.cpu_count()} cores"
        + (f", {torch.cuda.get_device_name()}" if args["device"] == "cuda" else ""),
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, lightning {lightning.__version__}",
        "config": {k: args[k] for k in ("device", "precision", "steps", "warmup", "rounds", "threads")},
        "ms_per_batch": {name: round(v, 3) for name, v in median.items()},
        "ratio_over_bare": {name: round(v / bare, 3) for name, v in median.items()},
        "overhead_ms_over_plain": {name: round(v - plain, 3) for name, v in median.items()},
        "all_rounds": {name: [round(r[name], 3) for r in rounds] for name in names},
    }
    if not args["no_reads"]:
        report["host_reads_per_batch"] = in_process(count_reads, args)
    if args["profile"]:
        report["dcgan_cli_hooks_ms_per_batch"] = {k: round(v, 3) for k, v in in_process(profile_dcgan, args).items()}
    text = json.dumps(report, indent=2)
    print(text)
    if args["json"]:
        args["json"].write_text(text)


if __name__ == "__main__":
    main()
