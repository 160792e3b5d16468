"""FID, KID, Inception Score, precision/recall and class coverage from one pass of one feature extractor.

The metrics (names as logged, without the ``val/`` prefix):

- ``fid`` -- Fréchet Inception Distance (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a
  Local Nash Equilibrium", NeurIPS 2017): ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` of Gaussians fitted
  to real and generated features. Lower is better. Biased by the sample count (smaller sets give larger FIDs) and
  sensitive to the resize: the usual protocol is 10,000 or 50,000 generated samples against the full real split,
  Inception pool3 features, TF1 bilinear resize to 299x299. Always report the count and the resize with the number
  (e.g. "FID 12.3, 10k samples vs 10k test images, Inception 2015-12-05, tf1 resize").
- ``kid``, ``kid_std`` -- Kernel Inception Distance (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018): unbiased
  MMD^2 with the cubic polynomial kernel, averaged over ``kid_subsets`` random subsets of ``kid_subset_size``
  (100 x 1000 by default, shrunk to the sample count when smaller). Unbiased, so usable at small counts.
- ``is``, ``is_std`` -- Inception Score (Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016):
  ``exp E_x KL(p(y|x) || p(y))`` over ``is_splits`` splits (10). Needs class logits: torchmetrics' Inception
  (1008 ``logits_unbiased``; the reference protocol is 50,000 samples) or the MNIST classifier (an IS analogue in
  [1, 10]). Features-only extractors (``inception_local``) cannot give it.
- ``precision``, ``recall`` -- Kynkäänniemi et al. 2019, k = 3 (:mod:`lightning_gans.metrics.precision_recall`).
- ``classes_covered``, ``class_kl`` -- class coverage from the extractor's logits (:mod:`.coverage`).

FID, KID and IS are torchmetrics' own ``FrechetInceptionDistance``, ``KernelInceptionDistance`` and
``InceptionScore`` objects, given an identity "feature network" so that the extractor runs once per image and its
features feed all metrics. Their states synchronise across processes in ``compute`` (torchmetrics' sync), so under
DDP each process updates with its own samples and every process gets the full-data result. Real features are kept
through :meth:`GenerativeMetrics.reset_fake` (they are computed once per run, or loaded from the disk cache).

KID and IS draw random subsets/permutations: ``compute`` sorts the gathered features into a canonical order (by a
fixed random projection) and runs them under a fixed seed (``seed``), so the same features give the same number on
every process, in every evaluation, whatever the number of processes or the order in which the samples arrived.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities import dim_zero_cat

from lightning_gans.metrics.coverage import ClassCoverage
from lightning_gans.metrics.extractors import FeatureExtractor, feature_dim_hint
from lightning_gans.metrics.precision_recall import PrecisionRecall

FEATURE_METRICS = ("fid", "kid", "is", "precision_recall", "class_coverage")
LOGIT_METRICS = ("is", "class_coverage")
DEFAULT_METRICS = ("fid", "kid", "is", "precision_recall", "class_coverage")


def canonical_order(x: Tensor) -> Tensor:
    """Rows of ``x`` sorted by a fixed random projection: the same set of rows gives the same tensor."""
    if len(x) < 2:
        return x
    w = torch.randn(x.shape[1], generator=torch.Generator().manual_seed(20170612), dtype=torch.float64)
    return x[torch.argsort(x.double() @ w.to(x.device), stable=True)]


class _OrderFreeKID(KernelInceptionDistance):
    """torchmetrics' KID, its random subsets drawn from features in canonical order (see module docstring)."""

    def compute(self) -> tuple[Tensor, Tensor]:  # runs after torchmetrics' sync; the local states come back after
        self.real_features = [canonical_order(dim_zero_cat(self.real_features))]
        self.fake_features = [canonical_order(dim_zero_cat(self.fake_features))]
        return super().compute()


class _OrderFreeIS(InceptionScore):
    """torchmetrics' Inception Score, its random splits drawn from logits in canonical order."""

    def compute(self) -> tuple[Tensor, Tensor]:
        self.features = [canonical_order(dim_zero_cat(self.features))]
        return super().compute()


class _Features(nn.Module):
    """The identity, posing as torchmetrics' feature network (``num_features`` spares it a dummy forward)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def check_metrics(metrics: Iterable[str], extractor_name: str, num_classes: int) -> tuple[str, ...]:
    """Validate metric names against an extractor; the error says how to fix the configuration."""
    metrics = tuple(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in FEATURE_METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; feature metrics are {list(FEATURE_METRICS)}.")
    needs_logits = [m for m in metrics if m in LOGIT_METRICS]
    if needs_logits and num_classes == 0:
        names = {"is": "Inception Score", "class_coverage": "class coverage"}
        raise ValueError(
            f"{', '.join(names[m] for m in needs_logits)} need(s) class logits, but extractor {extractor_name!r} gives "
            "features only (the local TorchScript Inception has no classification layer). Remove "
            f"{needs_logits} from `metrics`, or choose an extractor with logits: 'inception' (torchmetrics' "
            "Inception; downloads its weights once) or 'mnist_classifier' (the project's MNIST classifier)."
        )
    return metrics


def check_sample_count(what: str, count: int, num_features: int, extractor_name: str) -> None:
    """FID needs more samples than feature dimensions (else the covariance is singular); say so, with the fix."""
    if count < num_features:
        raise ValueError(
            f"{what}={count} is below the feature dimension {num_features} of extractor {extractor_name!r}: FID's "
            f"covariance would be singular and the number meaningless. Use {feature_dim_hint(num_features)} "
            "samples, drop 'fid' from `metrics` (KID is unbiased at small counts), or use a smaller extractor "
            "('mnist_classifier' has 128 features)."
        )


def _global_sum(values: Sequence[int], device: torch.device) -> list[int]:
    t = torch.tensor(list(values), dtype=torch.long, device=device)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return [int(v) for v in t.tolist()]


class GenerativeMetrics(nn.Module):
    """Feature-based metrics of generated against real images; see the module docstring.

    Args:
        extractor: a :class:`~lightning_gans.metrics.extractors.FeatureExtractor` (its ``num_features`` set).
        metrics: any of ``"fid"``, ``"kid"``, ``"is"``, ``"precision_recall"``, ``"class_coverage"``.
        kid_subsets, kid_subset_size: KID's subset count and size (size shrinks to the sample count).
        is_splits: Inception Score splits.
        pr_k: the k of precision/recall.
        coverage_threshold: see :class:`~lightning_gans.metrics.coverage.ClassCoverage`.
        seed: seed for KID's subsets and IS's permutation.

    Use: ``update_real(features, logits)`` (or ``update_real_images``), ``update_fake...``, ``compute()`` -> dict
    of scalar tensors, ``reset_fake()`` between evaluations.
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        metrics: Iterable[str] = DEFAULT_METRICS,
        *,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        pr_k: int = 3,
        coverage_threshold: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.metrics = check_metrics(metrics, extractor.name, extractor.num_classes)
        if not extractor.num_features:
            raise ValueError(f"extractor {extractor.name!r} has no num_features set")
        self.extractor = extractor
        self.kid_subset_size = kid_subset_size
        self.seed = seed
        d, k = extractor.num_features, extractor.num_classes
        self.num_real = 0  # this process's counts; compute() sums them over processes
        self.num_fake = 0
        wanted = set(self.metrics)
        with warnings.catch_warnings():  # "will save all extracted features in buffer": yes, by design
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            self.fid = None
            if "fid" in wanted:
                self.fid = FrechetInceptionDistance(feature=_Features(d), reset_real_features=False)
            self.kid = None
            if "kid" in wanted:
                self.kid = _OrderFreeKID(
                    feature=_Features(d), subsets=kid_subsets, subset_size=kid_subset_size, reset_real_features=False
                )
            self.inception_score = _OrderFreeIS(feature=_Features(k), splits=is_splits) if "is" in wanted else None
        self.precision_recall = PrecisionRecall(k=pr_k) if "precision_recall" in wanted else None
        self.class_coverage = ClassCoverage(k, threshold=coverage_threshold) if "class_coverage" in wanted else None

    # ------------------------------------------------------------------------------------------------------ update

    @property
    def num_features(self) -> int:
        return self.extractor.num_features

    @torch.no_grad()
    def features(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """Run the extractor on images in [-1, 1] (on the metrics' device)."""
        return self.extractor(images.to(self._device()))

    def _device(self) -> torch.device:
        for metric in (self.fid, self.kid, self.inception_score, self.precision_recall, self.class_coverage):
            if metric is not None:
                return metric.device
        return torch.device("cpu")

    @torch.no_grad()
    def update_real(self, features: Tensor, logits: Tensor | None = None) -> None:
        """Add real features (and logits, for class coverage)."""
        self._update(features, logits, real=True)
        self.num_real += int(features.shape[0])

    @torch.no_grad()
    def update_fake(self, features: Tensor, logits: Tensor | None = None) -> None:
        """Add generated features (and logits, for IS and class coverage)."""
        self._update(features, logits, real=False)
        self.num_fake += int(features.shape[0])

    def update_real_images(self, images: Tensor) -> None:
        self.update_real(*self.features(images))

    def update_fake_images(self, images: Tensor) -> None:
        self.update_fake(*self.features(images))

    def _update(self, features: Tensor, logits: Tensor | None, real: bool) -> None:
        if not torch.isfinite(features).all():  # FID's matrix square root can crash the process on NaN/inf
            what = "real images" if real else "generated samples"
            raise FloatingPointError(
                f"the features of the {what} contain NaN or inf, so no metric can be computed from them. "
                + (
                    "Check the validation data."
                    if real
                    else "The generator's weights are probably not finite: "
                    "a diverged run; evaluate an earlier checkpoint."
                )
            )
        device = self._device()
        features = features.to(device)
        if self.fid is not None:
            self.fid.update(features.double(), real=real)  # float64 in, float64 FID out
        if self.kid is not None:
            self.kid.update(features.float(), real=real)
        if self.precision_recall is not None:
            self.precision_recall.update(features, real=real)
        if logits is None:
            if (self.class_coverage is not None) or (self.inception_score is not None and not real):
                raise ValueError("IS and class coverage need logits; pass the extractor's logits")
            return
        logits = logits.to(device).float()
        if self.class_coverage is not None:
            self.class_coverage.update(logits, real=real)
        if self.inception_score is not None and not real:
            self.inception_score.update(logits)

    # ----------------------------------------------------------------------------------------------------- compute

    def _collapse_lists(self) -> None:
        """One tensor per list state on every process, so torchmetrics' gather runs the same calls everywhere
        (a process with no real features holds an empty ``0 x D`` tensor, not an empty list)."""
        d, k = self.extractor.num_features, self.extractor.num_classes
        device = self._device()
        pairs = []
        if self.kid is not None:
            pairs += [(self.kid, "real_features", d), (self.kid, "fake_features", d)]
        if self.precision_recall is not None:
            pairs += [(self.precision_recall, "real_features", d), (self.precision_recall, "fake_features", d)]
        if self.inception_score is not None:
            pairs += [(self.inception_score, "features", k)]
        for metric, name, width in pairs:
            items = getattr(metric, name)
            merged = torch.cat(items) if items else torch.zeros(0, width, device=device)
            setattr(metric, name, [merged])
            metric._computed = None

    def global_counts(self) -> tuple[int, int]:
        """Real and generated sample counts summed over processes."""
        real, fake = _global_sum([self.num_real, self.num_fake], self._device())
        return real, fake

    def compute(self) -> dict[str, Tensor]:
        """All requested metrics as scalar tensors (synchronised over processes; collective under DDP)."""
        n_real, n_fake = self.global_counts()
        needs_real = any(m in self.metrics for m in ("fid", "kid", "precision_recall"))
        if n_fake < 2 or (needs_real and n_real < 2):
            raise RuntimeError(f"need at least 2 real and 2 generated samples, got {n_real} and {n_fake}")
        self._collapse_lists()
        out: dict[str, Tensor] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if self.fid is not None:
                out["fid"] = self.fid.compute()
            if self.kid is not None:
                self.kid.subset_size = max(2, min(self.kid_subset_size, n_real, n_fake))
                out["kid"], out["kid_std"] = self.kid.compute()
            if self.inception_score is not None:
                out["is"], out["is_std"] = self.inception_score.compute()
        if self.precision_recall is not None:
            out.update(self.precision_recall.compute())
        if self.class_coverage is not None:
            out.update(self.class_coverage.compute())
        return {k: v.detach() for k, v in out.items()}

    # ------------------------------------------------------------------------------------------------------- reset

    def reset_fake(self) -> None:
        """Forget the generated samples; keep the real ones."""
        for metric in (self.fid, self.kid, self.inception_score, self.precision_recall, self.class_coverage):
            if metric is not None:
                metric.reset()
        self.num_fake = 0

    def reset_real(self) -> None:
        """Forget everything, real features included."""
        for metric in (self.fid, self.kid, self.precision_recall, self.class_coverage):
            if metric is not None:
                metric.reset_real_features = True
                metric.reset()
                metric.reset_real_features = False
        if self.inception_score is not None:
            self.inception_score.reset()
        self.num_real = 0
        self.num_fake = 0
