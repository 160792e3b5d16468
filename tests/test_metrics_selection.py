"""Which metrics a configuration gets, decided without a Trainer (the callback's tests cover the errors in place)."""

from __future__ import annotations

import pytest

from lightning_gans.metrics.selection import choose_metrics, requested_metrics


def test_requested_metrics_keeps_order_and_drops_repeats():
    assert requested_metrics("auto", "identity") is None
    assert requested_metrics("kid", "identity") == ("kid",)
    assert requested_metrics(["modes", "fid", "modes"], "identity") == ("modes", "fid")
    with pytest.raises(ValueError, match="Unknown metric"):
        requested_metrics(["fid", "lpips"], "identity")


def test_auto_depends_on_the_data_and_the_extractors_logits():
    assert choose_metrics(None, (2,), "identity") == ("modes",)
    assert choose_metrics(None, (1, 28, 28), "inception_local") == ("fid", "kid", "precision_recall")
    assert choose_metrics(None, (1, 28, 28), "mnist_classifier") == (
        "fid",
        "kid",
        "precision_recall",
        "is",
        "class_coverage",
    )
    assert choose_metrics(("fid",), (2,), "identity") == ("fid",)
    with pytest.raises(ValueError, match="points, not images"):
        choose_metrics(("modes", "kid"), (2,), "inception")
