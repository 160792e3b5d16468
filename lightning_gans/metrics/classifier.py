"""Train the MNIST classifier behind the ``"mnist_classifier"`` extractor (:mod:`.mnist_classifier`).

Train it once (about 2-3 minutes per epoch on one CPU core)::

    python -m lightning_gans.metrics.classifier --data_dir /path/to/data \
        --out ~/.cache/lightning_gans/mnist_classifier.pt

``--data_dir`` is the folder that holds ``MNIST/raw`` (the four idx files, gzipped or not; unset: the
``$LIGHTNING_GANS_DATA_DIR`` / ``data/`` convention of :mod:`datamodules.base`); ``--out`` defaults to
``$LIGHTNING_GANS_CACHE/mnist_classifier.pt`` or ``~/.cache/lightning_gans/mnist_classifier.pt``, which is where the
``"mnist_classifier"`` extractor looks. The command prints and stores the test accuracy (3 epochs: >= 99.3%).

**Unsure of what is no digit.** A classifier trained on digits alone is confidently wrong on images far from any
digit: the first one called uniform noise an "8" with probability 1.0, so an early generator's grey or noisy
samples counted as a covered class. Training now adds Outlier Exposure (Hendrycks et al. 2019, "Deep Anomaly
Detection with Outlier Exposure"): each batch also holds ``outlier_fraction`` non-digit images (uniform grey
levels, uniform and Gaussian noise, smooth random blobs, digits with their pixels shuffled), trained towards the
uniform distribution with weight ``outlier_weight`` (0.5, as the paper), so the classifier is unsure of them
(maximum softmax well below 0.5) while keeping its accuracy; class coverage counts only confident predictions.

This module runs as ``__main__``, so nothing in the package imports it at import time (``lightning_gans.metrics``
reaches :func:`train_classifier` lazily): were it imported first, ``python -m`` would warn that it is imported twice.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gans.metrics.mnist_classifier import CHECKPOINT_FORMAT, MNISTClassifier, default_classifier_path

# -------------------------------------------------------------------------------------------------------- the data


def _find_raw(root: Path) -> Path:
    for folder in (root / "MNIST" / "raw", root / "raw", root):
        if any((folder / f"train-images-idx3-ubyte{ext}").is_file() for ext in ("", ".gz")):
            return folder
    raise FileNotFoundError(
        f"MNIST not found under '{root}': expected MNIST/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte[.gz]. "
        "Point --data_dir at the folder that holds MNIST/ (or set $LIGHTNING_GANS_DATA_DIR)."
    )


def read_mnist(data_dir: str | os.PathLike | None = None, train: bool = True) -> tuple[Tensor, Tensor]:
    """MNIST as ``(uint8 images [N, 28, 28], int64 labels [N])`` straight from the idx files (gzipped or not).

    Reads a read-only, gzip-only folder too (torchvision's ``MNIST`` wants the unzipped files next to the archives).
    """
    from datamodules.base import resolve_data_dir
    from datamodules.mnist import read_idx

    raw = _find_raw(resolve_data_dir(data_dir))
    prefix = "train" if train else "t10k"
    out = []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{prefix}-{kind}-ubyte"
        path = raw / name if (raw / name).is_file() else raw / f"{name}.gz"
        out.append(read_idx(path))
    return out[0], out[1].long()


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 [N, 28, 28] -> float [N, 1, 28, 28] in [-1, 1] (the project's convention)."""
    return images.float().div(127.5).sub(1).unsqueeze(1)


def _random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by up to ``max_shift`` pixels (zero padding is -1, the background)."""
    n, _, h, w = x.shape
    padded = F.pad(x, [max_shift] * 4, value=-1.0)
    oy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (oy[:, None] + torch.arange(h))[:, :, None]
    cols = (ox[:, None] + torch.arange(w))[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


def non_digits(n: int, generator: torch.Generator, digits: Tensor | None = None) -> Tensor:
    """``n`` images in [-1, 1], [n, 1, 28, 28], that look like no digit: uniform grey levels, uniform noise, Gaussian
    noise, smooth random blobs and (with ``digits``, float [m, 1, 28, 28]) digits with their pixels shuffled (a
    digit's ink without its shape); the kinds in turn."""
    kinds = []
    for i in range(n):
        kind = i % (5 if digits is not None else 4)
        if kind == 0:
            x = torch.full((1, 28, 28), float(torch.rand((), generator=generator) * 2 - 1))
        elif kind == 1:
            x = torch.rand(1, 28, 28, generator=generator) * 2 - 1
        elif kind == 2:
            x = (torch.randn(1, 28, 28, generator=generator) * float(torch.rand((), generator=generator))).clamp(-1, 1)
        elif kind == 3:
            size = int(torch.randint(2, 8, (), generator=generator))
            low = torch.randn(1, 1, size, size, generator=generator)
            x = torch.tanh(2 * F.interpolate(low, size=28, mode="bilinear", align_corners=False))[0]
        else:
            digit = digits[int(torch.randint(len(digits), (), generator=generator))].flatten()
            x = digit[torch.randperm(digit.numel(), generator=generator)].view(1, 28, 28)
        kinds.append(x)
    return torch.stack(kinds)


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on uint8 images."""
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        _, logits = model(to_unit_range(images[i : i + batch_size]))
        correct += int((logits.argmax(1) == labels[i : i + batch_size]).sum())
    return correct / max(1, len(images))


def train_classifier(
    data_dir: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    *,
    epochs: float = 3.0,
    batch_size: int = 128,
    lr: float = 3e-3,
    max_train_samples: int | None = None,
    max_test_samples: int | None = None,
    seed: int = 0,
    outlier_fraction: float = 0.25,
    outlier_weight: float = 0.5,
    verbose: bool = True,
) -> dict:
    """Train :class:`MNISTClassifier` on the MNIST train split, test it, save it to ``out`` and return the record.

    ``epochs`` may be fractional (a quick classifier for tests). Adam with a one-cycle schedule, random shifts of up
    to 2 pixels, and Outlier Exposure (see the module docstring; ``outlier_fraction`` 0 turns it off). The saved
    file holds the weights, the architecture, the test accuracy, the confidence on non-digits and the settings.
    """
    out = Path(out).expanduser() if out is not None else default_classifier_path()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train_x, train_y = read_mnist(data_dir, train=True)
    test_x, test_y = read_mnist(data_dir, train=False)
    if max_train_samples:
        train_x, train_y = train_x[:max_train_samples], train_y[:max_train_samples]
    if max_test_samples:
        test_x, test_y = test_x[:max_test_samples], test_y[:max_test_samples]

    model = MNISTClassifier()
    steps_per_epoch = math.ceil(len(train_x) / batch_size)
    total_steps = max(1, round(epochs * steps_per_epoch))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.15)
    start = time.time()
    step = 0
    model.train()
    while step < total_steps:
        order = torch.randperm(len(train_x), generator=gen)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x = _random_shift(to_unit_range(train_x[idx]), 2, gen)
            n_out = round(outlier_fraction * len(idx))
            if n_out:
                x = torch.cat([x, non_digits(n_out, gen, x)])
            _, logits = model(x)
            loss = F.cross_entropy(logits[: len(idx)], train_y[idx])
            if n_out:  # cross-entropy to the uniform distribution: unsure of what is no digit
                loss = loss - outlier_weight * logits[len(idx) :].log_softmax(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if verbose and (step % 100 == 0 or step == total_steps):
                print(f"step {step}/{total_steps}  loss {loss.item():.4f}  {time.time() - start:.0f}s", flush=True)
            if step >= total_steps:
                break
    train_seconds = time.time() - start
    accuracy = evaluate_accuracy(model, test_x, test_y)
    with torch.no_grad():
        probe = non_digits(500, torch.Generator().manual_seed(seed + 1), to_unit_range(test_x[:100]))
        non_digit_confidence = float(model(probe)[1].softmax(dim=1).max(dim=1).values.mean())
    record = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config,
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "test_accuracy": accuracy,
        "test_samples": len(test_x),
        "non_digit_confidence": non_digit_confidence,
        "train": {
            "epochs": float(epochs),
            "steps": total_steps,
            "batch_size": batch_size,
            "lr": lr,
            "train_samples": len(train_x),
            "seed": seed,
            "seconds": round(train_seconds, 1),
            "outlier_fraction": outlier_fraction,
            "outlier_weight": outlier_weight,
        },
        "input": "1x28x28 in [-1, 1]",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    torch.save(record, tmp)
    os.replace(tmp, out)
    if verbose:
        print(
            f"test accuracy {accuracy:.4%} on {len(test_x)} test images; mean confidence on non-digits "
            f"{non_digit_confidence:.3f}; trained {train_seconds:.0f}s; saved {out}"
        )
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lightning_gans.metrics.classifier",
        description="Train the MNIST classifier used by the 'mnist_classifier' feature extractor.",
    )
    parser.add_argument("--data_dir", default=None, help="folder holding MNIST/raw (default: $LIGHTNING_GANS_DATA_DIR)")
    parser.add_argument("--out", default=None, help=f"checkpoint path (default: {default_classifier_path()})")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--max_train_samples", type=int, default=None, help="train on the first N digits only")
    parser.add_argument("--max_test_samples", type=int, default=None, help="test on the first N digits only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--outlier_fraction", type=float, default=0.25, help="non-digit images per digit (0: off)")
    parser.add_argument("--outlier_weight", type=float, default=0.5, help="weight of their uniform-target loss")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_classifier(
        args.data_dir,
        args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_train_samples=args.max_train_samples,
        max_test_samples=args.max_test_samples,
        seed=args.seed,
        outlier_fraction=args.outlier_fraction,
        outlier_weight=args.outlier_weight,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
