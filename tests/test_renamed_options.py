"""Options renamed in 0.2.0 (lightning_gans.renames) keep working for one release: in Python, in config files and flags,
and in checkpoints written by 0.1 (tests/fixtures/checkpoints_0_1, saved by the old code)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from lightning_gans import models
from lightning_gans.cli import GANCLI
from lightning_gans.renames import RENAMED, upgrade, upgrade_argv
from tests.conftest import quiet_trainer
from tests.families import TINY

OLD = Path(__file__).parent / "fixtures" / "checkpoints_0_1"

#: for each family, old keyword arguments and what they must become.
OLD_KWARGS = {
    "Pix2Pix": ({"base_channels": 4, "d_base_channels": 4}, {"g_channels": 4, "d_channels": 4}),
    "CycleGAN": ({"n_blocks": 1}, {"num_blocks": 1}),
    "GauGAN": ({"lambda_feat": 3.0}, {"lambda_d_features": 3.0}),
    "WGANGP": ({"lambda_gp": 5.0}, {"toolbox": {"gradient_penalty": 5.0}}),
    "SRResNet": ({"channels": 4, "tile_size": 16}, {"g_channels": 4, "tiling": {"size": 16}}),
    "SRGAN": ({"lambda_ssim": 0.5, "vgg_layer": "relu2_2"}, {"content": {"lambda_ssim": 0.5, "vgg_layer": "relu2_2"}}),
    "ESRGAN": ({"tile_overlap": 4, "lambda_pixel": 0.5}, {"tiling": {"overlap": 4}, "content": {"lambda_pixel": 0.5}}),
    "GANINTCLS": ({"text_dropout": 0.5}, {"text": {"dropout": 0.5}}),
    "DFGAN": ({"finetune_text_encoder": True}, {"text": {"finetune": True}}),
}


def _plain(value):
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def _groups(model) -> dict:
    """The resolved option groups and widths of a model (what its behaviour depends on)."""
    attrs = ("toolbox", "content", "tiling", "text_options", "lambda_d_features")
    return {a: _plain(getattr(model, a)) for a in attrs if hasattr(model, a)}


def test_every_renamed_family_is_tested_here():  # (EvaluationCallback: tests/test_evaluation_callback.py)
    assert set(OLD_KWARGS) == set(RENAMED) - {"EvaluationCallback"}


@pytest.mark.parametrize("name", sorted(OLD_KWARGS))
def test_old_keyword_arguments_warn_naming_the_new_option_and_build_the_same_model(name):
    old, new = OLD_KWARGS[name]
    base = dict(TINY[name].kwargs)
    for key, value in new.items():  # the new form on top of the tiny kwargs (groups merged field by field)
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    for key in old:
        base.pop(key, None)
    old_kwargs = dict(base)  # the same model with the moved options under their old names
    for key, value in new.items():
        if isinstance(value, dict):
            old_kwargs[key] = {f: v for f, v in base[key].items() if f not in value}
        else:
            old_kwargs.pop(key)
    old_kwargs.update(old)
    torch.manual_seed(0)
    with pytest.warns(FutureWarning, match=r"renamed in 0\.2\.0") as record:
        old_model = getattr(models, name)(**old_kwargs)
    message = str(record[0].message)
    for key in old:
        assert repr(key) in message and repr(RENAMED[name][key]) in message  # names the old and the new option
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        new_model = getattr(models, name)(**base)
    assert _groups(old_model) == _groups(new_model)
    for a, b in zip(old_model.state_dict().values(), new_model.state_dict().values()):
        assert torch.equal(a, b)


def test_an_old_name_together_with_its_new_name_is_refused():
    with pytest.raises(TypeError, match="both 'base_channels' .* and 'g_channels'"):
        models.Pix2Pix(**{**TINY["Pix2Pix"].kwargs, "base_channels": 8})


@pytest.mark.parametrize("name", sorted(OLD_KWARGS))
def test_checkpoints_of_0_1_load_with_their_options_mapped(name):
    saved = torch.load(OLD / f"{name}.ckpt", weights_only=True)
    model = getattr(models, name).load_from_checkpoint(OLD / f"{name}.ckpt", map_location="cpu", weights_only=True)
    for key, value in saved["state_dict"].items():
        assert torch.equal(model.state_dict()[key], value), key
    groups = _groups(model)
    expected = {  # the non-default values the 0.1 checkpoints were written with
        "WGANGP": ("toolbox", "gradient_penalty", 5.0),
        "GauGAN": ("lambda_d_features", None, 3.0),
        "SRResNet": ("tiling", "overlap", 8),
        "SRGAN": ("content", "vgg_layer", "relu2_2"),
        "ESRGAN": ("tiling", "overlap", 4),
        "GANINTCLS": ("text_options", "dropout", 0.25),
        "DFGAN": ("text_options", "finetune", True),
        "CycleGAN": ("lambda_identity", None, 0.25),
        "Pix2Pix": ("g_channels", None, 4),
    }[name]
    attr, field, value = expected
    got = groups.get(attr, getattr(model, attr, None)) if field is None else groups[attr][field]
    if field is None and attr not in groups:
        got = model.hparams[attr]
    assert got == value


def test_an_old_wgan_gp_checkpoint_resumes_with_the_new_names(tmp_path: Path):
    saved = torch.load(OLD / "WGANGP.ckpt", weights_only=True)
    g_steps = saved["lightning_gans"]["g_steps"]
    model = models.WGANGP(**{**TINY["WGANGP"].kwargs, "toolbox": {"gradient_penalty": 5.0}})
    batch = TINY["WGANGP"].batch()
    trainer = quiet_trainer(tmp_path, max_steps=saved["global_step"] + 2)
    trainer.fit(model, DataLoader([batch] * 4, batch_size=None), ckpt_path=OLD / "WGANGP.ckpt")
    assert model.g_steps == g_steps + 1  # one more batch: one D and one G step (n_critic 1)


def test_old_names_in_a_config_file_and_in_flags_are_renamed_on_the_command_line(tmp_path: Path):
    config = tmp_path / "old.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {
                    "class_path": "lightning_gans.models.WGANGP",
                    "init_args": {"lambda_gp": 3.0, "g_channels": 4, "d_channels": 4, "latent_dim": 8},
                },
                "data": {"class_path": "datamodules.MNISTDataModule", "init_args": {"data_dir": str(tmp_path)}},
                "trainer": {"default_root_dir": str(tmp_path / "run")},
            }
        )
    )
    with pytest.warns(FutureWarning, match=r"'lambda_gp' -> 'toolbox.gradient_penalty'"):
        args = upgrade_argv(["--config", str(config)])
    assert yaml.safe_load(args[1])["model"]["init_args"]["toolbox"] == {"gradient_penalty": 3.0}
    assert yaml.safe_load(config.read_text())["model"]["init_args"]["lambda_gp"] == 3.0  # the file is untouched
    with pytest.warns(FutureWarning, match=r"--model.init_args.lambda_gp' -> '--model.init_args.toolbox"):
        cli = GANCLI(args=["--config", str(config), "--model.init_args.lambda_gp", "7"], run=False)
    assert cli.model.toolbox.gradient_penalty == 7.0  # the flag wins over the file, as any flag
    assert upgrade("SRGAN", {"lambda_vgg": 0.0}, warn=False) == {"content": {"lambda_vgg": 0.0}}


def test_old_evaluation_callback_flags_are_renamed():
    with pytest.warns(
        FutureWarning, match=r"'--trainer.callbacks.kid_subset_size' -> .*metric_options.kid_subset_size"
    ):
        args = upgrade_argv(["--trainer.callbacks.kid_subset_size", "100", "--trainer.callbacks.init_args.cache=false"])
    assert args == ["--trainer.callbacks.metric_options.kid_subset_size", "100"] + [
        "--trainer.callbacks.init_args.real_cache.enabled=false"
    ]


@pytest.mark.parametrize("name", ["GANINTCLS", "DFGAN"])
def test_load_trained_needs_no_text_encoder_file_also_for_a_0_1_checkpoint(name):
    from lightning_gans.loading import load_trained

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model, info = load_trained(OLD / f"{name}.ckpt")
    assert info.family == name and model.text_options.checkpoint is None and model.text_options.sentence_dim == 8
