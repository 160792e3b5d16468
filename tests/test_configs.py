"""Every experiment config in configs/ builds through the CLI and trains one step; the configs are deltas.

``test_config_fits_one_step`` is parametrised over every YAML under ``configs/`` (recursively) that names a model:
the experiments. Fragments are not run alone: ``loggers/*.yaml`` are combined with a base config
(``test_logger_fragment_follows_the_run_folder``), ``evaluation/*.yaml`` are items of the experiments'
``trainer.callbacks``. A mode-collapse lab row (``lab/<row>.yaml``) is an experiment made of two files, the lab's
``lab/base.yaml`` and the row's changes (``--config lab/base.yaml --config lab/<row>.yaml``, :func:`config_files`);
the base alone is no experiment. Each experiment runs ``fit --config <x> --trainer.fast_dev_run 1`` in-process (one
training and one validation batch; evaluation is off under fast_dev_run, but its callback is built) on the real
dataset when ``$LIGHTNING_GANS_DATA_DIR`` holds it, else on synthetic files of the same layout and image size written
into a temporary folder, so no config is left untested on a machine without the data. The overrides are for speed only
(batch size, ``num_workers 0``, smaller validation and mixture sets); the models keep the configs' real sizes
(the image-to-image ones run at the quick-CPU image size their headers give, see ``QUICK_CPU_SIZE``).
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from datamodules.captions import CELEBA_ATTRIBUTES
from lightning_gans.callbacks import EvaluationCallback
from lightning_gans.cli import CALLBACK_GROUPS, DEFAULTS_FILE, GANCLI
from lightning_gans.networks.blocks import has_spectral_norm
from tests.conftest import DATA_ENV

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs"


LAB_BASE = CONFIG_DIR / "lab" / "base.yaml"


def config_files(path: Path) -> list[Path]:
    """The files one experiment is made of, in ``--config`` order: a lab row runs on the lab's base."""
    return [LAB_BASE, path] if path.parent == LAB_BASE.parent and path != LAB_BASE else [path]


# Copied from benchmarks.mode_collapse_lab._merged
def _merged(base: Any, delta: Any) -> Any:
    """``delta`` over ``base`` as ``--config base --config delta`` merges them: mappings key by key, anything else
    (values, lists) replaced."""
    if isinstance(base, dict) and isinstance(delta, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in delta.items()}}
    return delta


def load_config(path: Path) -> Any:
    """An experiment's config as plain data: its files (:func:`config_files`) merged."""
    config: Any = {}
    for file in config_files(path):
        config = _merged(config, yaml.safe_load(file.read_text()) or {})
    return config


def _is_experiment(path: Path) -> bool:
    config = load_config(path)
    return path != LAB_BASE and isinstance(config, dict) and "model" in config


EXPERIMENTS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if _is_experiment(p))
IDS = [str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in EXPERIMENTS]
LOGGER_FRAGMENTS = sorted((CONFIG_DIR / "loggers").glob("*.yaml"))

#: config -> settings the built model must hold (the papers' values; the families' defaults unless the config says
#: otherwise). Each family's class is checked from the config's own class_path.
PAPER_SETTINGS: dict[str, dict[str, Any]] = {
    "dcgan_mnist": {  # the paper's networks and loss; lr and EMA from the recipe sweep (benchmarks/results/)
        "loss": "nonsaturating",
        "lr_g": 1e-3,
        "lr_d": 1e-3,
        "betas": (0.5, 0.999),
        "latent_dim": 100,
        "ema_decay": 0.999,
    },
    "cgan_mnist": {"conditional": True, "lr_g": 2e-4, "betas": (0.5, 0.999)},
    "fast_mnist": {  # the label as D's input channels: the projection D stayed above FID 380 (config header)
        "discriminator": "concat",
        "conditional": True,
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "betas": (0.5, 0.999),
        "latent_dim": 100,
    },
    "acgan_mnist": {  # z * embed(y) and TAC-GAN's twin classifier against per-class collapse (config header)
        "conditional": True,
        "class_weight": 1.0,
        "lr_d": 2e-4,
        "g_label_input": "multiply",
        "aux_classifier": "tac",
    },
    "wgan_mnist": {"clip_value": 0.01, "n_critic": 5, "optimizer_d": "rmsprop", "lr_d": 5e-5, "lr_g": 5e-5},
    "wgan_gp_mnist": {"toolbox.gradient_penalty": 10.0, "n_critic": 5, "lr_d": 1e-4, "betas": (0.0, 0.9)},
    "lsgan_mnist": {"loss": "lsgan", "lr_d": 2e-4, "betas": (0.5, 0.999)},
    "sngan_mnist": {"loss": "hinge", "lr_d": 2e-4, "betas": (0.0, 0.9), "n_critic": 1},
    "sagan_mnist": {"loss": "hinge", "lr_d": 4e-4, "lr_g": 1e-4, "n_critic": 1},
    "bigan_mnist": {"latent_dim": 50},
    "autoencoder_mnist": {"latent_dim": 32, "lr": 1e-3},
    "vae_mnist": {"latent_dim": 32, "lr": 1e-3},
    "dcgan_celeba": {
        "loss": "nonsaturating",
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "betas": (0.5, 0.999),
        "latent_dim": 100,
        "n_critic": 1,
    },
    "sngan_celeba": {
        "loss": "hinge",
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "betas": (0.0, 0.9),
        "latent_dim": 128,
        "n_critic": 5,
    },
    "dcgan_celeba32": {"loss": "nonsaturating", "lr_g": 2e-4, "betas": (0.5, 0.999), "latent_dim": 100},
    "dcgan_celeba32_ada": {"ada.policy": "bgc", "ada.target": 0.6, "ada.interval": 4, "ada.speed_images": 100_000},
    # stylegan2-ada-pytorch `--cfg auto` at 64x64 / 32x32 on one device (train.py's cfg_specs)
    "stylegan_celeba": {
        "mapping_layers": 2,
        "channel_base": 16384,
        "channel_max": 512,
        "lr_g": 0.0025,
        "lr_d": 0.0025,
        "betas": (0.0, 0.99),
        "r1_gamma": 0.0002 * 64**2 / 32,
        "r1_interval": 16,
        "pl_weight": 2.0,
        "pl_interval": 4,
        "style_mixing_prob": 0.9,
        "ema_kimg": 10.0,
        "ema_rampup": 0.05,
        "mbstd_group_size": 4,
        "latent_dim": 512,
        "w_dim": 512,
        "style_block": "modulated",
    },
    "stylegan_celeba32": {
        "mapping_layers": 2,
        "lr_g": 0.0025,
        "betas": (0.0, 0.99),
        "r1_gamma": 0.0002 * 32**2 / 32,
        "pl_weight": 0.0,
        "style_mixing_prob": 0.9,
        "ema_kimg": 10.0,
        "ema_rampup": 0.05,
    },
    "srresnet_celeba": {"num_blocks": 16, "g_channels": 64, "batch_norm": True, "kernel_size": 9, "scale": 4},
    "srgan_celeba": {
        "num_blocks": 16,
        "batch_norm": True,
        "loss": "nonsaturating",
        "lambda_adv": 5e-3,  # not the paper's 1e-3: the offline content loss (config header, README's SR table)
        "content.lambda_d_features": 0.1,
        "content.lambda_pixel": 1.0,
        "content.lambda_vgg": 0.0,
        "d_down_kernel": 3,
        "scale": 4,
    },
    "esrgan_facades": {
        "growth": 32,
        "relativistic": True,
        "content.lambda_pixel": 1e-2,
        "content.pixel_loss": "l1",
        "content.vgg_layer": "conv5_4",
        "lambda_adv": 5e-3,
        "ema_decay": 0.999,
        "betas": (0.9, 0.99),
        "scale": 4,
    },
    "gan_int_cls_mnist": {
        "loss": "nonsaturating",
        "lr_g": 2e-4,
        "betas": (0.5, 0.999),
        "mismatch_weight": 0.5,
        "interpolation_weight": 1.0,
        "projection_dim": 128,
        "latent_dim": 100,
    },
    "gan_int_cls_celeba": {"loss": "nonsaturating", "lr_d": 2e-4, "mismatch_weight": 0.5, "g_channels": 64},
    "dfgan_mnist": {
        "loss": "hinge",
        "lr_g": 1e-4,
        "lr_d": 4e-4,
        "betas": (0.0, 0.9),
        "magp_weight": 2.0,
        "magp_power": 6.0,
        "mismatch_weight": 0.5,
    },
    "dfgan_celeba": {
        "loss": "hinge",
        "lr_g": 1e-4,
        "lr_d": 4e-4,
        "betas": (0.0, 0.9),
        "magp_weight": 2.0,
        "g_channels": 32,
        "latent_dim": 100,
        "conditioning_augmentation": 0,
    },
    "text_encoder_mnist": {"temperature": 0.1, "sentence_dim": 128},
    "text_encoder_celeba": {"temperature": 0.1, "sentence_dim": 128},
}

#: config -> its budget and run settings (what reproduces the README's results), read from the built Trainer.
BUDGETS: dict[str, dict[str, Any]] = {
    "dcgan_mnist": {"max_epochs": 5},
    "gan_mnist": {"max_epochs": 10},
    "cgan_mnist": {"max_epochs": 5},
    "fast_mnist": {"max_epochs": 3},
    "acgan_mnist": {"max_epochs": 5},
    "lsgan_mnist": {"max_epochs": 5},
    "sngan_mnist": {"max_epochs": 3},
    "sagan_mnist": {"max_epochs": 3},
    "wgan_mnist": {"max_epochs": 20},
    "wgan_gp_mnist": {"max_epochs": 10},
    "bigan_mnist": {"max_epochs": 4},
    "autoencoder_mnist": {"max_epochs": 10},
    "vae_mnist": {"max_epochs": 10},
    "dcgan_celeba": {"max_epochs": 20, "check_val_every_n_epoch": 1},
    "sngan_celeba": {"max_epochs": -1, "max_steps": 600_000, "check_val_every_n_epoch": 10},
    "pix2pix_facades": {"max_epochs": 200, "check_val_every_n_epoch": 5},
    "cyclegan_facades": {"max_epochs": 200, "check_val_every_n_epoch": 5, "limit_val_batches": 32},
    "gaugan_facades": {"max_epochs": 200, "check_val_every_n_epoch": 5, "log_every_n_steps": 25},
    "stylegan_celeba": {"max_epochs": 30, "check_val_every_n_epoch": 5},
    "stylegan_celeba32": {"max_time": "00:01:00:00", "limit_val_batches": 0},
    "dcgan_celeba32": {"max_time": "00:01:00:00", "limit_val_batches": 0},
    "dcgan_celeba32_ada": {"max_time": "00:00:40:00", "limit_val_batches": 0},
    "srresnet_celeba": {"max_epochs": 4},
    "srgan_celeba": {"max_epochs": 2},
    "text_encoder_mnist": {"max_steps": 1500},
    "gan_int_cls_mnist": {"max_steps": 8000},
    "dfgan_mnist": {"max_steps": 8000},
    "text_encoder_celeba": {"max_steps": 3000},
    "gan_int_cls_celeba": {"max_epochs": 100, "check_val_every_n_epoch": 10},
    "dfgan_celeba": {"max_epochs": 100, "check_val_every_n_epoch": 10},
}
#: CelebA configs -> (image size, batch size as shipped, their evaluation's (metrics, generated samples))
CELEBA: dict[str, tuple[int, int, tuple[str, ...], int]] = {
    "dcgan_celeba": (64, 128, ("fid", "kid"), 10_000),
    "sngan_celeba": (64, 64, ("fid", "kid"), 10_000),
    "stylegan_celeba": (64, 32, ("fid", "kid"), 10_000),
    "dcgan_celeba32": (32, 128, ("kid",), 2000),
    "dcgan_celeba32_ada": (32, 128, ("kid",), 2000),
    "stylegan_celeba32": (32, 32, ("kid",), 2000),
}


def _setting(model, name: str) -> Any:
    """A model's setting: a constructor argument (its hparams), a field of an option group (``content.lambda_vgg``, or
    of the toolbox without its name), or an attribute."""
    group, _, field = name.partition(".")
    if field:
        value = getattr(getattr(model, {"text": "text_options"}.get(group, group)), field)
    elif name in model.hparams:
        value = model.hparams[name]
    elif hasattr(getattr(model, "toolbox", None), name):
        value = getattr(model.toolbox, name)
    else:
        value = getattr(model, name)
    return tuple(value) if isinstance(value, list) else value


# ------------------------------------------------------------------------------------------------ data, real or fake
#: The image-to-image configs' "quick CPU run" size from their headers: 64x64 crops of 72x72 images. At 256x256 one
#: CycleGAN or GauGAN step takes ~15 s on a CPU; the networks keep their widths, their depth follows the size.
QUICK_CPU_SIZE = ["--data.init_args.crop_size", "64", "--data.init_args.load_size", "72"]


def _real(sub: str) -> Path | None:
    root = os.environ.get(DATA_ENV)
    return Path(root) / sub if root and (Path(root) / sub).exists() else None


def _write_idx(path: Path, data: torch.Tensor) -> None:
    header = (0x0800 | data.dim()).to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in data.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + data.to(torch.uint8).numpy().tobytes())


def _noise_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def fake_mnist(root: Path) -> Path:
    """torchvision's layout: ``MNIST/raw/*-ubyte.gz``, 64 training and 16 test digits of 28x28."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 64), ("t10k", 16)):
        _write_idx(raw / f"{split}-images-idx3-ubyte.gz", torch.randint(0, 256, (n, 28, 28), generator=g))
        _write_idx(raw / f"{split}-labels-idx1-ubyte.gz", torch.randint(0, 10, (n,), generator=g))
    return root


def fake_celeba(root: Path) -> Path:
    """The shared copy's layout: 16 aligned-face JPEGs of 89x109 in ``img_align_celeba_89x109/`` and the official
    attribute text file (count line, 40 names, one row per image); no partition file, like the copy."""
    folder = root / "img_align_celeba_89x109"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, 17)]
    for name in names:
        _noise_image(rng, 89, 109).save(folder / name)
    attributes = list(CELEBA_ATTRIBUTES)  # the official names (the caption grammar reads them)
    rows = [f"{name} " + " ".join(str(v) for v in rng.choice([-1, 1], 40)) for name in names]
    (root / "list_attr_celeba.txt").write_text("\n".join([str(len(names)), " ".join(attributes), *rows]) + "\n")
    return root


def fake_facades(root: Path) -> Path:
    """pix2pix's layout: ``train/ val/ test/`` of 512x256 JPEGs, photo (A) left, label map (B) right."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            _noise_image(rng, 512, 256).save(root / split / f"{i + 1}.jpg")
    return root


def fake_superres(root: Path) -> Path:
    """The folders the super-resolution configs read under one root: CelebA's faces and the facades photos."""
    fake_celeba(root / "celeba_small")
    fake_facades_unpaired(root / "facades_unpaired")
    return root


def fake_facades_unpaired(root: Path) -> Path:
    """CycleGAN's layout: ``trainA/ trainB/ testA/ testB/`` of 256x256 JPEGs."""
    rng = np.random.default_rng(0)
    for folder, n in (("trainA", 4), ("trainB", 3), ("testA", 2), ("testB", 2)):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            _noise_image(rng, 256, 256).save(root / folder / f"{i + 1}_{folder[-1]}.jpg")
    return root


@pytest.fixture(scope="module")
def data_args(tmp_path_factory):
    """datamodule class name -> the overrides that point it at real data or at a synthetic copy (made once)."""
    made: dict[str, list[str]] = {}

    def args_for(datamodule: str) -> list[str]:
        if datamodule in made:
            return made[datamodule]
        if datamodule in ("MNISTDataModule", "MNISTCaptionsDataModule"):
            root = _real("MNIST/raw")
            root = root.parent.parent if root else fake_mnist(tmp_path_factory.mktemp("mnist"))
            args = [
                "--data.init_args.data_dir",
                str(root),
                "--data.init_args.download",
                "false",
                "--data.init_args.batch_size",
                "8",
                "--data.init_args.val_size",
                "16",
            ]
        elif datamodule in ("CelebADataModule", "CelebACaptionsDataModule"):
            root = _real("celeba_small/img_align_celeba_89x109")
            root = root.parent if root else fake_celeba(tmp_path_factory.mktemp("celeba_small"))
            args = [
                "--data.init_args.data_dir",
                str(root),
                "--data.init_args.image_folder",
                "img_align_celeba_89x109",
                "--data.init_args.batch_size",
                "4",
                "--data.init_args.pin_memory",
                "false",
            ]
            if datamodule == "CelebACaptionsDataModule":  # decoding all 10,000 faces would take the test's time
                args += ["--data.init_args.in_memory", "false"]
            if not _real("celeba_small/img_align_celeba_89x109"):  # 16 fake faces: a small-data config's subset fits
                args += ["--data.init_args.max_train_images", "8"]
        elif datamodule == "PairedImageDataModule":
            root = _real("facades") or fake_facades(tmp_path_factory.mktemp("facades"))
            args = ["--data.init_args.data_dir", str(root), "--data.init_args.batch_size", "1", *QUICK_CPU_SIZE]
        elif datamodule == "UnpairedImageDataModule":
            root = _real("facades_unpaired") or fake_facades_unpaired(tmp_path_factory.mktemp("facades_unpaired"))
            args = ["--data.init_args.data_dir", str(root), *QUICK_CPU_SIZE]
        elif datamodule == "SuperResolutionDataModule":  # folders relative to one root: the shared data, or fakes
            real = _real("celeba_small/img_align_celeba_89x109") and _real("facades_unpaired/trainA")
            root = Path(os.environ[DATA_ENV]) if real else fake_superres(tmp_path_factory.mktemp("superres"))
            args = ["--data.init_args.data_dir", str(root), "--data.init_args.batch_size", "2"]
        elif datamodule == "GaussianMixtureDataModule":  # sampled, no files
            args = ["--data.init_args.num_samples", "512"]
        else:
            raise AssertionError(f"no real or synthetic data for {datamodule}: add it to tests/test_configs.py")
        made[datamodule] = [*args, "--data.init_args.num_workers", "0"]
        return made[datamodule]

    return args_for


# ---------------------------------------------------------------------------------------------------- the one test
#: Configs whose real one-step cost is too much for the default suite -> the model widths it runs at there (speed only,
#: everything else as shipped). StyleGAN2 at 64x64 with 512 channels takes ~40 s of a CPU thread for its first step
#: (R1 and path length run at step 0); `pytest -m slow` runs it at its real width (id "<config>-full").
CPU_WIDTHS: dict[str, dict[str, int]] = {"stylegan_celeba": {"channel_base": 2048}}
FIT_PARAMS = [pytest.param(p, False, id=i) for p, i in zip(EXPERIMENTS, IDS)] + [
    pytest.param(p, True, id=f"{i}-full", marks=pytest.mark.slow) for p, i in zip(EXPERIMENTS, IDS) if i in CPU_WIDTHS
]


@pytest.mark.parametrize(("config", "full"), FIT_PARAMS)
def test_config_fits_one_step(config: Path, full: bool, data_args, monkeypatch):
    name = config.stem
    shipped = load_config(config)
    narrower = {} if full else CPU_WIDTHS.get(name, {})
    width = [arg for key, value in narrower.items() for arg in (f"--model.init_args.{key}", str(value))]
    datamodule = shipped["data"]["class_path"].rsplit(".", 1)[-1]
    module, family = shipped["model"]["class_path"].rsplit(".", 1)
    monkeypatch.setattr(sys, "argv", ["lightning-gans"])  # pytest's own arguments are not the CLI's
    # StyleGAN refuses path-length regularisation below batch 8 (the overrides' 4 is for speed only)
    batch = ["--data.init_args.batch_size", "8"] if "StyleGAN" in shipped["model"]["class_path"] else []
    # A config that starts from another run's checkpoint (SRGAN from SRResNet) is run from scratch here; the path it
    # names is checked below. The GPU-sized ESRGAN (23 RRDBs, 128x128 patches: tens of seconds a step on a CPU) runs
    # with 2 RRDBs at 64x64, like the image-to-image configs at their quick CPU size.
    init_from = (shipped["model"].get("init_args") or {}).get("init_from")
    overrides = ["--model.init_args.init_from", "null"] if init_from else []
    if family == "ESRGAN":
        overrides += ["--data.init_args.hr_size", "64", "--model.init_args.num_blocks", "2"]
    # Text-to-image configs read a pretrained text encoder's checkpoint, which a fresh checkout lacks: a random one.
    if "text" in (shipped["model"].get("init_args") or {}):
        overrides += ["--model.init_args.text.checkpoint", "null"]
    cli = GANCLI(
        args=[
            "fit",
            *(arg for file in config_files(config) for arg in ("--config", str(file))),
            "--trainer.fast_dev_run",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
            *data_args(datamodule),
            *batch,
            *width,
            *overrides,
        ]
    )
    model, dm, trainer = cli.model, cli.datamodule, cli.trainer

    assert type(model) is getattr(importlib.import_module(module), family)
    assert model.image_shape == dm.image_shape and model.num_classes == dm.num_classes  # linked from the datamodule
    for attr, value in PAPER_SETTINGS.get(name, {}).items():
        assert _setting(model, attr) == (narrower[attr] if attr in narrower else value), attr
    if family in ("SNGAN", "SAGAN"):  # spectral norm on every layer of D (SAGAN: and of G), the papers' point
        for net in (model.discriminator, model.generator) if family == "SAGAN" else (model.discriminator,):
            layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding))]
            assert layers and all(has_spectral_norm(m) for m in layers), family
    for attr, value in BUDGETS.get(name, {}).items():
        assert cli.config.fit.trainer[attr] == value, attr
    # Its run folder: runs/ + where it lies in configs/ (runs/dcgan_mnist, runs/lab/ring8_hinge).
    assert cli.config.fit.trainer.default_root_dir == f"runs/{config.relative_to(CONFIG_DIR).with_suffix('')}"

    assert not list(Path.cwd().rglob("*.ckpt")), "fast_dev_run writes no checkpoint (`--ckpt_path last` would find it)"
    assert not list(Path.cwd().rglob("*.png")), "fast_dev_run writes no sample grid"

    # One training batch: one D step (none for the one-network baselines), a G step unless n_critic waits.
    if family in ("Autoencoder", "VAE", "SRResNet", "TextEncoderPretraining"):
        assert (model.g_steps, model.d_steps) == (1, 0)
    else:
        assert model.d_steps == 1 and model.g_steps == (1 if getattr(model, "n_critic", 1) == 1 else 0)

    evaluation = [cb for cb in trainer.callbacks if isinstance(cb, EvaluationCallback)]
    if datamodule == "MNISTDataModule":
        assert model.image_shape == (1, 28, 28) and model.num_classes == 10
        [ev] = evaluation
        assert ev.extractor_name == "mnist_classifier" and ev.num_samples == 10_000
    elif datamodule == "CelebADataModule":
        size, batch_size, metrics, num_samples = CELEBA[name]  # the papers', mimicry's, stylegan2-ada's auto
        assert model.image_shape == (3, size, size) and model.num_classes == 0
        as_shipped = {**_class_defaults(shipped["data"]["class_path"]), **shipped["data"]["init_args"]}
        assert as_shipped["batch_size"] == batch_size
        assert as_shipped["image_size"] == size and as_shipped["data_dir"] is None  # $LIGHTNING_GANS_DATA_DIR/celeba
        if _real("celeba_small/img_align_celeba_89x109"):
            # No partition file in the copy: val_fraction holds out 2,500 faces, above FID's 2,048 features.
            # A small-data config keeps a subset of the training faces (max_train_images), never of the held-out ones.
            train = as_shipped.get("max_train_images") or 7500
            assert {s: len(d) for s, d in dm.datasets.items()} == {"train": train, "val": 2500, "test": 2500}
        [ev] = evaluation
        assert ev.extractor_name == "inception_local" and ev.requested == metrics
        assert ev.num_samples == num_samples and ev.extractor is not None and ev.extractor.num_features == 2048
        with torch.no_grad():
            assert model.sample(2).shape == (2, 3, size, size)  # G at the size also where no G step ran
    elif datamodule in ("MNISTCaptionsDataModule", "CelebACaptionsDataModule"):
        mnist = datamodule == "MNISTCaptionsDataModule"
        assert model.image_shape == ((1, 28, 28) if mnist else (3, 64, 64))
        assert model.vocab.words == dm.vocabulary  # linked from the training captions
        if family == "TextEncoderPretraining":
            assert not evaluation and "val/top1" in trainer.callback_metrics
        else:
            assert model.grid_prompts == dm.example_captions  # the sample grid's rows: validation captions
            assert (
                shipped["model"]["init_args"]["text"]["checkpoint"]
                == f"runs/text_encoder_{'mnist' if mnist else 'celeba'}/checkpoints/last.ckpt"
            )
            [ev] = evaluation
            assert ev.extractor_name == ("mnist_classifier" if mnist else "inception_local")
            with torch.no_grad():
                assert model.sample(2, text="a one").shape == (2, *model.image_shape)
    elif datamodule in ("PairedImageDataModule", "UnpairedImageDataModule"):
        assert model.image_shape == (3, 64, 64) and model.num_classes == (12 if family == "GauGAN" else 0)
        assert ("val/cycle_l1" if family == "CycleGAN" else "val/l1") in trainer.callback_metrics
        assert not evaluation
    elif datamodule == "SuperResolutionDataModule":
        assert model.scale == dm.scale == 4 and model.image_shape == dm.image_shape == (3, 64, 64)
        assert {"val/psnr_y", "val/ssim_y", "val/psnr_y_bicubic"} <= set(trainer.callback_metrics)
        lr = next(iter(dm.val_dataloader()))["input"]
        assert lr.shape[-2:] == (16, 16) and model.translate(lr).shape[-2:] == (64, 64)
        if init_from:  # the checkpoint another shipped config writes
            source = next(p for p in EXPERIMENTS if init_from.startswith(f"runs/{p.stem}/checkpoints/"))
            assert load_config(source)["model"]["class_path"].endswith(".SRResNet")
        assert not evaluation
    elif datamodule == "GaussianMixtureDataModule":
        assert model.image_shape == (2,) and dm.kind == "ring8" and dm.batch_size == 256
        [ev] = evaluation
        assert ev.requested == ("modes",)
    if family in ("BiGAN", "Autoencoder", "VAE"):  # grids: samples, then real images (the first of the first
        # training batch) and their reconstructions
        shown = min(model.hparams.num_grid_reconstructions, dm.batch_size)
        assert model.grid_images().shape[0] == model.hparams.num_grid_samples + 2 * shown


# --------------------------------------------------------------------------------------------------- the fragments
@pytest.mark.parametrize("fragment", LOGGER_FRAGMENTS, ids=[p.stem for p in LOGGER_FRAGMENTS])
def test_logger_fragment_follows_the_run_folder(fragment: Path, data_args, monkeypatch, tmp_path: Path):
    """A logger fragment changes the logger's class only: it logs into the base config's run folder."""
    from lightning.pytorch import loggers

    if fragment.stem == "wandb":
        pytest.importorskip("wandb", reason="wandb is an optional extra")
        monkeypatch.setenv("WANDB_MODE", "offline")
    expected = getattr(loggers, yaml.safe_load(fragment.read_text())["trainer"]["logger"]["class_path"].split(".")[-1])
    cli = GANCLI(
        args=[
            "--config",
            str(CONFIG_DIR / "dcgan_mnist.yaml"),
            "--config",
            str(fragment),
            "--trainer.default_root_dir",
            str(tmp_path / "run"),
            *data_args("MNISTDataModule"),
        ],
        run=False,
    )
    logger = cli.trainer.logger
    assert type(logger) is expected
    assert Path(logger.save_dir) == tmp_path / "run"


def test_every_evaluation_fragment_is_used():
    used = {
        item
        for p in EXPERIMENTS
        for item in (load_config(p)["trainer"].get("callbacks") or [])
        if isinstance(item, str)
    }
    assert {f"evaluation/{p.name}" for p in (CONFIG_DIR / "evaluation").glob("*.yaml")} == used


# ------------------------------------------------------------------------------------------------ configs are deltas
def _class_defaults(class_path: str) -> dict[str, Any]:
    """Constructor defaults of a class and of the classes its ``**kwargs`` reach (as jsonargparse resolves them)."""
    from jsonargparse._parameter_resolvers import get_signature_parameters

    module, name = class_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    return {p.name: p.default for p in get_signature_parameters(cls, None) if p.default is not inspect.Parameter.empty}


def _same(a: Any, b: Any) -> bool:
    return list(a) == list(b) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b


@pytest.mark.parametrize("config", EXPERIMENTS, ids=IDS)
def test_config_holds_only_what_differs_from_the_defaults(config: Path):
    """No model or datamodule value equal to its class's default, no setting equal to the shared defaults: each
    config is what makes its experiment, and a change of a default reaches every config."""
    shipped = load_config(config)
    for key in ("model", "data"):
        defaults = _class_defaults(shipped[key]["class_path"])
        for arg, value in (shipped[key].get("init_args") or {}).items():
            assert arg in defaults, f"{key}.init_args.{arg} is not an argument with a default"
            assert not _same(value, defaults[arg]), f"{key}.init_args.{arg}: {value!r} is the default"
    shared = yaml.safe_load(DEFAULTS_FILE.read_text())
    groups = {
        "trainer": "lightning.pytorch.Trainer",
        **{k: f"{c.__module__}.{c.__name__}" for k, c in CALLBACK_GROUPS.items()},
    }
    for group, class_path in groups.items():
        defaults = {**_class_defaults(class_path), **(shared.get(group) or {})}
        for arg, value in (shipped.get(group) or {}).items():
            assert arg not in defaults or not _same(value, defaults[arg]), f"{group}.{arg}: {value!r} is the default"
    if "seed_everything" in shipped:
        assert shipped["seed_everything"] != shared["seed_everything"]
