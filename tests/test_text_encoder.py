"""The text encoder's in-project pretraining (TextEncoderPretraining): it learns to match captions with images,
resumes exactly, and its checkpoint gives the GANs their text encoder."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from datamodules.base import ResumableDataLoader
from datamodules.vocabulary import Vocabulary
from lightning_gans.models import FAMILIES
from lightning_gans.text_encoder import TextEncoderPretraining, read_text_encoder
from tests.conftest import quiet_trainer
from tests.test_resume import _Samples

WORDS = ["a", "bright", "dark", "square", "circle"]


def _toy(n: int = 32):
    """Images whose brightness the caption says: 'a bright square' / 'a dark square'."""
    g = torch.Generator().manual_seed(0)
    bright = torch.rand(n, generator=g) < 0.5
    images = torch.where(bright[:, None, None, None], 0.8, -0.8) + 0.1 * torch.randn(n, 1, 8, 8, generator=g)
    texts = ["a bright square" if b else "a dark square" for b in bright]
    return images, Vocabulary(WORDS).encode_batch(texts, 4), texts


def _model() -> TextEncoderPretraining:
    return TextEncoderPretraining(
        vocabulary=Vocabulary(WORDS).words, word_dim=4, sentence_dim=4, image_channels=4, image_shape=(1, 8, 8), lr=1e-2
    )


def test_pretraining_learns_to_match_captions_and_images(tmp_path: Path):
    torch.manual_seed(0)
    model = _model()
    images, tokens, texts = _toy()
    data = torch.utils.data.DataLoader(_Samples((images, tokens, texts), repeats=4), batch_size=16, shuffle=True)
    val = torch.utils.data.DataLoader(_Samples((images, tokens, texts), repeats=1), batch_size=32)
    trainer = quiet_trainer(tmp_path, max_epochs=3)
    trainer.validate(model, val, verbose=False)
    before = float(trainer.callback_metrics["val/top1"])
    trainer.fit(model, data, val)
    assert model.g_steps == 24 and model.d_steps == 0
    assert float(trainer.callback_metrics["val/top1"]) == 1.0 > before  # every caption finds an image of its kind
    assert "TextEncoderPretraining" not in FAMILIES and model.grid_images().numel() == 0
    with pytest.raises(TypeError, match="generates no images"):
        model.predict_dataloader()

    trainer.save_checkpoint(tmp_path / "encoder.ckpt")
    encoder, vocabulary, sizes = read_text_encoder(tmp_path / "encoder.ckpt")
    assert vocabulary == model.vocab and sizes == {"word_dim": 4, "sentence_dim": 4, "dropout": 0.25}
    encoder.eval()
    assert torch.allclose(torch.nn.functional.normalize(encoder(tokens)[1], dim=1), model.embed_text(tokens))


def test_pretraining_resumes_mid_epoch_exactly_with_a_worker(tmp_path: Path):
    samples = _Samples(_toy(8))

    class StopAt(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            if pl_module.g_steps == 3:
                trainer.save_checkpoint(tmp_path / "mid.ckpt")
                raise InterruptedError

    def run(callbacks=(), ckpt_path=None):
        L.seed_everything(3)
        model = _model()
        loader = ResumableDataLoader(samples, batch_size=4, num_workers=1)
        trainer = quiet_trainer(tmp_path, max_epochs=2, limit_val_batches=0, callbacks=list(callbacks))
        try:
            trainer.fit(model, loader, ckpt_path=ckpt_path)
        except InterruptedError:
            pass
        return model

    straight = run()
    run(callbacks=[StopAt()])
    resumed = run(ckpt_path=str(tmp_path / "mid.ckpt"))
    assert resumed.g_steps == straight.g_steps == 12
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_a_file_that_is_not_a_text_encoder_is_refused(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist. Pretrain one"):
        read_text_encoder(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="holds no text encoder"):
        read_text_encoder(tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="needs a vocabulary"):
        TextEncoderPretraining()
