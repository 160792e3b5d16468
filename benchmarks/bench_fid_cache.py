"""What the real-feature cache saves: the same evaluation twice, the first computing the real features, the second
loading them from disk.

    python benchmarks/bench_fid_cache.py --data_dir /path/to/data                      # MNIST classifier features
    python benchmarks/bench_fid_cache.py --data_dir ... --extractor inception_local --num_real 2100 --num_samples 2100

Each run is ``trainer.validate`` of an untrained DCGAN on the MNIST validation split (5,000 digits held out of the
training set) with a fresh :class:`~lightning_gans.callbacks.evaluation.EvaluationCallback`, both runs sharing one
temporary cache folder. Printed: the time spent on the real images (extraction, or loading the cache entry), the
whole evaluation, and the ratios. The generated half is recomputed in both runs (it changes with every
checkpoint), so the whole-evaluation ratio is at most (real + generated) / generated.

Measured on the project's 2-core CPU machine (shared, OMP_NUM_THREADS=1): see the module's ``RESULTS`` below.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = """
2-core CPU machine shared by several jobs (load average ~7, so absolute times are inflated), OMP_NUM_THREADS=1,
untrained DCGAN, MNIST validation split:

extractor         metrics                real  generated  real features (s)    whole evaluation (s)
                                                          1st     2nd (cache)  1st     2nd    ratio
mnist_classifier  fid,kid,precision_recall  5000  10000      4.94   0.02      30.04   21.63   1.39x
inception_local   kid,precision_recall       300    300    232.83   0.00     392.54  121.79   3.22x

With Inception the real half is ~60% of a cold evaluation here (more with the usual 10k-50k real images and a GPU
for the generator); with the MNIST classifier features are cheap and the cache saves a few seconds.
"""


def build_callback(cache_dir: str, args: argparse.Namespace):
    from lightning_gans.callbacks.evaluation import EvaluationCallback

    class Timed(EvaluationCallback):
        """The callback with stopwatches around the real-image work."""

        real_seconds = 0.0

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            finish = self.real.finish  # gathering, metric update and the cache write happen here
            self.real.finish = lambda *a, **k: self._timed(finish, *a, **k)

        def _timed(self, fn, *a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.real_seconds += time.perf_counter() - start

        def on_validation_epoch_start(self, trainer, pl_module):  # cache lookup and load happen here
            self._timed(super().on_validation_epoch_start, trainer, pl_module)

        def on_validation_batch_end(self, *a, **k):  # real feature extraction happens here
            self._timed(super().on_validation_batch_end, *a, **k)

    metrics = args.metrics.split(",")
    return Timed(
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        feature_extractor={"name": args.extractor, "path": args.extractor_path},
        metrics=metrics,
        num_real_samples=args.num_real,
        real_cache={"dir": cache_dir},
    )


def evaluate_once(cache_dir: str, args: argparse.Namespace) -> tuple[float, float, dict, object]:
    import lightning as L

    from datamodules.mnist import MNISTDataModule
    from lightning_gans.models import DCGAN

    torch.manual_seed(0)
    model = DCGAN(image_shape=(1, 28, 28), latent_dim=64)
    dm = MNISTDataModule(data_dir=args.data_dir, download=False, batch_size=args.batch_size)
    cb = build_callback(cache_dir, args)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[cb],
    )
    start = time.perf_counter()
    results = trainer.validate(model, datamodule=dm, verbose=False)[0]
    return time.perf_counter() - start, cb.real_seconds, results, cb


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default=os.environ.get("LIGHTNING_GANS_DATA_DIR"))
    parser.add_argument("--extractor", default="mnist_classifier")
    parser.add_argument("--extractor_path", default=None)
    parser.add_argument("--metrics", default="fid,kid,precision_recall")
    parser.add_argument("--num_samples", type=int, default=10_000, help="generated samples per evaluation")
    parser.add_argument("--num_real", type=int, default=None, help="real images (default: the 5,000 val digits)")
    parser.add_argument("--batch_size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no_warmup", action="store_true", help="skip the small untimed run that loads everything")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    if not args.no_warmup:  # imports, first-call overheads and the dataset read would otherwise bill the 1st run
        with tempfile.TemporaryDirectory() as cache_dir:
            small = argparse.Namespace(**{**vars(args), "num_samples": 64, "num_real": 64, "metrics": "kid"})
            evaluate_once(cache_dir, small)
    with tempfile.TemporaryDirectory() as cache_dir:
        cold_total, cold_real, cold_res, cold_cb = evaluate_once(cache_dir, args)
        warm_total, warm_real, warm_res, warm_cb = evaluate_once(cache_dir, args)
    assert cold_cb.cache_saves == 1 and warm_cb.cache_hits == 1 and warm_cb.real_images_extracted == 0

    print(
        f"extractor={args.extractor} metrics={args.metrics} real={cold_cb.num_real} generated={args.num_samples} "
        f"batch={args.batch_size} threads={torch.get_num_threads()}"
    )
    print(f"{'':22s}{'1st (cold)':>12s}{'2nd (cache)':>13s}{'ratio':>9s}")
    print(f"{'real features (s)':22s}{cold_real:12.3f}{warm_real:13.3f}{cold_real / max(warm_real, 1e-3):8.0f}x")
    print(f"{'whole evaluation (s)':22s}{cold_total:12.2f}{warm_total:13.2f}{cold_total / warm_total:8.2f}x")
    print(f"{'time saved (s)':22s}{cold_total - warm_total:12.2f}")
    key = next(k for k in ("val/fid", "val/kid", "val/precision") if k in cold_res)
    print(f"{key}: {cold_res[key]:.4f} (cold) vs {warm_res[key]:.4f} (cache): the same real features")


if __name__ == "__main__":
    main()
