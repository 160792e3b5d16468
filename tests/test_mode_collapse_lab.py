"""The mode-collapse lab: its configs build and train through the CLI, and its script writes the table and figure.

The lab itself (``python benchmarks/mode_collapse_lab.py``, minutes) is not run here: every config gets one
``fast_dev_run`` step, and the script runs two configs for a few steps into a temporary folder.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from datamodules.mixtures import GaussianMixtureDataModule
from lightning_gans.callbacks.evaluation import EvaluationCallback
from lightning_gans.cli import GANCLI
from lightning_gans.models import GAN

REPO = Path(__file__).resolve().parents[1]
LAB_DIR = REPO / "configs" / "lab"
CONFIGS = sorted(LAB_DIR.glob("*.yaml"))


def _load_lab():
    spec = importlib.util.spec_from_file_location("mode_collapse_lab", REPO / "benchmarks" / "mode_collapse_lab.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


lab = _load_lab()


def test_lab_has_the_losses_and_options_of_the_issue():
    names = {p.stem for p in CONFIGS}
    assert 6 <= len(names) <= 10
    for name in (
        "ring8_nonsaturating",
        "ring8_nonsaturating_fm",
        "ring8_hinge",
        "ring8_hinge_sn",
        "ring8_wgan_gp",
        "ring8_lsgan",
    ):
        assert name in names


def _model_args(config: dict) -> dict:
    return dict(config["model"]["init_args"])


def test_lab_configs_differ_from_the_baseline_only_in_their_lab_lines():
    """Same data, seed, evaluation, networks, optimiser and G-step budget; only loss/toolbox lines differ."""
    base = yaml.safe_load((LAB_DIR / "ring8_nonsaturating.yaml").read_text())
    base_model = _model_args(base)
    for path in CONFIGS:
        text = path.read_text()
        config = yaml.safe_load(text)
        name = path.stem
        assert config["seed_everything"] == base["seed_everything"], name
        assert config["data"] == base["data"], name
        assert config["trainer"]["callbacks"] == base["trainer"]["callbacks"], name
        assert config["trainer"]["logger"]["class_path"] == base["trainer"]["logger"]["class_path"], name
        assert config["trainer"]["default_root_dir"] == f"runs/lab/{name}", name
        model = _model_args(config)
        n_critic = model.get("n_critic", 1)
        # One epoch is one pass of D steps: n_critic times the epochs gives every config the same G steps.
        assert config["trainer"]["max_epochs"] == base["trainer"]["max_epochs"] * n_critic, name
        assert config["trainer"]["check_val_every_n_epoch"] == base["trainer"]["check_val_every_n_epoch"] * n_critic
        changed = {k for k in set(model) | set(base_model) if model.get(k) != base_model.get(k)}
        marked = {line.split(":")[0].strip() for line in text.splitlines() if line.rstrip().endswith("# lab")}
        assert changed == marked, f"{name}: changed {sorted(changed)}, marked '# lab' {sorted(marked)}"
        assert name == "ring8_nonsaturating" or changed, f"{name} is the baseline again"


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_lab_config_fits_one_step_through_the_cli(config: Path, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["lightning-gans"])  # pytest's own arguments are not the CLI's
    cli = GANCLI(
        args=[
            "fit",
            "--config",
            str(config),
            "--trainer.fast_dev_run",
            "1",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
            "--data.init_args.num_samples",
            "512",
        ]
    )
    model, dm = cli.model, cli.datamodule
    assert type(model) is GAN and model.image_shape == (2,)  # linked from the datamodule
    assert isinstance(dm, GaussianMixtureDataModule) and dm.kind == "ring8" and dm.batch_size == 256
    assert model.loss in config.stem.replace("wgan_gp", "wasserstein")
    assert model.d_steps == 1 and model.g_steps == (1 if model.n_critic == 1 else 0)
    assert any(isinstance(cb, EvaluationCallback) for cb in cli.trainer.callbacks)
    options = {"_fm": ("feature_matching", 1.0), "_sn": ("spectral_norm_d", True), "_r1": ("r1_gamma", 1.0)}
    for suffix, (attr, value) in options.items():
        if config.stem.endswith(suffix):
            assert getattr(model.toolbox, attr) == value
    if config.stem.endswith("_ema"):
        assert model.hparams.ema_decay == 0.99 and model.generator_ema is not None
    if config.stem == "ring8_wgan_gp":
        assert (model.toolbox.gradient_penalty, model.n_critic) == (10.0, 5)


def test_describe_options_names_what_differs_from_the_base():
    toolbox, optimiser = lab.describe_options(
        {
            "toolbox": {"spectral_norm_d": True, "gradient_penalty": 10.0},
            "n_critic": 5,
            "lr_g": 1e-3,
            "lr_d": 1e-3,
            "betas": [0.5, 0.9],
        }
    )
    assert toolbox == "n_critic 5, gradient_penalty 10, spectral_norm_d"
    assert optimiser == "adam 0.001, betas (0.5, 0.9)"
    assert lab.describe_options({"betas": [0.5, 0.999]})[0] == "none"


def test_lab_script_writes_table_and_figure_for_a_tiny_run(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("ring8_nonsaturating", "ring8_hinge_sn"):
        (configs / f"{name}.yaml").write_text((LAB_DIR / f"{name}.yaml").read_text())
    out = tmp_path / "docs"
    threads = torch.get_num_threads()
    try:
        results = lab.main(
            [
                "--config-dir",
                str(configs),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--out-dir",
                str(out),
                "--",
                "--trainer.max_epochs",
                "2",
                "--trainer.check_val_every_n_epoch",
                "1",
                "--data.init_args.num_samples",
                "1024",
            ]
        )
    finally:
        torch.set_num_threads(threads)
    assert [r.name for r in results] == ["ring8_nonsaturating", "ring8_hinge_sn"]  # by loss, baseline first
    for r in results:
        assert r.g_steps == r.d_steps == 8  # 2 epochs of 4 batches of 256
        assert [g for g, _, _ in r.history] == [4, 8]  # evaluated after each epoch
        assert 0 <= r.modes_covered <= r.num_modes == 8 and 0.0 <= r.high_quality <= 1.0
        assert r.scatter.shape == (3, 256, 256) and r.wall_s > 0
    assert results[0].toolbox == "none" and results[1].toolbox == "spectral_norm_d"

    text = (out / "mode_collapse.md").read_text()
    assert lab.BEGIN in text and lab.END in text
    assert "| `ring8_hinge_sn` | hinge | spectral_norm_d | adam 0.001, betas (0.5, 0.999) |" in text
    assert "| `ring8_nonsaturating` | nonsaturating | none |" in text
    assert "8 generator steps" in text and "10,000 samples" in text
    figure = Image.open(out / "mode_collapse.png")
    assert figure.width > 3 * 256 and figure.height > 256  # data panel + two runs side by side
    assert (out / "mode_collapse.png").stat().st_size < 300_000

    # Rewriting keeps the hand-written observations outside the markers.
    (out / "mode_collapse.md").write_text(
        "# Title\n\nintro\n\n" + text[text.index(lab.BEGIN) :].replace("(Not written yet.)", "hinge_sn drifts.")
    )
    lab.write_report(results[1:], out, "cmd", 1.0)
    again = (out / "mode_collapse.md").read_text()
    assert again.startswith("# Title\n\nintro\n\n") and "hinge_sn drifts." in again
    assert "`ring8_nonsaturating`" not in again and "`ring8_hinge_sn`" in again


def test_compose_figure_titles_and_grid():
    panel = torch.full((3, 32, 32), 255, dtype=torch.uint8)
    image = lab.compose_figure([("a\nline two", panel)] * 5, columns=3, title_height=20)
    assert image.size == (3 * (32 + 6) + 6, 2 * (32 + 20 + 6) + 6)
    with pytest.raises(ValueError, match="no panels"):
        lab.compose_figure([])
