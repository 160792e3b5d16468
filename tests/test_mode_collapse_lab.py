"""The mode-collapse lab: its rows compose with the base, build and train through the CLI, and its script writes the
table and figure.

The lab itself (``python benchmarks/mode_collapse_lab.py``, minutes) is not run here: every row gets one
``fast_dev_run`` step, and the script runs two rows for a few steps into a temporary folder.
"""

from __future__ import annotations

import dataclasses
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
from lightning_gans.toolbox import Toolbox

REPO = Path(__file__).resolve().parents[1]
LAB_DIR = REPO / "configs" / "lab"
BASE = LAB_DIR / "base.yaml"
CONFIGS = sorted(p for p in LAB_DIR.glob("*.yaml") if p != BASE)  # the rows: each runs as base + its delta


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


def _config_args(row: Path) -> list[str]:
    return ["--config", str(BASE), "--config", str(row)]


def _leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested mappings as ``{"a.b.c": value}`` (lists and other values are leaves)."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_lab_delta_holds_only_its_lab_lines(config: Path):
    """A row holds its run folder and the lines marked "# lab": each changes the base (no line repeats it), all in the
    model's arguments except the budget, which a row with n_critic D steps per G step scales to the same G steps."""
    name = config.stem
    text = config.read_text()
    delta = yaml.safe_load(text) or {}
    base = yaml.safe_load(BASE.read_text())
    assert delta["trainer"]["default_root_dir"] == f"runs/lab/{name}"
    assert f"--config configs/lab/base.yaml --config configs/lab/{config.name}" in text  # its command, in the header
    assert "class_path" not in text and not set(delta) - {"trainer", "model"}, f"{name}: only trainer and model lines"
    marked = {line.split(":")[0].strip() for line in text.splitlines() if "# lab" in line and not line.startswith("#")}
    changed = _leaves(delta)
    del changed["trainer.default_root_dir"]
    assert {key.split(".")[-1] if key.startswith("trainer.") else key.split(".")[2] for key in changed} == marked, name
    for key, value in changed.items():
        assert _leaves(base).get(key, object()) != value, f"{name}: {key} is the base's value"
    assert {k for k in changed if not k.startswith("model.init_args.")} <= {
        "trainer.max_epochs",
        "trainer.check_val_every_n_epoch",
    }
    # One epoch is one pass of D steps: n_critic times the epochs gives every row the same G steps.
    n_critic = delta.get("model", {}).get("init_args", {}).get("n_critic", 1)
    for key in ("max_epochs", "check_val_every_n_epoch"):
        assert delta["trainer"].get(key, base["trainer"][key]) == base["trainer"][key] * n_critic, (name, key)
    assert name == "ring8_nonsaturating" or changed, f"{name} is the baseline again"


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_lab_row_composes_into_the_base_with_its_changes(config: Path, monkeypatch, tmp_path):
    """Through the CLI (``run=False``: parsed, checked and built, not trained), base + row is a valid config whose
    resolved values are the base's except where the row changes them: same data, seed, evaluation, logger and
    networks in every row."""
    monkeypatch.setattr(sys, "argv", ["lightning-gans"])  # pytest's own arguments are not the CLI's
    root = str(tmp_path / "run")  # the same run folder for both: only what the row changes may differ

    def resolved(args: list[str]) -> dict[str, object]:
        cli = GANCLI(args=[*args, "--trainer.default_root_dir", root], run=False)
        assert type(cli.model) is GAN and isinstance(cli.datamodule, GaussianMixtureDataModule)
        config = cli.config.as_dict()
        init = config["model"]["init_args"]
        init["toolbox"] = dataclasses.asdict(Toolbox.of(init.get("toolbox")))  # null: the group's defaults
        return _leaves(config)

    row, base = resolved(_config_args(config)), resolved(["--config", str(BASE)])
    assert set(row) == set(base)
    delta = yaml.safe_load(config.read_text()) or {}
    assert {key for key in row if row[key] != base[key]} == set(_leaves(delta)) - {"trainer.default_root_dir"}


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_lab_config_fits_one_step_through_the_cli(config: Path, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["lightning-gans"])  # pytest's own arguments are not the CLI's
    cli = GANCLI(
        args=[
            "fit",
            *_config_args(config),
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
    for name in ("base", "ring8_nonsaturating", "ring8_hinge_sn"):
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
