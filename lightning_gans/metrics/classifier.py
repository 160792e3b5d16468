"""A small MNIST classifier that makes FID, an IS analogue and class coverage cheap to compute on a CPU.

Inception at 299x299 costs ~6 GFLOPs an image; this CNN costs ~6 MFLOPs, so 10,000 samples take seconds. Its
penultimate layer (128 features, before the ReLU) gives an "MNIST FID" in the manner of FID (same formula, other
features: the numbers are not comparable with Inception FIDs or with other papers' domain classifiers), its 10 logits
give an Inception-Score analogue (between 1 and 10) and the histogram of predicted digits gives class coverage.

Train it once (about 2-3 minutes per epoch on one CPU core)::

    python -m lightning_gans.metrics.classifier --data_dir /path/to/data \
        --out ~/.cache/lightning_gans/mnist_classifier.pt

``--data_dir`` is the folder that holds ``MNIST/raw`` (the four idx files, gzipped or not; unset: the
``$LIGHTNING_GANS_DATA_DIR`` / ``data/`` convention of :mod:`datamodules.base`); ``--out`` defaults to
``$LIGHTNING_GANS_CACHE/mnist_classifier.pt`` or ``~/.cache/lightning_gans/mnist_classifier.pt``, which is where the
``"mnist_classifier"`` extractor looks. The command prints and stores the test accuracy (3 epochs: >= 99.3%).

Input convention: images in [-1, 1], 1 x 28 x 28; the extractor quantises to 8 bits, averages RGB to grey and
resizes other sizes to 28x28 (bilinear, antialiased).
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

from lightning_gans.metrics.cache import default_cache_dir, file_digest
from lightning_gans.metrics.extractors import ExtractorError, FeatureExtractor, quantize_to_255

CHECKPOINT_FORMAT = "lightning_gans.mnist_classifier/1"
DEFAULT_FILE = "mnist_classifier.pt"
TRAIN_COMMAND = "python -m lightning_gans.metrics.classifier --data_dir DATA_DIR --out {out}"


#: The classifier this project trained with TRAIN_COMMAND (99.43% test accuracy), shipped so evaluation works
#: offline and in CI without a training step; a checkpoint in the cache folder takes precedence.
BUNDLED_PATH = Path(__file__).resolve().parent / "weights" / DEFAULT_FILE


def default_classifier_path() -> Path:
    """``$LIGHTNING_GANS_CACHE/mnist_classifier.pt`` (else ``~/.cache/lightning_gans/...``) when it exists, else the
    classifier shipped with the package."""
    cached = default_cache_dir() / DEFAULT_FILE
    return cached if cached.is_file() or not BUNDLED_PATH.is_file() else BUNDLED_PATH


def resolve_classifier_path(path: str | os.PathLike | None = None) -> Path:
    """The classifier checkpoint to use, or an :class:`ExtractorError` that gives the command to train one."""
    p = Path(path).expanduser() if path is not None else default_classifier_path()
    if not p.is_file():
        raise ExtractorError(
            f"MNIST classifier checkpoint '{p}' does not exist. Train it once (a few minutes on a CPU) with\n"
            f"    {TRAIN_COMMAND.format(out=p)}\n"
            "or point `extractor_path` at an existing checkpoint (default location: $LIGHTNING_GANS_CACHE or "
            "~/.cache/lightning_gans)."
        )
    return p


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


# --------------------------------------------------------------------------------------------------------- the net


class MNISTClassifier(nn.Module):
    """Three 3x3 conv blocks (BN, ReLU, 2x2 max-pool: 28 -> 14 -> 7 -> 3), a 128-wide layer, a 10-way head.

    ``forward`` returns ``(features, logits)``; features are the 128 pre-activation outputs of the penultimate layer.
    """

    def __init__(self, channels: tuple[int, int, int] = (32, 64, 64), num_features: int = 128, num_classes: int = 10):
        super().__init__()
        c1, c2, c3 = channels
        self.config = {"channels": list(channels), "num_features": num_features, "num_classes": num_classes}

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

        self.body = nn.Sequential(
            *block(1, c1), *block(c1, c2), *block(c2, c3), nn.Flatten(), nn.Linear(c3 * 9, num_features)
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(num_features, num_classes))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.body(x)
        return feats, self.head(feats)


def _random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by up to ``max_shift`` pixels (zero padding is -1, the background)."""
    n, _, h, w = x.shape
    padded = F.pad(x, [max_shift] * 4, value=-1.0)
    oy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (oy[:, None] + torch.arange(h))[:, :, None]
    cols = (ox[:, None] + torch.arange(w))[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


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
    verbose: bool = True,
) -> dict:
    """Train :class:`MNISTClassifier` on the MNIST train split, test it, save it to ``out`` and return the record.

    ``epochs`` may be fractional (a quick classifier for tests). Adam with a one-cycle schedule, random shifts of up
    to 2 pixels. The saved file holds the weights, the architecture, the test accuracy and the training settings.
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
            _, logits = model(x)
            loss = F.cross_entropy(logits, train_y[idx])
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
    record = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config,
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "test_accuracy": accuracy,
        "test_samples": len(test_x),
        "train": {
            "epochs": float(epochs),
            "steps": total_steps,
            "batch_size": batch_size,
            "lr": lr,
            "train_samples": len(train_x),
            "seed": seed,
            "seconds": round(train_seconds, 1),
        },
        "input": "1x28x28 in [-1, 1]",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    torch.save(record, tmp)
    os.replace(tmp, out)
    if verbose:
        print(f"test accuracy {accuracy:.4%} on {len(test_x)} test images; trained {train_seconds:.0f}s; saved {out}")
    return record


def load_classifier(path: str | os.PathLike | None = None) -> tuple[MNISTClassifier, dict]:
    """The trained classifier (eval mode) and its record (accuracy, training settings)."""
    p = resolve_classifier_path(path)
    record = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise ExtractorError(f"'{p}' is not an MNIST classifier checkpoint of lightning-gans ({CHECKPOINT_FORMAT}).")
    cfg = record["config"]
    model = MNISTClassifier(tuple(cfg["channels"]), cfg["num_features"], cfg["num_classes"])
    model.load_state_dict(record["state_dict"])
    model.eval().requires_grad_(False)
    return model, record


class ClassifierExtractor(FeatureExtractor):
    """Extractor ``"mnist_classifier"``: 128 penultimate features and 10 logits of :class:`MNISTClassifier`.

    Conversion: [-1, 1] -> 8-bit levels (as if saved to PNG) -> grey (channel mean) -> 28x28 (bilinear, antialiased,
    only when the size differs) -> [-1, 1].
    """

    name = "mnist_classifier"

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.path = resolve_classifier_path(path)
        self.net, self.record = load_classifier(self.path)
        self.num_features = self.net.config["num_features"]
        self.num_classes = self.net.config["num_classes"]

    @property
    def test_accuracy(self) -> float:
        return float(self.record.get("test_accuracy", float("nan")))

    def cache_id(self) -> dict:
        return {"name": self.name, "sha1": file_digest(self.path), "quantize": 8, "size": 28}

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"mnist_classifier expects N x 1|3 x H x W images, got shape {tuple(x.shape)}")
        x = quantize_to_255(x) / 127.5 - 1
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        if tuple(x.shape[-2:]) != (28, 28):
            x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False, antialias=True)
        return self.net(x)


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
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
