"""The metrics against their formulas: FID vs scipy, IS bounds, precision/recall, coverage, cache, early errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from lightning_gans.callbacks.evaluation import EvaluationCallback
from lightning_gans.metrics import (
    ClassCoverage,
    ExtractorError,
    GenerativeMetrics,
    IdentityExtractor,
    MixtureModes,
    RealFeatureCache,
    cache_key,
    knn_precision_recall,
    ring8_centers,
    scatter_image,
)
from lightning_gans.metrics.extractors import FeatureExtractor


class LogitExtractor(FeatureExtractor):
    """Features = the input, logits = the input too (for IS/coverage tests fed at feature level)."""

    name = "stub_logits"

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.num_features, self.num_classes = num_features, num_classes

    def extract(self, x):
        x = x.reshape(len(x), -1)
        return x[:, : self.num_features], x[:, : self.num_classes]


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID written out independently: numpy means/covariances and scipy.linalg.sqrtm."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean[0] if isinstance(covmean, tuple) else covmean
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean.real))


def correlated(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / math.sqrt(d)
    return (torch.randn(n, d, generator=g) @ mix) * scale + shift


@pytest.mark.parametrize("shift,scale", [(0.0, 1.0), (0.3, 1.5), (2.0, 0.5)])
def test_fid_equals_scipy_sqrtm_on_the_same_features(shift, scale):
    d = 64
    real, fake = correlated(700, d, 0), correlated(500, d, 1, shift, scale)
    ev = GenerativeMetrics(IdentityExtractor(d), ["fid"])
    for chunk in real.split(128):
        ev.update_real(chunk)
    for chunk in fake.split(100):
        ev.update_fake(chunk)
    ours = float(ev.compute()["fid"])
    ref = scipy_fid(real.double().numpy(), fake.double().numpy())
    assert ours == pytest.approx(ref, abs=1e-3)


def test_fid_of_two_halves_is_small_and_of_noise_is_large():
    # 2-D mixture points as "real data", identity features: the same distribution vs uniform noise.
    from datamodules.mixtures import GaussianMixtureDataModule

    points, _ = GaussianMixtureDataModule("grid25").sample(4000, torch.Generator().manual_seed(0))
    ev = GenerativeMetrics(IdentityExtractor(2), ["fid", "kid"], kid_subset_size=500)
    ev.update_real(points[:2000])
    ev.update_fake(points[2000:])
    halves = ev.compute()
    ev.reset_fake()
    ev.update_fake(torch.rand(2000, 2, generator=torch.Generator().manual_seed(1)) * 0.4 - 0.2)
    noise = ev.compute()
    assert halves["fid"] < 0.01
    assert noise["fid"] > 100 * halves["fid"] and noise["fid"] > 0.1
    assert abs(halves["kid"]) < 0.01 < noise["kid"]


@pytest.mark.filterwarnings("ignore:.*degrees of freedom")  # one split: no spread
def test_inception_score_uniform_is_one_confident_balanced_is_k():
    k, n = 10, 1000
    ev = GenerativeMetrics(LogitExtractor(4, k), ["is"], is_splits=1)
    ev.update_fake(torch.zeros(n, 4), torch.zeros(n, k))  # uniform p(y|x)
    assert float(ev.compute()["is"]) == pytest.approx(1.0, abs=1e-5)
    ev.reset_fake()
    confident = torch.full((n, k), -50.0)
    confident[torch.arange(n), torch.arange(n) % k] = 50.0  # one class per sample, every class equally often
    ev.update_fake(torch.zeros(n, 4), confident)
    assert float(ev.compute()["is"]) == pytest.approx(k, rel=1e-4)


@pytest.mark.filterwarnings("ignore:.*degrees of freedom")
def test_inception_score_single_class_collapse_is_one():
    ev = GenerativeMetrics(LogitExtractor(4, 5), ["is"], is_splits=1)
    logits = torch.full((200, 5), -30.0)
    logits[:, 2] = 30.0
    ev.update_fake(torch.zeros(200, 4), logits)
    assert float(ev.compute()["is"]) == pytest.approx(1.0, abs=1e-4)


def brute_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    from scipy.spatial.distance import cdist

    def radii(x):
        return np.sort(cdist(x, x), axis=1)[:, k]

    precision = (cdist(fake, real) <= radii(real)[None]).any(1).mean()
    recall = (cdist(real, fake) <= radii(fake)[None]).any(1).mean()
    return float(precision), float(recall)


def test_precision_recall_matches_brute_force_and_reads_right():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 5, generator=g)
    fake = torch.randn(250, 5, generator=g) * 0.5 + 0.7
    p, r = knn_precision_recall(real, fake, k=3, chunk_size=64)
    bp, br = brute_precision_recall(real.double().numpy(), fake.double().numpy(), 3)
    assert (float(p), float(r)) == pytest.approx((bp, br), abs=1e-6)
    # same set: everything inside; far away: nothing inside
    p, r = knn_precision_recall(real, real.clone(), k=3)
    assert float(p) == 1.0 and float(r) == 1.0
    p, r = knn_precision_recall(real, real + 100.0, k=3)
    assert float(p) == 0.0 and float(r) == 0.0


def test_precision_recall_mode_dropping_lowers_recall_not_precision():
    g = torch.Generator().manual_seed(1)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    real = centers[torch.arange(1000) % 2] + 0.3 * torch.randn(1000, 2, generator=g)
    fake = centers[0] + 0.3 * torch.randn(1000, 2, generator=g)  # one of the two modes
    p, r = knn_precision_recall(real, fake, k=3)
    assert float(p) > 0.9
    assert 0.4 < float(r) < 0.6


def test_class_coverage_counts_classes_and_kl():
    sure = 10 * torch.eye(4)  # logits the classifier is confident about
    cov = ClassCoverage(4, threshold=0.1)
    cov.update(sure[torch.arange(400) % 4], real=True)  # balanced real
    fake = sure[torch.tensor([0] * 300 + [1] * 99 + [2] * 1)]  # class 3 absent, class 2 below threshold
    cov.update(fake, real=False)
    out = cov.compute()
    assert int(out["classes_covered"]) == 2
    p = np.array([300, 99, 1, 0]) / 400
    kl = sum(pi * math.log(pi / 0.25) for pi in p if pi > 0)
    assert float(out["class_kl"]) == pytest.approx(kl, rel=1e-5)
    cov.reset()  # keeps the real histogram
    cov.update(sure[torch.arange(400) % 4], real=False)
    out = cov.compute()
    assert int(out["classes_covered"]) == 4 and float(out["class_kl"]) == pytest.approx(0.0, abs=1e-9)
    assert float(out["confident_share"]) == 1.0


def test_class_coverage_counts_only_confident_predictions():
    """Samples that look like no digit (the classifier unsure) cover no class, and they count in the total."""
    sure, unsure = 10 * torch.eye(4), 0.5 * torch.eye(4)  # softmax max ~1.0 vs ~0.36
    cov = ClassCoverage(4, threshold=0.5, min_confidence=0.5)
    cov.update(sure[torch.arange(400) % 4], real=True)
    cov.update(torch.cat([unsure[torch.arange(360) % 4], sure[torch.arange(40) % 4]]), real=False)
    out = cov.compute()
    assert int(out["classes_covered"]) == 0  # 10 confident samples a class, where 0.5 x 100 are needed
    assert float(out["confident_share"]) == pytest.approx(0.1)
    plain = ClassCoverage(4, threshold=0.5, min_confidence=0.0)  # every argmax counts: all four "covered"
    plain.update(sure[torch.arange(400) % 4], real=True)
    plain.update(torch.cat([unsure[torch.arange(360) % 4], sure[torch.arange(40) % 4]]), real=False)
    assert int(plain.compute()["classes_covered"]) == 4


def test_mixture_modes_on_true_and_collapsed_samples():
    centers, std = ring8_centers(0.8), 0.008
    g = torch.Generator().manual_seed(0)
    modes = MixtureModes(centers, std)
    true = centers[torch.randint(8, (4000,), generator=g)] + std * torch.randn(4000, 2, generator=g)
    modes.update(true)
    out = modes.compute()
    assert int(out["modes_covered"]) == 8
    assert float(out["high_quality"]) > 0.97  # 2-D Gaussian: P(r < 3 std) = 1 - exp(-4.5) = 0.989
    assert float(out["mode_kl"]) < 0.01
    modes.reset()
    modes.update(centers[3] + std * torch.randn(1000, 2, generator=g))  # collapsed onto one mode
    out = modes.compute()
    assert int(out["modes_covered"]) == 1
    assert float(out["mode_kl"]) == pytest.approx(math.log(8), rel=1e-6)
    modes.reset()
    modes.update(torch.zeros(500, 2))  # the centre of the ring: near no mode
    out = modes.compute()
    assert int(out["modes_covered"]) == 0 and float(out["high_quality"]) == 0.0


def test_scatter_image_draws_points_and_centres():
    centers = ring8_centers(0.8)
    img = scatter_image(torch.tensor([[0.0, 0.0], [0.5, -0.5]]), centers, radius=0.024, size=128)
    assert img.shape == (3, 128, 128) and img.dtype == torch.uint8
    blue = (img[2] > 200) & (img[0] < 60)
    red = (img[0] > 200) & (img[1] < 60)
    assert blue[63:66, 63:66].any()  # the point at the origin
    assert red.sum() >= 8 * 7  # a cross per centre
    # y points up: (0.5, -0.5) is in the lower right quadrant
    assert blue[64:, 64:].any() and not blue[:60, 70:].any()


def test_cache_round_trip_and_keys(tmp_path):
    cache = RealFeatureCache(tmp_path / "c")
    parts = {"dataset": "x", "extractor": {"name": "identity"}, "n": 10}
    key = cache_key(parts)
    assert key == cache_key(dict(reversed(list(parts.items()))))  # order-independent
    assert key != cache_key({**parts, "n": 11})
    assert cache.load(key) is None and cache.misses == 1
    feats, logits = torch.randn(10, 3), torch.randn(10, 2)
    path = cache.save(key, feats, logits, parts)
    assert path.is_file() and path.with_suffix(".json").is_file()
    entry = cache.load(key)
    assert cache.hits == 1
    assert torch.equal(entry["features"], feats) and torch.equal(entry["logits"], logits)
    path.write_bytes(b"truncated")  # a broken entry is a miss, not a crash
    assert cache.load(key) is None


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    from lightning_gans.metrics import default_cache_dir
    from lightning_gans.metrics.mnist_classifier import BUNDLED_PATH, default_classifier_path

    monkeypatch.setenv("LIGHTNING_GANS_CACHE", str(tmp_path / "cachehere"))
    assert default_cache_dir() == tmp_path / "cachehere"
    # no classifier in the cache: the one shipped with the package; one trained into the cache wins
    assert default_classifier_path() == BUNDLED_PATH and BUNDLED_PATH.is_file()
    (tmp_path / "cachehere").mkdir()
    (tmp_path / "cachehere" / "mnist_classifier.pt").write_bytes(b"")
    assert default_classifier_path() == tmp_path / "cachehere" / "mnist_classifier.pt"
    assert RealFeatureCache().root == tmp_path / "cachehere" / "real_stats"


# ------------------------------------------------------------------------------------------ errors before generating


def test_inception_score_with_features_only_extractor_is_refused_at_construction():
    with pytest.raises(ValueError, match="features only") as err:
        EvaluationCallback(feature_extractor={"name": "inception_local"}, metrics=["fid", "is"])
    assert "mnist_classifier" in str(err.value) and "'inception'" in str(err.value)
    with pytest.raises(ValueError, match="class coverage"):
        EvaluationCallback(feature_extractor={"name": "inception_local"}, metrics=["class_coverage"])


def test_fid_sample_count_below_feature_dimension_is_refused():
    with pytest.raises(ValueError, match="below the feature dimension 2048") as err:
        EvaluationCallback(feature_extractor={"name": "inception_local"}, metrics=["fid"], num_samples=1000)
    assert "mnist_classifier" in str(err.value)
    with pytest.raises(ValueError, match="num_real_samples=500"):
        EvaluationCallback(feature_extractor={"name": "inception_local"}, metrics=["fid"], num_real_samples=500)
    EvaluationCallback(feature_extractor={"name": "inception_local"}, metrics=["kid"], num_samples=1000)  # KID: fine


def test_missing_extractor_files_are_named(tmp_path, monkeypatch):
    with pytest.raises(ExtractorError, match="does not exist") as err:
        EvaluationCallback(feature_extractor={"name": "inception_local", "path": str(tmp_path / "nope.pt")})
    assert "nope.pt" in str(err.value)
    with pytest.raises(ExtractorError, match="python -m lightning_gans.metrics.classifier"):
        EvaluationCallback(feature_extractor={"name": "mnist_classifier", "path": str(tmp_path / "no_classifier.pt")})
    with pytest.raises(ExtractorError, match="weights-inception"):
        EvaluationCallback(feature_extractor={"name": "inception", "path": str(tmp_path / "w.pth")})


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="Unknown feature extractor"):
        EvaluationCallback(feature_extractor={"name": "vgg"})
    with pytest.raises(ValueError, match="Unknown metric"):
        EvaluationCallback(feature_extractor={"name": "identity"}, metrics=["fid", "lpips"])
    with pytest.raises(ValueError, match="source"):
        EvaluationCallback(feature_extractor={"name": "identity"}, source="noise")
