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
        "--config",
        CONFIG,
        "--data.init_args.data_dir",
        str(data_root),
        "--data.init_args.download",
        "false",
        "--data.init_args.batch_size",
        "8",
        "--data.init_args.val_size",
        "16",
        "--data.init_args.num_workers",
        "0",
        "--model.init_args.g_channels",
        "4",
        "--model.init_args.d_channels",
        "4",
        "--model.init_args.latent_dim",
        "8",
        "--trainer.max_epochs",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.limit_val_batches",
        "0",  # 16 validation digits are too few for the config's FID evaluation
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
    # The shared defaults (lightning_gans/defaults.yaml) and the classes' own are all there, resolved.
    assert config["seed_everything"] == 42 and config["trainer"]["devices"] == 1
    assert config["model"]["init_args"]["betas"] == [0.5, 0.999] and config["data"]["init_args"]["val_size"] == 16
    assert config["model"]["init_args"]["lr_g"] == 1e-3  # the config's own value over the class's 2e-4
    assert config["trainer"]["logger"]["init_args"] == {
        **config["trainer"]["logger"]["init_args"],
        "save_dir": "runs/dcgan_mnist",
        "name": "logs",
    }
    assert config["checkpoint"]["dirpath"] == "runs/dcgan_mnist/checkpoints" and config["checkpoint"]["save_last"]
    assert config["writer"]["output_dir"] == "runs/dcgan_mnist/predictions"
    assert config["sample_grid"] == {"every_n_steps": 500, "nrow": 8}
    # The evaluation file the config names (configs/evaluation/mnist_classifier.yaml) is inlined.
    [evaluation] = config["trainer"]["callbacks"]
    assert evaluation["class_path"] == "lightning_gans.callbacks.EvaluationCallback"
    assert evaluation["init_args"]["feature_extractor"]["name"] == "mnist_classifier"
    assert evaluation["init_args"]["batch_size"] == 500
    assert "${" not in yaml.safe_dump(config)


def test_one_flag_moves_the_whole_run_folder(tiny_mnist: Path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", *tiny_args(tiny_mnist, "--trainer.default_root_dir", "elsewhere/x"), "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["trainer"]["logger"]["init_args"]["save_dir"] == "elsewhere/x"
    assert config["checkpoint"]["dirpath"] == "elsewhere/x/checkpoints"
    assert config["writer"]["output_dir"] == "elsewhere/x/predictions"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_runs_write_only_in_their_folder_never_overwrite_and_resume_from_last(tiny_mnist: Path, tmp_path: Path):
    args = tiny_args(tiny_mnist, "--trainer.limit_val_batches", "0", "--trainer.default_root_dir", "moved")
    cli = GANCLI(args=["fit", *args])
    model = cli.model
    assert model.image_shape == (1, 28, 28) and model.num_classes == 10  # linked from the datamodule
    assert model.g_steps == 4 and model.d_steps == 4  # (48 - 16 held out) / batch 8 = 4 batches
    root = tmp_path / "moved"
    run = Path(cli.trainer.logger.log_dir).resolve()
    assert run == root / "logs" / "version_0"
    assert (run / "config.yaml").is_file() and (run / "samples" / "final.png").is_file()
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == ["epoch=0-step=8.ckpt", "last.ckpt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist_root", "moved"], "nothing outside the run folder"
    first = _files(root)

    # A second fresh run in the same folder: its own logger version and config, checkpoints beside the first's.
    again = GANCLI(args=["fit", *args])
    assert Path(again.trainer.logger.log_dir).resolve() == root / "logs" / "version_1"
    assert {k: v for k, v in _files(root).items() if k in first} == first, "the first run's files are untouched"
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == [
        "epoch=0-step=8-v1.ckpt",
        "epoch=0-step=8.ckpt",
        "last-v1.ckpt",
        "last.ckpt",
    ]

    # `--ckpt_path last` finds the newest last checkpoint of the folder and continues it.
    resumed = GANCLI(args=["fit", *args, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    assert resumed.model.g_steps == 2 * model.g_steps, "resume continues the G-step counter"
    assert Path(resumed.trainer.logger.log_dir).resolve() == root / "logs" / "version_2"
    assert {k: v for k, v in _files(root).items() if k in first} == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist_root", "moved"]


def test_predict_keeps_no_images_in_memory_by_default(tiny_mnist: Path, capsys):
    """Images go to files through the writer; Lightning would also keep every prediction in memory."""
    with pytest.raises(SystemExit):
        main(["predict", *tiny_args(tiny_mnist), "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out)["return_predictions"] is False


def test_predict_writes_images_and_grid_and_never_overwrites(tiny_mnist: Path, tmp_path: Path):
    GANCLI(
        args=["fit", *tiny_args(tiny_mnist, "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "0")]
    )
    ckpt = tmp_path / "runs" / "dcgan_mnist" / "checkpoints" / "last.ckpt"
    out = tmp_path / "samples_out"
    predict = [
        "predict",
        *tiny_args(tiny_mnist),
        "--ckpt_path",
        str(ckpt),
        "--writer.output_dir",
        str(out),
        "--writer.num_samples",
        "10",
        "--writer.batch_size",
        "4",
    ]
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
        main(["fit", *tiny_args(tiny_mnist), "--model.init_args.lerning_rate", "0.1"])
    assert exit_info.value.code == 2
    assert "Option 'lerning_rate' is not accepted" in capsys.readouterr().err


def test_stray_optimizer_flag_is_refused(tiny_mnist: Path):
    with pytest.raises(SystemExit, match="each family builds its own optimizers"):
        main(["fit", *tiny_args(tiny_mnist), "--optimizer", "Adam"])


def test_python_m_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "lightning_gans", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "fit" in result.stdout and "predict" in result.stdout


# ------------------------------------------------------------------------------------------ callbacks from config
def _callbacks(cli: GANCLI, cls: type) -> list:
    return [cb for cb in cli.trainer.callbacks if isinstance(cb, cls)]


def test_config_callbacks_come_with_the_shared_ones_and_flags_append(tiny_mnist: Path):
    """trainer.callbacks is the experiment's own list (its evaluation); checkpointing, the sample grid and the
    predict writer are argument groups, so no YAML list has to repeat them, and `+=` on the command line appends."""
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    from lightning_gans.callbacks import EvaluationCallback, ImageWriter, SampleGrid

    cli = GANCLI(
        args=[*tiny_args(tiny_mnist), "--trainer.callbacks+=LearningRateMonitor", "--sample_grid.every_n_steps", "7"],
        run=False,
    )
    [evaluation] = _callbacks(cli, EvaluationCallback)
    assert evaluation.extractor_name == "mnist_classifier" and evaluation.batch_size == 500
    assert len(_callbacks(cli, LearningRateMonitor)) == 1
    [grid] = _callbacks(cli, SampleGrid)
    assert grid.every_n_steps == 7 and len(_callbacks(cli, ImageWriter)) == 1
    [checkpoint] = _callbacks(cli, ModelCheckpoint)
    assert (checkpoint.dirpath, checkpoint.save_last, checkpoint.save_top_k) == (
        str(Path("runs/dcgan_mnist/checkpoints").resolve()),
        True,
        -1,
    )

    # Lightning's own switch turns the checkpoint group off (it refuses a ModelCheckpoint with it otherwise).
    off = GANCLI(args=[*tiny_args(tiny_mnist), "--trainer.enable_checkpointing", "false"], run=False)
    assert not _callbacks(off, ModelCheckpoint) and len(_callbacks(off, EvaluationCallback)) == 1


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
    [
        ("ddp", "popen", None),
        ("ddp_spawn", "spawn", None),
        ("ddp_fork", "fork", None),
        ("auto", "popen", None),
        ("ddp_find_unused_parameters_true", "popen", True),
    ],
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
    plain = GANCLI(
        args=[
            *args,
            "--trainer.devices",
            "2",
            "--trainer.strategy",
            '{"class_path": "lightning.pytorch.strategies.DDPStrategy"}',
        ],
        run=False,
    )
    assert type(plain.trainer.strategy) is DDPStrategy, "a strategy given as an object is the user's choice"
