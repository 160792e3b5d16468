"""How low can a paired translation's validation L1 go? Do-nothing baselines next to trained checkpoints.

    python benchmarks/translation_baselines.py --crop_size 64 --load_size 72 --extractor inception_local \\
        --ckpt pix2pix=runs/pix2pix_facades/checkpoints/last.ckpt --ckpt l1_only=runs/l1_only/checkpoints/last.ckpt

On a paired dataset (default ``$LIGHTNING_GANS_DATA_DIR/facades``, labels -> photo) this prints, for the validation
split seen through the evaluation transform (resize to ``crop_size``, centre crop), L1 in [-1, 1], PSNR and SSIM (as
validation logs them) and, with ``--extractor``, KID against the validation photos, of:

- ``input``: the input itself as the output (what the model must beat first);
- ``mean training photo`` and ``median training photo``: one constant image, the pixel-wise mean / median of the
  training targets (the best constant output under L2 / L1);
- every ``--ckpt NAME=PATH``: a Pix2Pix or GauGAN checkpoint translating the validation inputs the way its
  validation does (its ``generator_mode``).

Train a Pix2Pix with ``--model.init_args.lambda_gan 0`` to add the paper's "L1" row: G trained on L1 alone, the
reference for how far the labels can bring L1 below the constant baselines (the GAN term trades some of it for
sharpness, by design). KID puts the rows on a second axis, closeness to the distribution of real photos, where
constant outputs do badly. KID, not FID: 100 validation photos are far fewer than Inception's 2048 features, which
FID needs (EvaluationCallback refuses it), while KID is unbiased at small counts. Measured figures on facades are in
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.paired import PairedImageDataModule  # noqa: E402


def load_split(dm: PairedImageDataModule, split: str) -> tuple[Tensor, Tensor]:
    """All (inputs, targets) of ``split`` through the evaluation transform, as two tensors."""
    data = dm.evaluation_dataset(split)
    items = [data[i] for i in range(len(data))]
    return torch.stack([it["input"] for it in items]), torch.stack([it["target"] for it in items])


def constant_outputs(dm: PairedImageDataModule, inputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
    """The do-nothing outputs: the input itself (when it is an image like the target), and the pixel-wise mean and
    median of the training targets (the best constant image under L2 and under L1) repeated for every input."""
    _, train_targets = load_split(dm, "train")
    n = len(targets)
    outputs = {"input": inputs} if inputs.shape == targets.shape else {}
    outputs["mean training photo"] = train_targets.mean(0).expand(n, -1, -1, -1).contiguous()
    outputs["median training photo"] = train_targets.median(0).values.expand(n, -1, -1, -1).contiguous()
    return outputs


@torch.no_grad()
def checkpoint_outputs(path: str, inputs: Tensor, batch_size: int = 16) -> Tensor:
    """A Pix2Pix/GauGAN checkpoint's outputs for ``inputs``, made as its validation makes them (its own
    ``translate``: its ``generator_mode``, its EMA G when it has one)."""
    from lightning_gans.loading import load_trained

    model, _ = load_trained(path, families=("Pix2Pix", "GauGAN"))
    return torch.cat([model.translate(chunk) for chunk in inputs.split(batch_size)])


@torch.no_grad()
def score(outputs: Tensor, targets: Tensor, evaluator: Any = None) -> dict[str, float]:
    """L1 (in [-1, 1]), PSNR and SSIM as validation logs them (:class:`TranslationMetrics`), plus KID against the
    targets when an ``evaluator`` (GenerativeMetrics with the real features loaded) is given."""
    from lightning_gans.image2image import TranslationMetrics

    metrics = TranslationMetrics(compare_input=False)
    for out, tgt in zip(outputs.split(32), targets.split(32)):
        metrics.update(out, tgt)
    result = {name: getattr(metrics, name).compute().item() for name in ("l1", "psnr", "ssim")}
    if evaluator is not None:
        evaluator.reset_fake()
        for chunk in outputs.split(32):
            evaluator.update_fake_images(chunk)
        values = evaluator.compute()
        result["kid"] = float(values["kid"])
    return result


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
    parser.add_argument("--extractor", default=None, help="add KID with this extractor (inception_local...)")
    args = parser.parse_args(argv)
    for spec in args.ckpt:
        if "=" not in spec or not Path(spec.split("=", 1)[1]).is_file():
            parser.error(f"--ckpt {spec!r}: give NAME=PATH with an existing checkpoint file")
    dm = PairedImageDataModule(
        data_dir=args.data_dir,
        direction=args.direction,
        crop_size=args.crop_size,
        load_size=args.load_size or args.crop_size + args.crop_size // 8,
        label_palette=args.label_palette,
    )
    inputs, targets = load_split(dm, args.split)
    rows = constant_outputs(dm, inputs, targets)
    for spec in args.ckpt:
        name, path = spec.split("=", 1)
        rows[name] = checkpoint_outputs(path, inputs)

    evaluator = None
    if args.extractor:
        from lightning_gans.metrics.evaluator import GenerativeMetrics
        from lightning_gans.metrics.extractors import build_extractor

        extractor = build_extractor(args.extractor)
        if args.extractor == "identity":  # raw pixels (for tests): the feature size is the image size
            extractor.num_features = targets[0].numel()
        evaluator = GenerativeMetrics(extractor, ["kid"], kid_subset_size=min(1000, len(targets)))
        for chunk in targets.split(32):
            evaluator.update_real_images(chunk)
    extra = f" | KID ({args.extractor})" if evaluator else ""
    lines = [
        f"{args.data_dir} {args.direction}, {args.split} split ({len(targets)} pairs) at "
        f"{args.crop_size}x{args.crop_size}",
        "",
        f"| output | L1 | PSNR | SSIM{extra} |",
        "|---" * (5 if evaluator else 4) + "|",
    ]
    for name, outputs in rows.items():
        m = score(outputs, targets, evaluator)
        cells = f"| {name} | {m['l1']:.4f} | {m['psnr']:.2f} | {m['ssim']:.3f}"
        if evaluator:
            cells += f" | {m['kid']:.4f}"
        lines.append(cells + " |")
    report = "\n".join(lines)
    print(report)
    return report


if __name__ == "__main__":
    main()
