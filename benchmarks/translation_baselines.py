"""How low can a paired translation's validation L1 go? Do-nothing baselines next to trained checkpoints.

    python benchmarks/translation_baselines.py --crop_size 64 --load_size 72 \\
        --ckpt pix2pix=runs/pix2pix_facades/checkpoints/last.ckpt --ckpt l1_only=runs/l1_only/checkpoints/last.ckpt

On a paired dataset (default ``$LIGHTNING_GANS_DATA_DIR/facades``, labels -> photo) this prints, for the validation
split seen through the evaluation transform (resize to ``crop_size``, centre crop), the mean L1 in [-1, 1] of:

- ``input``: the input itself as the output (what the model must beat first);
- ``mean training photo`` and ``median training photo``: one constant image, the pixel-wise mean / median of the
  training targets (the best constant output under L2 / L1);
- every ``--ckpt NAME=PATH``: a Pix2Pix or GauGAN checkpoint translating the validation inputs the way its
  validation does (its ``generator_mode``), with PSNR and SSIM.

Train a Pix2Pix with ``--model.init_args.lambda_gan 0`` to add the paper's "L1" row: G trained on L1 alone, the
reference for how far the labels can bring L1 below the constant baselines (the GAN term trades some of it for
sharpness, by design). Measured figures on facades are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.paired import PairedImageDataModule  # noqa: E402


def constant_baselines(dm: PairedImageDataModule, split: str = "val") -> dict[str, float]:
    """Mean L1 of the input, the mean training target and the median training target against ``split``."""
    train = dm.evaluation_dataset("train")
    targets = torch.stack([train[i]["target"] for i in range(len(train))])
    constants = {"mean training photo": targets.mean(0), "median training photo": targets.median(0).values}
    sums, count = {"input": 0.0, **{name: 0.0 for name in constants}}, 0
    data = dm.evaluation_dataset(split)
    for i in range(len(data)):
        item = data[i]
        target = item["target"]
        if item["input"].shape == target.shape:
            sums["input"] += (item["input"] - target).abs().mean().item()
        for name, image in constants.items():
            sums[name] += (image - target).abs().mean().item()
        count += 1
    if data and data[0]["input"].shape != data[0]["target"].shape:
        del sums["input"]  # one-hot label maps are not images to compare with
    return {name: total / count for name, total in sums.items()}


@torch.no_grad()
def checkpoint_metrics(path: str, dm: PairedImageDataModule, split: str = "val", batch_size: int = 16
                       ) -> dict[str, float]:
    """L1, PSNR and SSIM of a Pix2Pix/GauGAN checkpoint on ``split``, as its validation computes them (its own
    ``translate``, so its ``generator_mode`` and EMA G, and the same :class:`TranslationMetrics`)."""
    from lightning_gans.image2image import TranslationMetrics
    from lightning_gans.models import GauGAN, Pix2Pix

    hparams = torch.load(path, map_location="cpu", weights_only=True).get("hyper_parameters", {})
    family = GauGAN if "GauGAN" in str(hparams.get("_class_path", "")) else Pix2Pix
    model = family.load_from_checkpoint(path, map_location="cpu")
    metrics = TranslationMetrics(compare_input=False)
    for batch in torch.utils.data.DataLoader(dm.evaluation_dataset(split), batch_size=batch_size):
        metrics.update(model.translate(batch["input"]), batch["target"])
    return {name: getattr(metrics, name).compute().item() for name in ("l1", "psnr", "ssim")}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.environ.get("LIGHTNING_GANS_DATA_DIR", "data")
    parser.add_argument("--data_dir", default=str(Path(root) / "facades"))
    parser.add_argument("--direction", default="BtoA")
    parser.add_argument("--crop_size", type=int, default=256)
    parser.add_argument("--load_size", type=int, default=None, help="default: crop_size * 1.125 (286 at 256)")
    parser.add_argument("--label_palette", default=None, help="'facades' for GauGAN checkpoints")
    parser.add_argument("--split", default="val")
    parser.add_argument("--ckpt", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args(argv)
    for spec in args.ckpt:
        if "=" not in spec or not Path(spec.split("=", 1)[1]).is_file():
            parser.error(f"--ckpt {spec!r}: give NAME=PATH with an existing checkpoint file")
    dm = PairedImageDataModule(data_dir=args.data_dir, direction=args.direction, crop_size=args.crop_size,
                               load_size=args.load_size or args.crop_size + args.crop_size // 8,
                               label_palette=args.label_palette)  # fmt: skip
    lines = [f"{args.data_dir} {args.direction}, {args.split} split at {args.crop_size}x{args.crop_size}",
             "", "| output | L1 | PSNR | SSIM |", "|---|---|---|---|"]  # fmt: skip
    for name, value in constant_baselines(dm, args.split).items():
        lines.append(f"| {name} | {value:.4f} | | |")
    for spec in args.ckpt:
        name, path = spec.split("=", 1)
        m = checkpoint_metrics(path, dm, args.split)
        lines.append(f"| {name} | {m['l1']:.4f} | {m['psnr']:.2f} | {m['ssim']:.3f} |")
    report = "\n".join(lines)
    print(report)
    return report


if __name__ == "__main__":
    main()
