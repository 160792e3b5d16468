"""Folder datamodule against the same data streamed from LitData chunks: images/s of a training epoch, decoding
included, for 0, 1 and 2 loader workers, and the size of each on disk.

Both read CelebA faces through ``CelebADataModule`` (the same crop, resize and targets): one from the image folder
(JPEG files read one by one), one from ``lightning-gans optimize`` chunks of the same files (``streaming_dir``). Each
measurement runs in its own process, alternating folder/streaming for ``--rounds`` rounds; medians are reported.

    python benchmarks/bench_streaming.py --data_dir /path/to/celeba_small --image_folder img_align_celeba_89x109
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._process import in_process  # noqa: E402


def _datamodule(args: dict, streaming_dir: str | None = None):
    from datamodules import CelebADataModule

    return CelebADataModule(
        data_dir=args["data_dir"],
        image_folder=args["image_folder"],
        partition_file=None,
        val_fraction=0.0,
        image_size=args["image_size"],
        batch_size=args["batch_size"],
        num_workers=args["workers"],
        streaming_dir=streaming_dir,
    )


def run_epoch(args: dict, queue) -> None:
    """One training epoch of the folder or streamed loader (in a fresh process): images/s."""
    import torch

    torch.manual_seed(0)
    dm = _datamodule(args, args["streaming_dir"])
    dm.setup("fit")
    loader = dm.train_dataloader()
    images, start = 0, time.perf_counter()
    for batch in loader:
        images += len(batch[0])
        if images >= args["max_images"]:
            break
    queue.put({"images": images, "images_per_s": images / (time.perf_counter() - start)})


def _size_mb(path: Path, pattern: str = "*") -> float:
    return sum(f.stat().st_size for f in path.rglob(pattern) if f.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="the CelebA folder (e.g. ../shared/data/celeba_small)")
    parser.add_argument("--image_folder", default="img_align_celeba")
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max_images", type=int, default=10_000, help="images per measurement (at most an epoch)")
    parser.add_argument("--chunks", default=None, help="an existing optimize output (default: written to a temp dir)")
    args = vars(parser.parse_args())

    from datamodules.streaming import optimize

    tmp = tempfile.TemporaryDirectory()
    chunks = args["chunks"] or str(Path(tmp.name) / "chunks")
    report: dict = {
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
        "config": {k: v for k, v in args.items() if k != "chunks"},
    }
    if args["chunks"] is None:
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # LitData's progress, away from the JSON report
            optimize(_datamodule(args | {"workers": 0}), chunks, splits=("train", "val"), num_workers=2)
        report["optimize_s"] = round(time.perf_counter() - start, 1)
    folder = Path(args["data_dir"]) / args["image_folder"]
    report["folder_mb"] = round(_size_mb(folder), 1)
    report["folder_files"] = sum(1 for f in folder.iterdir() if f.is_file())
    report["chunks_mb"] = round(_size_mb(Path(chunks)), 1)
    report["chunk_files"] = sum(1 for _ in Path(chunks).rglob("*.bin"))
    results = {}
    for workers in args["workers"]:
        runs: dict[str, list[float]] = {"folder": [], "streaming": []}
        for _ in range(args["rounds"]):
            for name, streaming_dir in (("folder", None), ("streaming", chunks)):
                out = in_process(run_epoch, args | {"workers": workers, "streaming_dir": streaming_dir})
                runs[name].append(out["images_per_s"])
        folder_ips, streaming_ips = statistics.median(runs["folder"]), statistics.median(runs["streaming"])
        results[f"workers={workers}"] = {
            "folder_images_per_s": round(folder_ips, 1),
            "streaming_images_per_s": round(streaming_ips, 1),
            "ratio_streaming_over_folder": round(streaming_ips / folder_ips, 3),
            "all_rounds": {k: [round(v, 1) for v in vs] for k, vs in runs.items()},
        }
    report["results"] = results
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
