"""The command line for long runs: one-line errors a user can act on, no empty run folders, signals, predict's
report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lightning_gans.cli import main
from tests.test_cli import tiny_args, tiny_mnist  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parents[1]
LAB = str(REPO / "configs" / "lab" / "base.yaml")  # the lab's base (2-D points): needs no dataset on disk


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lightning-gans"])  # pytest's own arguments are not the CLI's
    monkeypatch.delenv("LIGHTNING_GANS_DEBUG", raising=False)


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--model.init_args.foo", "1"], 2, "Problem with given class_path 'lightning_gans.models.GAN': Option 'foo'"),
        (["--model.init_args.toolbox.r2", "1"], 2, "class_path 'lightning_gans.toolbox.Toolbox': Option 'r2'"),
        (["--model.init_args.loss", "wgan"], 1, "Unknown adversarial loss 'wgan'. Valid losses: nonsaturating"),
        (["--trainer.max_epochs", "x"], 2, "--trainer.max_epochs: Expected a <class 'int'>"),
        (["--optimizer", "Adam"], 1, "--optimizer is not an option here.*--model.init_args.optimizer_g"),
    ],
)
def test_errors_are_one_line_that_names_the_fix(args, code, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--config", LAB, "--trainer.default_root_dir", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err
    assert (stop.value.code or 1) == code or str(stop.value.code).startswith("lightning-gans: error")
    text = err + (str(stop.value.code) if isinstance(stop.value.code, str) else "")
    lines = [line for line in text.splitlines() if line.startswith("lightning-gans: error:")]
    assert len(lines) == 1 and __import__("re").search(message, lines[0]), text[-2000:]
    assert "Traceback" not in text and "Given value" not in text and "usage:" not in text


def test_the_debug_flag_shows_the_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("LIGHTNING_GANS_DEBUG", "1")
    with pytest.raises(ValueError, match="Unknown adversarial loss"):
        main(["fit", "--config", LAB, "--model.init_args.loss", "wgan", "--trainer.default_root_dir", str(tmp_path)])


def test_a_failed_start_leaves_no_empty_run_folder(tmp_path, capsys):
    empty = tmp_path / "no_facades"
    empty.mkdir()
    run = tmp_path / "runs" / "pix2pix"
    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                "--config",
                str(REPO / "configs" / "pix2pix_facades.yaml"),
                "--data.init_args.data_dir",
                str(empty),
                "--trainer.default_root_dir",
                str(run),
            ]
        )
    assert "Images of the 'train' split not found" in capsys.readouterr().err
    assert not run.exists()  # the logger's version folder was made before the data failed: removed again


def test_predict_says_where_it_wrote(tmp_path, caplog):
    root = tmp_path / "run"
    args = ["--config", LAB, "--trainer.default_root_dir", str(root), "--trainer.logger", "false"]
    main(
        [
            "fit",
            *args,
            "--trainer.max_steps",
            "2",
            "--trainer.enable_checkpointing",
            "true",
            "--data.init_args.num_samples",
            "512",
        ]
    )
    with caplog.at_level("INFO"):
        main(["predict", *args, "--ckpt_path", str(root / "checkpoints" / "last.ckpt"), "--writer.num_samples", "3"])
    out = root / "predictions"
    assert f"predict wrote 3 points (points.csv) to {out.resolve()}" in caplog.text  # 2-D points: rows, not PNGs
    rows = (out / "points.csv").read_text().splitlines()
    assert rows[0] == "name,x0,x1" and len(rows) == 4


def _saving_every(steps: int, root: Path) -> list[str]:
    """Arguments of a LAB run (no dataset on disk) in ``root`` that writes a checkpoint every ``steps`` steps."""
    return [
        "--config",
        LAB,
        "--trainer.default_root_dir",
        str(root),
        "--trainer.enable_checkpointing",
        "true",
        "--checkpoint.every_n_epochs",
        "null",
        "--checkpoint.every_n_train_steps",
        str(steps),
    ]


def test_sigterm_to_the_command_saves_the_step_and_exits_143(tmp_path):
    root = tmp_path / "run"
    cmd = [sys.executable, "-m", "lightning_gans", "fit", *_saving_every(20, root), "--trainer.max_epochs", "1000"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not list((root / "checkpoints").glob("*.ckpt")):  # training is under way: the handler is in place
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 143, stderr[-3000:]
    assert "lightning-gans: interrupted by SIGTERM after G step" in stderr and "--ckpt_path last" in stderr
    ckpt = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["lightning_gans"]["g_steps"] >= 10  # past the first periodic checkpoint (20 optimizer steps)


def test_a_checkpoint_never_replaces_the_configs_model(tmp_path, capsys):
    """A checkpoint with other network shapes than the config's model fails naming both (LightningCLI used to build
    the model from the checkpoint's arguments instead, silently), and a learning rate changed on resume takes effect
    and is what config.yaml records."""
    import yaml

    root = tmp_path / "run"
    common = ["--trainer.default_root_dir", str(root), "--data.init_args.num_samples", "512"]
    main(["fit", "--config", LAB, *common, "--trainer.max_steps", "4", "--trainer.enable_checkpointing", "true"])
    ckpt = str(root / "checkpoints" / "last.ckpt")
    with pytest.raises(SystemExit):
        main(
            [
                "validate",
                "--config",
                LAB,
                *common,
                "--model.init_args.g_hidden_dims",
                "[64, 64, 64]",
                "--ckpt_path",
                ckpt,
            ]
        )
    err = capsys.readouterr().err
    assert (
        "do not fit the GAN the config builds" in err and "g_hidden_dims=[128, 128, 128] (config: [64, 64, 64])" in err
    )

    class LearningRate(__import__("lightning").Callback):
        def on_train_start(self, trainer, pl_module):
            self.lr = pl_module.optimizers()[0].param_groups[0]["lr"]

    from lightning_gans.cli import GANCLI

    spy = LearningRate()
    cli = GANCLI(
        args=[
            "fit",
            "--config",
            LAB,
            *common,
            "--trainer.max_steps",
            "8",
            "--model.init_args.lr_g",
            "5e-4",
            "--trainer.enable_checkpointing",
            "true",
            "--ckpt_path",
            ckpt,
        ],
        trainer_defaults={"callbacks": [spy]},
    )
    assert spy.lr == 5e-4 and cli.model.hparams.lr_g == 5e-4
    saved = sorted((root / "logs").rglob("config.yaml"))[-1]
    assert yaml.safe_load(saved.read_text())["model"]["init_args"]["lr_g"] == 5e-4


def test_a_damaged_checkpoint_is_one_line_that_names_it_and_the_readable_one_beside_it(tmp_path, capsys):
    """fit, validate and predict with a truncated last.ckpt: one line naming the file, that it cannot be read, and the
    newest readable checkpoint in the same folder with the flag that resumes from it; nothing is loaded in its place."""
    root = tmp_path / "run"
    common = [*_saving_every(2, root), "--trainer.enable_progress_bar", "false"]
    main(["fit", *common, "--trainer.max_steps", "8"])
    last = root / "checkpoints" / "last.ckpt"
    whole = last.read_bytes()
    last.write_bytes(whole[: len(whole) // 2])  # a copy cut short
    capsys.readouterr()
    for command in (
        ["fit", *common, "--trainer.max_steps", "12", "--ckpt_path", "last"],
        ["validate", *common, "--ckpt_path", str(last)],
        ["predict", *common, "--ckpt_path", str(last)],
    ):
        with pytest.raises(SystemExit) as stop:
            main(command)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("lightning-gans: error:")]
        assert stop.value.code == 1 and len(lines) == 1, err[-2000:]
        assert "last.ckpt cannot be read: it is not a whole PyTorch checkpoint archive" in lines[0]
        assert "The newest readable checkpoint beside it is epoch=" in lines[0] and "--ckpt_path " in lines[0]
        assert "Traceback" not in err
    assert last.read_bytes() == whole[: len(whole) // 2]  # left as it was found


def test_a_training_set_smaller_than_one_batch_is_refused_before_training(tiny_mnist, tmp_path, capsys):  # noqa: F811
    """MNIST drops incomplete batches: 32 training digits at batch size 64 would train no step at all."""
    args = tiny_args(tiny_mnist, "--trainer.default_root_dir", str(tmp_path / "run"))
    with pytest.raises(SystemExit) as stop:
        main(["fit", *args, "--data.init_args.batch_size", "64"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("lightning-gans: error:")]
    assert stop.value.code == 1 and len(lines) == 1, err[-2000:]
    assert "the training set has 32 images, fewer than one batch of batch_size=64" in lines[0]
    assert "Set data.init_args.batch_size to at most 32" in lines[0]
    assert not list((tmp_path / "run").rglob("*.ckpt"))


def test_a_training_set_smaller_than_one_batch_but_kept_warns_that_each_step_sees_the_same_images():
    from datamodules.mixtures import GaussianMixtureDataModule

    data = GaussianMixtureDataModule(num_samples=20, num_val_samples=8, batch_size=32)
    data.setup("fit")
    with pytest.warns(UserWarning, match=r"the training set has 20 images, fewer than batch_size=32: every step "):
        loader = data.train_dataloader()
    assert len(loader) == 1 and len(next(iter(loader))[0]) == 20
