"""Text-to-image metrics: R-precision, MNIST-caption faithfulness, CelebA attribute faithfulness, and the evaluation
script that reports them with their ceilings and floors (run end to end on tiny models and synthetic data)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from datamodules.captions import MNISTCaptionRules, MNISTCaptionsDataModule
from lightning_gans.metrics import text2image as m
from lightning_gans.models import GANINTCLS
from lightning_gans.text_encoder import TextEncoderPretraining
from tests.conftest import quiet_trainer
from tests.test_configs import fake_mnist

REPO = Path(__file__).resolve().parents[1]


def test_r_precision_counts_images_whose_own_caption_beats_every_other():
    images = torch.eye(3)
    own = torch.eye(3)
    negatives = torch.stack([torch.stack([torch.eye(3)[(i + 1) % 3], torch.eye(3)[(i + 2) % 3]]) for i in range(3)])
    assert m.r_precision(images, own, negatives) == 1.0
    assert m.r_precision(images, own.roll(1, 0), negatives) == 0.0
    assert m.r_precision(images, own, negatives.roll(1, 0)) == 0.0  # a negative as close as the caption: no win


def test_negatives_never_share_the_true_caption_text():
    pool = ["a one", "a two", "a one", "a three"]
    negatives = m.draw_negatives(["a one", "a two"], pool, k=5)
    assert all(pool[j] != "a one" for j in negatives[0]) and all(pool[j] != "a two" for j in negatives[1])
    assert all(len(row) == 5 for row in negatives)
    with pytest.raises(ValueError, match="differs"):
        m.draw_negatives(["x"], ["x"], k=1)


class _Says(nn.Module):
    """A stand-in MNIST classifier that reads every image as one digit."""

    def __init__(self, digit: int) -> None:
        super().__init__()
        self.digit = digit

    def forward(self, x):
        return None, nn.functional.one_hot(torch.full((len(x),), self.digit), 10).float()


def test_mnist_faithfulness_checks_digit_thickness_and_slant():
    thin, thick = torch.full((2, 1, 28, 28), -1.0), None
    thin[:, :, 4:24, 13:15] = 1.0
    thick = torch.full((2, 1, 28, 28), -1.0)
    thick[:, :, 4:24, 10:18] = 1.0
    images = torch.cat([thin, thick])
    rules = MNISTCaptionRules(thickness=[(2.0, 3.0)] * 10, size=[(0.1, 0.5)] * 10, thickness_median=[2.5] * 10)
    facts = [
        {"digit": 1, "thickness": "thin", "slant": "upright"},
        {"digit": 7, "thickness": "thick"},
        {"digit": 1, "thickness": "thick", "slant": "right"},
        {"digit": 1},
    ]
    scores = m.mnist_faithfulness(images, facts, rules, classifier=_Says(1))
    assert scores["digit_accuracy"] == 0.75 and scores["thickness_agreement"] == 2 / 3
    assert scores["slant_agreement"] == 0.5 and scores["num_slant"] == 2


def test_attribute_faithfulness_scores_the_mentions():
    predicted = torch.tensor([[True, False], [False, False]])
    facts = [{"Male": 1, "Smiling": 0}, {"Male": 1}]
    scores = m.attribute_faithfulness(predicted, facts, ["Male", "Smiling"])
    assert scores == {"attribute_accuracy": 2 / 3, "gender_accuracy": 0.5, "other_accuracy": 1.0, "num_mentions": 3.0}


def test_attribute_classifier_learns_a_visible_attribute(tmp_path: Path):
    torch.manual_seed(0)
    attrs = torch.randint(0, 2, (256, 2))
    images = torch.full((256, 3, 8, 8), -0.5)
    images[:, 0] += attrs[:, 0, None, None].float()  # attribute 0: a red face; attribute 1: invisible
    net = m.train_attribute_classifier(images, attrs, epochs=6, batch_size=32, lr=5e-3)
    predicted = m.predict_attributes(net, images)
    assert (predicted[:, 0] == attrs[:, 0].bool()).float().mean() > 0.95
    m.save_attribute_classifier(net, tmp_path / "c.pt", {"val_accuracy": 0.5})
    loaded, record = m.load_attribute_classifier(tmp_path / "c.pt")
    assert torch.equal(m.predict_attributes(loaded, images), predicted) and record["val_accuracy"] == 0.5


def test_the_evaluation_script_reports_scores_with_ceilings_and_floors(tmp_path: Path, monkeypatch):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import text2image_eval

    data = fake_mnist(tmp_path / "data")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"class_path": "lightning_gans.models.GANINTCLS"},
                "data": {
                    "class_path": "datamodules.MNISTCaptionsDataModule",
                    "init_args": {"data_dir": str(data), "download": False, "val_size": 16, "batch_size": 8},
                },
            }
        )
    )
    dm = MNISTCaptionsDataModule(data_dir=str(data), download=False, val_size=16, batch_size=8)

    def checkpoint(model, name):
        trainer = quiet_trainer(tmp_path, max_steps=2, limit_val_batches=0)
        trainer.fit(model, DataLoader([next(iter(dm.train_dataloader()))], batch_size=None))
        trainer.save_checkpoint(tmp_path / name)
        return tmp_path / name

    gan = checkpoint(
        GANINTCLS(
            vocabulary=dm.vocabulary,
            latent_dim=8,
            g_channels=4,
            d_channels=4,
            text={"word_dim": 8, "sentence_dim": 8},
            projection_dim=8,
        ),
        "gan.ckpt",
    )
    encoder = checkpoint(
        TextEncoderPretraining(vocabulary=dm.vocabulary, word_dim=8, sentence_dim=8, image_channels=4),
        "eval_encoder.ckpt",
    )
    out = tmp_path / "eval"
    text2image_eval.main(
        [
            "--config",
            str(config),
            "--ckpt",
            str(gan),
            "--eval_encoder",
            str(encoder),
            "--num_prompts",
            "16",
            "--out",
            str(out),
        ]
    )
    results = json.loads((out / "text2image_eval.json").read_text())
    assert results["family"] == "GANINTCLS" and results["num_prompts"] == 16
    for key in ("r_precision", "r_precision_ceiling", "r_precision_floor"):
        assert 0.0 <= results[key] <= 1.0
    for part in ("generated", "ceiling", "floor"):
        assert 0.0 <= results[part]["digit_accuracy"] <= 1.0
    assert (out / "prompts.png").is_file() and (out / "interpolation.png").is_file()
