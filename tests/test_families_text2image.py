"""What makes GAN-INT-CLS and DF-GAN those families, and the text plumbing they share: the text encoder (pretrained
in-project, loaded frozen or fine-tuned), prompts in ``sample``/``predict``, captioned grids, interpolation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from datamodules.vocabulary import UnknownWordsWarning, Vocabulary
from lightning_gans.callbacks import ImageWriter, SampleGrid
from lightning_gans.callbacks.common import captioned_grid_uint8
from lightning_gans.core import PredictRequest
from lightning_gans.losses import fake_term, matching_aware_discriminator_loss, real_term
from lightning_gans.models import DCGAN, DFGAN, GANINTCLS
from lightning_gans.networks.dfgan import Affine, DFGenerator
from lightning_gans.networks.text import TextEncoder
from lightning_gans.regularizers import matching_aware_gradient_penalty
from lightning_gans.text2image import mismatched_pairs
from lightning_gans.text_encoder import TextEncoderPretraining, contrastive_loss, read_text_encoder, same_text_targets
from tests.conftest import quiet_trainer
from tests.families import TEXT_VOCABULARY, TINY, caption_batch

REPO = Path(__file__).resolve().parents[1]


def _fit(model, tmp_path: Path, batches: int = 1, **kwargs):
    batch = caption_batch(n=kwargs.pop("n", 4))()
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0, **kwargs)
    trainer.fit(model, DataLoader([batch] * batches, batch_size=None))
    return trainer


def _encoder_checkpoint(tmp_path: Path, vocabulary=TEXT_VOCABULARY, sentence_dim: int = 6) -> Path:
    model = TextEncoderPretraining(vocabulary=list(vocabulary), word_dim=4, sentence_dim=sentence_dim, image_channels=4)
    trainer = _fit(model, tmp_path)
    path = tmp_path / "encoder.ckpt"
    trainer.save_checkpoint(path)
    return path


# ------------------------------------------------------------------------------------------------ shared pieces
def test_mismatched_pairs_roll_the_images_and_skip_identical_captions():
    images, sentences = mismatched_pairs(["a", "b", "b", "c"])
    assert sentences.tolist() == [0, 2, 3] and images.tolist() == [1, 3, 0]  # "b" with "b" is no wrong pair
    assert [t.tolist() for t in mismatched_pairs(["a", "a"])] == [[], []]


def test_matching_aware_loss_is_real_plus_half_wrong_plus_half_fake():
    real, wrong, fake = torch.tensor([0.5, -1.0]), torch.tensor([2.0]), torch.tensor([0.3, 0.1])
    for name in ("nonsaturating", "hinge"):
        expected = real_term(name, real) + 0.5 * (fake_term(name, wrong) + fake_term(name, fake))
        assert torch.allclose(matching_aware_discriminator_loss(name, real, wrong, fake), expected)
        no_wrong = matching_aware_discriminator_loss(name, real, wrong[:0], fake)
        assert torch.allclose(no_wrong, real_term(name, real) + 0.5 * fake_term(name, fake))
    # DF-GAN: hinge, relu(1 - real) + (relu(1 + fake) + relu(1 + mismatched)) / 2
    assert torch.isclose(
        matching_aware_discriminator_loss("hinge", real, wrong, fake),
        torch.tensor((0.5 + 2.0) / 2 + 0.5 * (3.0 + (1.3 + 1.1) / 2)),
    )


def test_ma_gp_is_the_mean_sixth_power_of_the_joint_gradient_norm():
    torch.manual_seed(0)
    w_x, w_s = torch.randn(12), torch.randn(3)
    x = torch.randn(5, 3, 2, 2, requires_grad=True)
    s = torch.randn(5, 3, requires_grad=True)
    logits = torch.tanh(x.flatten(1) @ w_x) * 2 + (s @ w_s) ** 2
    penalty = matching_aware_gradient_penalty(logits, x, s, power=6)
    gx, gs = torch.autograd.grad(logits.sum(), (x, s), retain_graph=True)
    expected = torch.cat([gx.flatten(1), gs], 1).norm(dim=1).pow(6).mean()
    assert torch.allclose(penalty, expected)
    penalty.backward()  # differentiable: D's loss back-propagates through it
    assert x.grad is not None
    assert ".cuda" not in (REPO / "lightning_gans" / "regularizers.py").read_text()


def test_text_encoder_ignores_padding_and_contrastive_targets_share_duplicates():
    torch.manual_seed(0)
    encoder = TextEncoder(10, word_dim=4, sentence_dim=6).eval()
    ids = torch.tensor([[2, 3, 4, 0, 0], [2, 3, 4, 5, 6]])
    words, sentence = encoder(ids)
    _, short = encoder(ids[:, :3])
    assert words.shape == (2, 5, 6) and torch.allclose(sentence[0], short[0], atol=1e-6)
    assert words[0, 3:].abs().sum() == 0
    targets = same_text_targets(["a", "b", "a"], torch.device("cpu"))
    assert torch.allclose(targets, torch.tensor([[0.5, 0, 0.5], [0, 1, 0], [0.5, 0, 0.5]]))
    aligned = torch.eye(3)
    assert contrastive_loss(aligned, aligned, torch.eye(3), 0.1) < contrastive_loss(
        aligned, aligned.roll(1, 0), torch.eye(3), 0.1
    )


# ------------------------------------------------------------------------------------------------ GAN-INT-CLS
def test_gan_int_cls_networks_follow_the_paper():
    model = GANINTCLS(**TINY["GANINTCLS"].kwargs)
    project = model.generator.project
    assert isinstance(project[0], torch.nn.Linear) and project[0].out_features == 8  # projection_dim (paper: 128)
    assert isinstance(project[1], torch.nn.LeakyReLU) and project[1].negative_slope == 0.2
    d = model.discriminator
    assert isinstance(d.project[1], torch.nn.BatchNorm1d) and d.base == 7  # text replicated over D's 7x7 map
    seen = {}
    d.joint.register_forward_hook(lambda m, args, out: seen.update(joint_in=args[0].shape))
    d(torch.zeros(3, 1, 28, 28), torch.zeros(3, 8))
    assert seen["joint_in"] == (3, d.joint[0].in_channels, 7, 7) and d.joint[0].in_channels == 8 + 8


def test_gan_int_cls_g_step_sees_the_batch_and_its_interpolations(tmp_path: Path):
    model = GANINTCLS(**TINY["GANINTCLS"].kwargs)
    sizes = []
    model.generator.register_forward_hook(lambda m, args, out: sizes.append(len(args[0])) and None)
    _fit(model, tmp_path, n=4)
    assert sizes == [4, 4 + 2]  # D step: n fakes; G step: n + n/2 (GAN-INT's (t1 + t2) / 2)
    gan_cls = GANINTCLS(**{**TINY["GANINTCLS"].kwargs, "interpolation_weight": 0.0})  # GAN-CLS alone
    sizes.clear()
    gan_cls.generator.register_forward_hook(lambda m, args, out: sizes.append(len(args[0])) and None)
    _fit(gan_cls, tmp_path, n=4)
    assert sizes == [4, 4]
    assert (model.hparams.mismatch_weight, model.hparams.interpolation_weight) == (0.5, 1.0)
    assert (model.hparams.lr_g, model.hparams.betas) == (2e-4, (0.5, 0.999))


# ------------------------------------------------------------------------------------------------ DF-GAN
def test_df_gan_fusion_starts_as_identity_and_uses_z_and_sentence():
    affine = Affine(cond_dim=5, channels=3)
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(affine(x, torch.randn(2, 5)), x)  # gamma MLP -> 1, beta MLP -> 0 at initialisation
    g = DFGenerator(latent_dim=4, text_dim=6, image_shape=(3, 32, 32), base_channels=2)
    assert len(g.blocks) == 3 and g.blocks[0].fuse1.affine0.gamma[0].in_features == 4 + 6  # cond = cat(z, s)
    assert g(torch.randn(2, 4), torch.randn(2, 6)).shape == (2, 3, 32, 32)
    assert ".cuda" not in (REPO / "lightning_gans" / "models" / "dfgan.py").read_text()


def test_df_gan_trains_with_magp_and_the_official_optimizers(tmp_path: Path):
    model = DFGAN(**TINY["DFGAN"].kwargs)
    opt_g, opt_d = model.configure_optimizers()
    assert opt_g.defaults["lr"] == 1e-4 and opt_d.defaults["lr"] == 4e-4 and opt_d.defaults["betas"] == (0.0, 0.9)
    logged = []
    original = model.report
    model.report = lambda network, losses: (logged.append(set(losses)), original(network, losses))
    _fit(model, tmp_path)
    assert {"d_loss", "magp"} in logged and (model.hparams.magp_weight, model.hparams.magp_power) == (2.0, 6.0)


def test_df_gan_conditioning_augmentation_adds_a_kl_term_and_is_deterministic_in_eval(tmp_path: Path):
    model = DFGAN(**{**TINY["DFGAN"].kwargs, "conditioning_augmentation": 4})
    logged = []
    original = model.report
    model.report = lambda network, losses: (logged.append(set(losses)), original(network, losses))
    _fit(model, tmp_path)
    assert {"g_loss", "kl"} in logged
    z = torch.randn(2, 8)
    assert torch.equal(model.sample(z=z, text="a thick seven"), model.sample(z=z, text="a thick seven"))


# ------------------------------------------------------------------------------------------------ the text encoder
@pytest.mark.parametrize("cls", [GANINTCLS, DFGAN])
def test_pretrained_encoder_is_adopted_and_frozen_or_fine_tuned(cls, tmp_path: Path):
    path = _encoder_checkpoint(tmp_path)
    text = {**TINY[cls.__name__].kwargs["text"], "checkpoint": str(path), "word_dim": 99, "sentence_dim": 98}
    kwargs = {**TINY[cls.__name__].kwargs, "text": text}
    frozen = cls(**kwargs)
    assert (frozen.text_options.word_dim, frozen.text_options.sentence_dim) == (4, 6)  # the checkpoint's sizes
    assert frozen.hparams.text["sentence_dim"] == 6  # and the GAN's checkpoint says so
    pretrained, _, _ = read_text_encoder(path)
    for a, b in zip(pretrained.parameters(), frozen.text_encoder.parameters()):
        assert torch.equal(a, b)
    _fit(frozen, tmp_path)
    for a, b in zip(pretrained.parameters(), frozen.text_encoder.parameters()):
        assert torch.equal(a, b) and not b.requires_grad
    tuned = cls(**{**kwargs, "text": {**text, "finetune": True}})
    _fit(tuned, tmp_path)
    assert any(not torch.equal(a, b) for a, b in zip(pretrained.parameters(), tuned.text_encoder.parameters()))
    # The GAN's checkpoint holds its encoder: it loads without the pretraining file.
    trainer = quiet_trainer(tmp_path)
    trainer.strategy.connect(tuned)
    trainer.save_checkpoint(tmp_path / "gan.ckpt")
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"text.checkpoint null.*'checkpoint': None"):
        cls.load_from_checkpoint(tmp_path / "gan.ckpt", weights_only=True)
    saved = torch.load(tmp_path / "gan.ckpt", weights_only=True)["hyper_parameters"]["text"]
    loaded = cls.load_from_checkpoint(tmp_path / "gan.ckpt", weights_only=True, text={**saved, "checkpoint": None})
    for a, b in zip(tuned.text_encoder.parameters(), loaded.text_encoder.parameters()):
        assert torch.equal(a, b)


def test_an_encoder_of_another_vocabulary_is_refused(tmp_path: Path):
    path = _encoder_checkpoint(tmp_path, vocabulary=[*TEXT_VOCABULARY, "purple"])
    with pytest.raises(ValueError, match="another vocabulary .*'purple'"):
        GANINTCLS(**{**TINY["GANINTCLS"].kwargs, "text": {**TINY["GANINTCLS"].kwargs["text"], "checkpoint": str(path)}})
    with pytest.raises(ValueError, match="needs a vocabulary"):
        DFGAN(**{**TINY["DFGAN"].kwargs, "vocabulary": None})


# ----------------------------------------------------------------------------------------------- prompts in, images out
def test_sample_prompts_unknown_words_and_interpolation():
    model = GANINTCLS(**TINY["GANINTCLS"].kwargs)
    z = torch.randn(3, 8)
    one = model.sample(z=z, text="a thick seven")
    assert one.shape == (3, 1, 28, 28) and torch.equal(one, model.sample(z=z, text=["a thick seven"] * 3))
    assert not torch.equal(one, model.sample(z=z, text="the digit one"))
    with pytest.warns(UnknownWordsWarning, match=r"1 words of 1 prompts .*'purple' x1"):
        model.sample(z=z[:1], text="a purple seven")
    row = model.interpolate("a thin one", "a thick seven", steps=4, z=z[:2])
    assert row.shape == (8, 1, 28, 28)
    assert torch.allclose(row[0], model.sample(z=z[:1], text="a thin one")[0], atol=1e-5)
    assert torch.allclose(row[3], model.sample(z=z[:1], text="a thick seven")[0], atol=1e-5)
    for cls in (GANINTCLS, DFGAN):  # class labels are refused, not ignored
        with pytest.raises(ValueError, match="conditioned on text, not on class labels"):
            cls(**TINY[cls.__name__].kwargs).sample(z=z, labels=torch.zeros(3, dtype=torch.long))


def test_sample_without_prompts_draws_training_captions_after_training(tmp_path: Path):
    model = DFGAN(**TINY["DFGAN"].kwargs)
    assert len(model.caption_pool) == 0
    _fit(model, tmp_path, batches=2)
    assert len(model.caption_pool) == 8
    pooled = {Vocabulary(TEXT_VOCABULARY).decode(t) for t in model.caption_pool.tokens[:8]}
    assert pooled <= {"a thick seven", "a thin one", "the digit seven"}
    assert model.sample(5).shape == (5, 1, 28, 28)


def test_sample_grid_rows_carry_their_captions(tmp_path: Path):
    model = GANINTCLS(**TINY["GANINTCLS"].kwargs)
    assert model.grid_captions() == ["a thick seven"] * 4 + ["a thin one"] * 4
    grid = SampleGrid(every_n_steps=0)
    trainer = _fit(model, tmp_path, callbacks=[grid])
    from PIL import Image

    width = Image.open(grid.written[-1]).width
    assert width > 4 * 32 + 40 and trainer is not None  # four 28px samples per row plus the caption column


def test_captioned_grid_starts_a_row_for_each_caption_and_wraps_long_runs():
    images = torch.zeros(5, 1, 28, 28)
    grid = captioned_grid_uint8(images, ["a one"] * 3 + ["a thick seven"] * 2, nrow=2)
    assert grid.dtype == torch.uint8 and grid.shape[0] == 3 * 32 and grid.shape[2] == 3  # rows: 2 + 1 ones, 2 sevens
    with pytest.raises(ValueError, match="5 images but 4 captions"):
        captioned_grid_uint8(images, ["a"] * 4)


def test_captioned_grid_leaves_a_visible_gap_between_words():
    # Pillow's default font has a 2-pixel space: drawn as one string, "to the" read as "tothe" in the prompt grids.
    grid = captioned_grid_uint8(torch.zeros(1, 1, 28, 28), ["to the"])
    label = grid[:, : grid.shape[1] - 32, 0]  # the caption column, left of the one 32px tile
    inked = (label < 128).any(dim=0).nonzero().flatten()
    blank_runs = (inked[1:] - inked[:-1] - 1).tolist()  # blank columns between inked ones
    assert max(blank_runs) >= 4


def test_writer_writes_images_per_prompt_captions_and_an_interpolation(tmp_path: Path):
    model = DFGAN(**TINY["DFGAN"].kwargs)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# my prompts\nthe digit one\n\n")
    out = tmp_path / "predictions"
    writer = ImageWriter(
        output_dir=str(out), text="a thick seven", prompts_file=str(prompts), num_samples=3, batch_size=2
    )
    quiet_trainer(tmp_path, callbacks=[writer]).predict(model, return_predictions=False)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == [
        "000_a_thick_seven/000000.png",
        "000_a_thick_seven/000001.png",
        "000_a_thick_seven/000002.png",
        "001_the_digit_one/000000.png",
        "001_the_digit_one/000001.png",
        "001_the_digit_one/000002.png",
        "grid.png",
    ]
    lines = (out / "captions.txt").read_text().splitlines()
    assert lines[0] == "000_a_thick_seven/000000.png\ta thick seven" and len(lines) == 6

    out2 = tmp_path / "interpolation"
    writer = ImageWriter(
        output_dir=str(out2), text=["a thin one", "a thick seven"], interpolation_steps=4, num_samples=2
    )
    quiet_trainer(tmp_path, callbacks=[writer]).predict(model, return_predictions=False)
    assert len(list((out2 / "interpolation").glob("*.png"))) == 8 and (out2 / "grid.png").is_file()

    with pytest.raises(ValueError, match="two prompts"):
        ImageWriter(output_dir=str(tmp_path / "x"), text="a one", interpolation_steps=4).setup(None, model, "predict")
    dcgan = DCGAN(**TINY["DCGAN"].kwargs)
    with pytest.raises(ValueError, match="DCGAN does not take text prompts"):
        ImageWriter(output_dir=str(tmp_path / "y"), text="a one").setup(None, dcgan, "predict")
    dcgan.predict_request = PredictRequest(text=["a one"])
    with pytest.raises(ValueError, match="does not take text prompts"):
        dcgan.predict_dataloader()


def test_the_families_run_on_cpu_without_cuda_calls():
    for path in [
        "models/gan_int_cls.py",
        "models/dfgan.py",
        "networks/dfgan.py",
        "networks/gan_int_cls.py",
        "networks/text.py",
        "text2image.py",
        "text_encoder.py",
    ]:
        assert not re.search(r"\.cuda\(|device=['\"]cuda", (REPO / "lightning_gans" / path).read_text()), path
