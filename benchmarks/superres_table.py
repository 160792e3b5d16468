"""Super-resolution against interpolation: PSNR/SSIM (Y and RGB) and KID on a config's validation split.

    python benchmarks/superres_table.py --config configs/srresnet_celeba.yaml \\
        --ckpt SRResNet=runs/srresnet_celeba/checkpoints/last.ckpt \\
        --ckpt SRGAN=runs/srgan_celeba/checkpoints/last.ckpt \\
        --out docs/superres_celeba.md --figure docs/superres_celeba.png

The validation pairs come from the datamodule of ``--config`` (its ``data.init_args``, e.g. CelebA's 2,500 held-out
faces at 64x64 with 16x16 LR inputs), seen exactly as validation sees them. Rows: nearest-neighbour and bicubic
upscaling (MATLAB's kernel, the SR literature's baseline) and every ``--ckpt NAME=PATH`` (any SRResNet, SRGAN or
ESRGAN checkpoint; its EMA generator when it has one, eval mode, as its validation runs it). Columns, with the SR
literature's convention (:func:`lightning_gans.metrics.superres.sr_scores`: 8-bit images, ``scale`` pixels cropped
at each border): PSNR and SSIM on the BT.601 Y channel, then on RGB, over all validation images; KID (x 1000,
mean +- std over subsets) of the outputs against the HR images through the offline Inception
(``--extractor inception_local``) on the first ``--kid_images`` (KID, not FID: it is unbiased at these counts).

``--out`` writes the table as Markdown, ``--figure`` a PNG with one row per face: LR (enlarged, nearest) | bicubic |
each checkpoint | HR, under a header naming the columns. On one CPU thread Inception takes ~0.17 s per image: with
``--kid_images 1000`` and two checkpoints, about 15 minutes; PSNR/SSIM alone (``--extractor none``) take seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.superres import SuperResolutionDataModule  # noqa: E402
from lightning_gans.callbacks.common import save_grid  # noqa: E402
from lightning_gans.loading import load_trained  # noqa: E402
from lightning_gans.metrics.superres import sr_scores  # noqa: E402
from lightning_gans.superres import interpolated  # noqa: E402


def datamodule_from_config(config: str, data_dir: str | None = None) -> SuperResolutionDataModule:
    """The config's SuperResolutionDataModule (its ``data.init_args``), optionally at another ``data_dir``."""
    data = yaml.safe_load(Path(config).read_text())["data"]
    if not data["class_path"].endswith("SuperResolutionDataModule"):
        raise SystemExit(f"{config}: its data is {data['class_path']}, not a SuperResolutionDataModule")
    kwargs = dict(data.get("init_args") or {})
    for key in ("num_workers", "pin_memory", "batch_size"):
        kwargs.pop(key, None)
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    return SuperResolutionDataModule(**kwargs)


def validation_pairs(dm: SuperResolutionDataModule, limit: int | None = None) -> tuple[Tensor, Tensor, list[str]]:
    """(LR, HR, names) of the validation split as tensors, the first ``limit`` of them."""
    dm.setup("validate")
    data = dm.datasets["val"]
    items = [data[i] for i in range(len(data) if limit is None else min(limit, len(data)))]
    lr, hr = torch.stack([it["input"] for it in items]), torch.stack([it["target"] for it in items])
    return lr, hr, [it["name"] for it in items]


@torch.no_grad()
def checkpoint_outputs(path: str, lr: Tensor, batch_size: int = 64) -> tuple[Tensor, str]:
    """The SR outputs of a checkpoint for ``lr`` (its own ``translate``: EMA G, eval mode), and its family."""
    model, info = load_trained(path, families=("SRResNet", "SRGAN", "ESRGAN"))
    return torch.cat([model.translate(chunk) for chunk in lr.split(batch_size)]), info.family


def kid(evaluator: Any, outputs: Tensor, batch_size: int = 50) -> tuple[float, float]:
    """KID (mean, std over subsets) of ``outputs`` against the real features already in ``evaluator``."""
    evaluator.reset_fake()
    for chunk in outputs.split(batch_size):
        evaluator.update_fake_images(chunk)
    values = evaluator.compute()
    return float(values["kid"]), float(values["kid_std"])


def figure(rows: dict[str, Tensor], lr: Tensor, hr: Tensor, scale: int, n: int, path: Path) -> None:
    """One row per image: LR (nearest) | bicubic | each output | HR, with a header naming the columns."""
    columns = {
        "LR (nearest)": interpolated(lr[:n], scale, "nearest"),
        **{k: v[:n] for k, v in rows.items() if k != "nearest"},
        "HR": hr[:n],
    }
    tiles = torch.stack([torch.stack([col[i] for col in columns.values()]) for i in range(min(n, len(lr)))])
    save_grid(tiles.flatten(0, 1), path, nrow=len(columns), titles=list(columns))  # titles over the first row


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/srresnet_celeba.yaml", help="the validation split of its data")
    parser.add_argument("--data_dir", default=os.environ.get("LIGHTNING_GANS_DATA_DIR"), help="overrides the config's")
    parser.add_argument("--ckpt", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--baselines", default="nearest,bicubic", help="interpolation rows, comma-separated")
    parser.add_argument("--num_images", type=int, default=None, help="validation images for PSNR/SSIM (default all)")
    parser.add_argument("--extractor", default="inception_local", help="KID features, or 'none' for no KID")
    parser.add_argument("--kid_images", type=int, default=1000, help="the first N validation images for KID")
    parser.add_argument("--kid_subset_size", type=int, default=500)
    parser.add_argument("--out", default=None, help="write the Markdown table here")
    parser.add_argument("--figure", default=None, help="write LR | bicubic | checkpoints | HR rows here (PNG)")
    parser.add_argument("--figure_images", type=int, default=6)
    args = parser.parse_args(argv)
    for spec in args.ckpt:
        if "=" not in spec or not Path(spec.split("=", 1)[1]).is_file():
            parser.error(f"--ckpt {spec!r}: give NAME=PATH with an existing checkpoint file")
    torch.manual_seed(0)
    dm = datamodule_from_config(args.config, args.data_dir)
    lr, hr, _ = validation_pairs(dm, args.num_images)
    baselines = [b for b in args.baselines.split(",") if b]
    rows: dict[str, Tensor] = {mode: interpolated(lr, dm.scale, mode) for mode in baselines}
    families: dict[str, str] = {}
    for spec in args.ckpt:
        name, path = spec.split("=", 1)
        rows[name], families[name] = checkpoint_outputs(path, lr)

    evaluator, n_kid = None, min(args.kid_images, len(hr))
    if args.extractor != "none":
        from lightning_gans.metrics.evaluator import GenerativeMetrics
        from lightning_gans.metrics.extractors import build_extractor

        extractor = build_extractor(args.extractor)
        if args.extractor == "identity":  # raw pixels (for tests): the feature size is the image size
            extractor.num_features = hr[0].numel()
        evaluator = GenerativeMetrics(extractor, ["kid"], kid_subset_size=min(args.kid_subset_size, n_kid))
        for chunk in hr[:n_kid].split(50):
            evaluator.update_real_images(chunk)

    extra = f" | KID x 1000 ({args.extractor}, {n_kid} images)" if evaluator else ""
    lines = [
        f"{args.config}: validation split, {len(hr)} images, x{dm.scale} ({lr.shape[-1]}x{lr.shape[-2]} -> "
        f"{hr.shape[-1]}x{hr.shape[-2]}); PSNR/SSIM on 8-bit images with {dm.scale} border pixels cropped",
        "",
        f"| output | PSNR-Y (dB) | SSIM-Y | PSNR RGB (dB) | SSIM RGB{extra} |",
        "|---" * (6 if evaluator else 5) + "|",
    ]
    for name, outputs in rows.items():
        start = time.perf_counter()
        scores = {k: v.mean().item() for k, v in sr_scores(outputs, hr, dm.scale).items()}
        label = f"{name} ({families[name]})" if name in families and families[name] != name else name
        cells = (
            f"| {label} | {scores['psnr_y']:.2f} | {scores['ssim_y']:.4f} | {scores['psnr']:.2f} | {scores['ssim']:.4f}"
        )
        if evaluator is not None:
            mean, std = kid(evaluator, outputs[:n_kid])
            cells += f" | {1000 * mean:.2f} +- {1000 * std:.2f}"
        lines.append(cells + " |")
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report + "\n")
    if args.figure:
        figure(rows, lr, hr, dm.scale, args.figure_images, Path(args.figure))
    return report


if __name__ == "__main__":
    main()
