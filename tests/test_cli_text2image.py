"""``lightning-gans`` for text to image, in-process on a tiny MNIST: pretrain the text encoder, train a GAN on it
(the vocabulary linked from the caption datamodule), then predict from typed prompts."""

from __future__ import annotations

from pathlib import Path

from lightning_gans.cli import GANCLI
from tests.test_cli import tiny_mnist  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parents[1]


def _args(config: str, data_root: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(REPO / "configs" / config),
        "--data.init_args.data_dir",
        str(data_root),
        "--data.init_args.download",
        "false",
        "--data.init_args.batch_size",
        "8",
        "--data.init_args.val_size",
        "16",
        "--trainer.max_steps",
        "4",
        "--trainer.limit_val_batches",
        "0",
        # the configs validate every 500-2,000 steps, more than the tiny data's batches per epoch: Lightning before
        # 2.6.4 refuses that even with validation off, so the interval is one epoch here (the floor environment)
        "--trainer.val_check_interval",
        "1.0",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        *extra,
    ]


def test_encoder_then_gan_then_prompts(tiny_mnist: Path, tmp_path: Path):  # noqa: F811
    encoder = GANCLI(
        args=[
            "fit",
            *_args(
                "text_encoder_mnist.yaml",
                tiny_mnist,
                "--model.init_args.word_dim",
                "8",
                "--model.init_args.sentence_dim",
                "8",
                "--model.init_args.image_channels",
                "4",
            ),
        ]
    )
    assert encoder.model.vocab.words == encoder.datamodule.vocabulary  # linked
    assert (tmp_path / "runs" / "text_encoder_mnist" / "checkpoints" / "last.ckpt").is_file()

    gan_args = _args(
        "gan_int_cls_mnist.yaml",
        tiny_mnist,
        "--model.init_args.g_channels",
        "4",
        "--model.init_args.d_channels",
        "4",
        "--model.init_args.latent_dim",
        "8",
    )
    gan = GANCLI(args=["fit", *gan_args])
    assert gan.model.text_options.sentence_dim == 8  # adopted from the pretrained encoder
    assert gan.model.grid_prompts == gan.datamodule.example_captions
    ckpt = tmp_path / "runs" / "gan_int_cls_mnist" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()

    out = tmp_path / "prompts_out"
    GANCLI(
        args=[
            "predict",
            *gan_args,
            "--ckpt_path",
            str(ckpt),
            "--writer.output_dir",
            str(out),
            "--writer.text",
            '["a thick seven", "the digit one"]',
            "--writer.num_samples",
            "2",
        ]
    )
    assert sorted(p.parent.name for p in out.rglob("0*.png")) == ["000_a_thick_seven"] * 2 + ["001_the_digit_one"] * 2
    out = tmp_path / "one_prompt"
    GANCLI(
        args=[
            "predict",
            *gan_args,
            "--ckpt_path",
            str(ckpt),
            "--writer.output_dir",
            str(out),
            "--writer.text",
            "a thin one",
            "--writer.num_samples",
            "2",
            "--writer.interpolation_steps",
            "0",
        ]
    )
    assert len(list((out / "000_a_thin_one").glob("*.png"))) == 2 and (out / "grid.png").is_file()
