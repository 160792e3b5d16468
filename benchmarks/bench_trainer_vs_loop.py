"""Throughput of the same DCGAN trained through the Lightning Trainer and as a plain PyTorch loop.

Same networks, batch, optimizers, losses and in-memory data; one D and one G step per batch in both. Each path
runs in its own process (so peak memory is its own), alternating A/B/A/B for ``--rounds`` rounds so that load
from other processes hits both alike; the medians and their ratio are printed.

    python benchmarks/bench_trainer_vs_loop.py                    # CPU, 28x28 MNIST-sized data
    python benchmarks/bench_trainer_vs_loop.py --device cuda --precision bf16-mixed --image-size 64
    python benchmarks/bench_trainer_vs_loop.py --cli-defaults     # the Trainer as `lightning-gans fit` builds it

``--bare`` trains a bare LightningModule instead of the ``DCGAN`` family (the same networks, optimizers, losses and
step, two ``self.log`` calls per batch, nothing of this project's base), to tell Lightning's share of the gap from
this project's. ``--cli-defaults`` gives the Trainer path what ``lightning-gans fit`` adds: the CLI's default
callbacks, a TensorBoard logger every 50 steps and the progress bar (written to a string). Target: the Trainer path
at >= 0.97 of the plain loop's images/s (median of at least 7 rounds).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._process import in_process  # noqa: E402
from benchmarks._references import bare_module, plain_step  # noqa: E402


def _setup(args):
    import torch

    from lightning_gans.models import DCGAN

    torch.manual_seed(0)
    if args["threads"]:
        torch.set_num_threads(args["threads"])
    shape = (args["channels"], args["image_size"], args["image_size"])
    model = DCGAN(image_shape=shape, latent_dim=100, g_channels=64, d_channels=64)
    n = args["batch_size"] * (args["steps"] + args["warmup"] + 1)  # the Trainer's timer stops as the last begins
    data = torch.rand(n, *shape) * 2 - 1
    return model, data


def _peak_memory_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_plain(args, queue) -> None:
    import torch

    model, data = _setup(args)
    device = torch.device(args["device"])
    step = plain_step(model, 100, device, autocast=args["precision"] == "bf16-mixed")
    data = data.to(device)
    bs = args["batch_size"]

    for i in range(args["warmup"]):
        step(data[i * bs : (i + 1) * bs])
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(args["warmup"], args["warmup"] + args["steps"]):
        step(data[i * bs : (i + 1) * bs])
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    queue.put({"images_per_s": args["steps"] * bs / elapsed, "peak_mb": _peak_memory_mb(device.type)})


def run_trainer(args, queue) -> None:
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    model, data = _setup(args)
    if args["bare"]:
        model = bare_module(model, latent_dim=100)
    bs = args["batch_size"]

    class Timer(L.Callback):
        # From the start of batch `warmup` to the start of batch `warmup + steps`: each timed batch with all its
        # hooks and logging, and not the epoch-end checkpoint.
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx in (args["warmup"], args["warmup"] + args["steps"]):
                if args["device"] == "cuda":
                    torch.cuda.synchronize()
                now = time.perf_counter()
                if batch_idx == args["warmup"]:
                    self.start = now
                else:
                    self.elapsed = now - self.start

    timer = Timer()
    common = dict(accelerator=args["device"], devices=1, precision=args["precision"], max_epochs=1)
    loader = DataLoader(TensorDataset(data, torch.zeros(len(data), dtype=torch.long)), batch_size=bs, shuffle=False)
    if args["cli_defaults"]:
        import contextlib
        import io
        import tempfile

        from lightning.pytorch.loggers import TensorBoardLogger

        from lightning_gans.cli import default_callbacks

        # the progress bar writes to stdout, where the report goes
        with tempfile.TemporaryDirectory() as root, contextlib.redirect_stdout(io.StringIO()):
            trainer = L.Trainer(
                callbacks=[timer, *default_callbacks(root)],
                logger=TensorBoardLogger(root, name="logs"),
                log_every_n_steps=50,
                enable_model_summary=False,
                default_root_dir=root,
                **common,
            )
            trainer.fit(model, loader)
    else:
        trainer = L.Trainer(
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[timer],
            log_every_n_steps=50,
            **common,
        )
        trainer.fit(model, loader)
    queue.put({"images_per_s": args["steps"] * bs / timer.elapsed, "peak_mb": _peak_memory_mb(args["device"])})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cli-defaults", action="store_true", help="the Trainer with lightning-gans fit's callbacks")
    parser.add_argument("--bare", action="store_true", help="a bare LightningModule in place of the DCGAN family")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = vars(parser.parse_args())

    plain, trainer = [], []
    for _ in range(args["rounds"]):
        plain.append(in_process(run_plain, args))
        trainer.append(in_process(run_trainer, args))
    p = statistics.median(r["images_per_s"] for r in plain)
    t = statistics.median(r["images_per_s"] for r in trainer)
    import lightning
    import torch

    report = {
        "machine": f"{platform.processor() or platform.machine()}, {mp.cpu_count()} cores"
        + (f", {torch.cuda.get_device_name()}" if args["device"] == "cuda" else ""),
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, lightning {lightning.__version__}",
        "config": {
            k: args[k]
            for k in ("device", "precision", "image_size", "batch_size", "steps", "rounds", "cli_defaults", "bare")
        },
        "plain_images_per_s": round(p, 1),
        "trainer_images_per_s": round(t, 1),
        "ratio_trainer_over_plain": round(t / p, 3),
        # the median of each round's own ratio: robust to the machine's speed drifting between rounds
        "ratio_paired_median": round(
            statistics.median(b["images_per_s"] / a["images_per_s"] for a, b in zip(plain, trainer)), 3
        ),
        "plain_peak_mb": round(max(r["peak_mb"] for r in plain), 1),
        "trainer_peak_mb": round(max(r["peak_mb"] for r in trainer), 1),
        "all_rounds": {
            "plain": [round(r["images_per_s"], 1) for r in plain],
            "trainer": [round(r["images_per_s"], 1) for r in trainer],
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
