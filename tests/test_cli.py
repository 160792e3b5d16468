"""``lightning-gans`` end to end, in-process, on a tiny MNIST written into the test's folder."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from datamodules import DatasetNotFoundError
from lightning_gans.cli import GANCLI, main

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "dcgan_mnist.yaml")


def _write_idx(path: Path, data: torch.Tensor) -> None:
    header = (0x0800 | data.dim()).to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in data.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + data.to(torch.uint8).numpy().tobytes())


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    """A fake MNIST in torchvision's layout: 48 training and 16 test digits."""
    raw = tmp_path / "mnist_root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 48), ("t10k", 16)):
        _write_idx(raw / f"{split}-images-idx3-ubyte.gz", torch.randint(0, 256, (n, 28, 28), generator=g))
        _write_idx(raw / f"{split}-labels-idx1-ubyte.gz", torch.randint(0, 10, (n,), generator=g))
    return raw.parent.parent


def tiny_args(data_root: Path, *extra: str) -> list[str]:
    return [
        "--config", CONFIG,
        "--data.init_args.data_dir", str(data_root),
        "--data.init_args.download", "false",
        "--data.init_args.batch_size", "8",
        "--data.init_args.val_size", "16",
        "--data.init_args.num_workers", "0",
        "--model.init_args.g_channels", "4",
        "--model.init_args.d_channels", "4",
        "--model.init_args.latent_dim", "8",
        "--trainer.max_epochs", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.limit_val_batches", "0",  # 16 validation digits are too few for the config's FID evaluation
        *extra,
    ]


def test_print_config_is_complete_and_links_shapes(tiny_mnist: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *tiny_args(tiny_mnist), "--print_config"])
    assert exit_info.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["class_path"] == "lightning_gans.models.DCGAN"
    assert config["data"]["class_path"] == "datamodules.MNISTDataModule"
    assert "image_shape" not in config["model"]["init_args"], "image_shape is linked from the datamodule"
    assert config["writer"]["output_dir"] == "predictions/dcgan_mnist"


def test_fit_writes_checkpoints_grids_logs_and_config_then_resumes(tiny_mnist: Path, tmp_path: Path):
    cli = GANCLI(args=["fit", *tiny_args(tiny_mnist, "--trainer.limit_val_batches", "0")])
    model = cli.model
    assert model.image_shape == (1, 28, 28) and model.num_classes == 10  # linked from the datamodule
    assert model.g_steps == 4 and model.d_steps == 4  # (48 - 16 held out) / batch 8 = 4 batches
    run = Path(cli.trainer.logger.log_dir)
    assert (run / "config.yaml").is_file() and (run / "samples" / "final.png").is_file()
    ckpts = tmp_path / "runs" / "dcgan_mnist" / "checkpoints"
    assert (ckpts / "last.ckpt").is_file()
    first_config = (run / "config.yaml").read_text()

    # a second run in the same folder: a new version folder, the first run's files untouched
    resumed = GANCLI(args=["fit", *tiny_args(tiny_mnist, "--trainer.max_epochs", "2"), "--ckpt_path", "last"])
    assert resumed.model.g_steps == 2 * model.g_steps, "resume continues the G-step counter"
    assert Path(resumed.trainer.logger.log_dir) != run
    assert (run / "config.yaml").read_text() == first_config


def test_predict_keeps_no_images_in_memory_by_default(tiny_mnist: Path, capsys):
    """Images go to files through the writer; Lightning would also keep every prediction in memory."""
    with pytest.raises(SystemExit):
        main(["predict", *tiny_args(tiny_mnist), "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out)["return_predictions"] is False


def test_predict_writes_images_and_grid_and_never_overwrites(tiny_mnist: Path, tmp_path: Path):
    GANCLI(args=["fit", *tiny_args(tiny_mnist, "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "0")])
    ckpt = tmp_path / "runs" / "dcgan_mnist" / "checkpoints" / "last.ckpt"
    out = tmp_path / "samples_out"
    predict = ["predict", *tiny_args(tiny_mnist), "--ckpt_path", str(ckpt), "--writer.output_dir", str(out),
               "--writer.num_samples", "10", "--writer.batch_size", "4"]
    GANCLI(args=predict)
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == [f"{i:06d}.png" for i in range(10)] + ["grid.png"]
    from PIL import Image

    assert Image.open(out / "000000.png").size == (28, 28)
    with pytest.raises(FileExistsError, match="--writer.output_dir"):
        GANCLI(args=predict)


@pytest.mark.parametrize(
    "extra, error, message",
    [
        (["--model.init_args.loss", "wgan"], ValueError, "Valid losses: nonsaturating"),
        (["--data.init_args.image_size", "30"], ValueError, "cannot make 30x30"),
        (["--ckpt_path", "no/such.ckpt"], FileNotFoundError, "no such checkpoint file"),
    ],
)
def test_bad_input_fails_before_training(tiny_mnist: Path, tmp_path: Path, extra, error, message):
    with pytest.raises(error, match=message):
        GANCLI(args=["fit", *tiny_args(tiny_mnist), *extra])
    assert not (tmp_path / "runs" / "dcgan_mnist" / "checkpoints").exists()


def test_missing_data_folder_is_named(tmp_path: Path):
    with pytest.raises(DatasetNotFoundError, match="data_dir"):
        GANCLI(args=["fit", *tiny_args(tmp_path / "empty")])


def test_unknown_config_key_is_refused(tiny_mnist: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        GANCLI(args=["fit", *tiny_args(tiny_mnist), "--model.init_args.lerning_rate", "0.1"])
    assert exit_info.value.code != 0
    assert "lerning_rate" in capsys.readouterr().err


def test_stray_optimizer_flag_is_refused(tiny_mnist: Path):
    with pytest.raises(SystemExit, match="each family builds its own two optimizers"):
        main(["fit", *tiny_args(tiny_mnist), "--optimizer", "Adam"])


def test_python_m_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "lightning_gans", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "fit" in result.stdout and "predict" in result.stdout


# ---------------------------------------------------------------------------------------------------------- DDP
def test_import_registers_nothing_in_lightning():
    """`import lightning_gans` (and its CLI) leaves Lightning's strategy registry as it was: "ddp" is DDPStrategy."""
    code = (
        "from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry as R\n"
        "before = {k: (v['strategy'], v['init_params']) for k, v in R.items()}\n"
        "import lightning_gans, lightning_gans.cli, lightning_gans.models\n"
        "assert {k: (v['strategy'], v['init_params']) for k, v in R.items()} == before\n"
        "assert R['ddp']['strategy'] is DDPStrategy and R['ddp_spawn']['strategy'] is DDPStrategy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize(
    "strategy, start_method, find_unused",
    [("ddp", "popen", None), ("ddp_spawn", "spawn", None), ("ddp_fork", "fork", None), ("auto", "popen", None),
     ("ddp_find_unused_parameters_true", "popen", True)],  # fmt: skip
)
def test_cli_gives_a_gan_the_gan_ddp_strategy(tiny_mnist: Path, strategy: str, start_method: str, find_unused):
    """Where Lightning would use its plain DDPStrategy (a ddp name, or auto on several devices), the CLI builds the
    Trainer with GANDDPStrategy and the same start method and options. No process is started (run=False)."""
    from lightning_gans import GANDDPStrategy

    if start_method == "fork" and "fork" not in torch.multiprocessing.get_all_start_methods():
        pytest.skip("no fork start method here")
    args = [*tiny_args(tiny_mnist), "--trainer.accelerator", "cpu", "--trainer.devices", "2"]
    cli = GANCLI(args=[*args, "--trainer.strategy", strategy], run=False)
    assert type(cli.trainer.strategy) is GANDDPStrategy
    assert cli.trainer.strategy._start_method == start_method and cli.trainer.num_devices == 2
    assert cli.trainer.strategy._ddp_kwargs.get("find_unused_parameters") == find_unused


def test_cli_leaves_one_device_and_a_strategy_object_alone(tiny_mnist: Path):
    from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

    args = [*tiny_args(tiny_mnist), "--trainer.accelerator", "cpu"]
    single = GANCLI(args=args, run=False)  # auto on one device
    assert type(single.trainer.strategy) is SingleDeviceStrategy
    plain = GANCLI(args=[*args, "--trainer.devices", "2", "--trainer.strategy",
                         '{"class_path": "lightning.pytorch.strategies.DDPStrategy"}'], run=False)  # fmt: skip
    assert type(plain.trainer.strategy) is DDPStrategy, "a strategy given as an object is the user's choice"
