"""ONNX and torch.export programs of the sampling side (lightning_gans.exporting, `lightning-gans export --format
onnx|pt2`): every family that generates exports, or is refused naming why; the files give the module's images."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from lightning_gans import exporting
from lightning_gans.cli import main
from lightning_gans.exporting import TOLERANCE, ExportError
from lightning_gans.models import FAMILIES
from tests.families import TINY

REFUSED = {"GANINTCLS": "packs captions", "DFGAN": "packs captions"}
EXPORTABLE = sorted(set(TINY) - set(REFUSED))
#: ONNX for one family of each kind of input in the default run (the exporter is slow); all of them under -m slow.
ONNX_FAST = {"DCGAN", "CGAN", "StyleGAN", "SRResNet", "CycleGAN", "Autoencoder"}
#: the slowest to trace (5-8 s each); StyleGAN's ONNX export above covers its program in the default run
PT2_SLOW = {"StyleGAN", "GauGAN"}


def _model(name: str):
    torch.manual_seed(0)
    model = FAMILIES[name](**TINY[name].kwargs)
    if hasattr(model, "generator_mode"):
        model.generator_mode = "eval"  # Pix2Pix's default "train" (dropout at test time) is refused; see below
    return model


def _run_file(fmt: str, path: Path):
    if fmt == "pt2":
        loaded = torch.export.load(str(path)).module()
        return lambda inputs: loaded(*inputs)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return lambda inputs: torch.from_numpy(session.run(None, {n: x.numpy() for n, x in zip(names, inputs)})[0])


def _check(name: str, fmt: str, tmp_path: Path):
    model = _model(name)
    path, worst, prog = exporting.export(model, fmt, tmp_path / fmt)
    assert path.name == exporting.FILES[fmt] and worst <= TOLERANCE
    run = _run_file(fmt, path)
    shapes = set()
    for inputs in prog.inputs:  # two batch sizes (and two image sizes where the network takes them)
        want = exporting._reference(model, prog.names, inputs)
        got = run(inputs)
        assert got.shape == want.shape and float((got - want).abs().max()) <= TOLERANCE
        shapes.add(tuple(want.shape))
    assert len(shapes) == 2  # (U-Net, whose sizes are constrained: two batch sizes at the training size)
    assert not prog.notes or name == "Pix2Pix"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow if n in PT2_SLOW else ()) for n in EXPORTABLE])
def test_every_generating_family_exports_a_torch_export_program_that_gives_its_images(name, tmp_path):
    _check(name, "pt2", tmp_path)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=() if n in ONNX_FAST else pytest.mark.slow) for n in EXPORTABLE]
)
def test_onnx_export_gives_the_modules_images_in_onnxruntime(name, tmp_path):
    _check(name, "onnx", tmp_path)


def test_families_that_cannot_export_are_refused_naming_why(tmp_path):
    for name, why in REFUSED.items():
        with pytest.raises(ExportError, match=why):
            exporting.export(FAMILIES[name](**TINY[name].kwargs), "pt2", tmp_path / name)
    pix2pix = FAMILIES["Pix2Pix"](**TINY["Pix2Pix"].kwargs)  # generator_mode "train", its default
    with pytest.raises(ExportError, match=r"generator_mode 'train'.*generator_mode = 'eval'"):
        exporting.export(pix2pix, "onnx", tmp_path / "p")
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_export_command_writes_onnx_and_says_how_close_it_is(tmp_path, capsys):
    from lightning_gans.cli import main as cli

    model = _model("DCGAN")
    import lightning as L

    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_steps=0)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    cli(["export", "--ckpt_path", str(tmp_path / "m.ckpt"), "--format", "onnx", "--output", str(tmp_path / "o")])
    assert "generator.onnx matches the PyTorch module within" in capsys.readouterr().err
    assert (tmp_path / "o" / "generator.onnx").is_file()
    with mock.patch("importlib.util.find_spec", return_value=None), pytest.raises(SystemExit):
        main(["export", "--ckpt_path", str(tmp_path / "m.ckpt"), "--format", "onnx", "--output", str(tmp_path / "x")])
    assert 'pip install "lightning-gans[export]"' in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert np.isfinite(TOLERANCE)


def test_the_export_command_exports_pix2pix_in_eval_mode_when_asked(tmp_path, capsys):
    import lightning as L

    model = FAMILIES["Pix2Pix"](**TINY["Pix2Pix"].kwargs)  # trained in generator_mode "train"
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_steps=0)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "p.ckpt")
    args = ["export", "--ckpt_path", str(tmp_path / "p.ckpt"), "--format", "pt2"]
    with pytest.raises(SystemExit):
        main([*args, "--output", str(tmp_path / "a")])
    assert "--generator_mode eval" in capsys.readouterr().err
    main([*args, "--output", str(tmp_path / "b"), "--generator_mode", "eval"])
    assert "height and width fixed" in capsys.readouterr().err and (tmp_path / "b" / "generator.pt2").is_file()
