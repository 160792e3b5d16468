"""Marked copies stay copies: every ``# Copied from`` block equals its source (tests/check_copies.py), and the check
fails, naming the file and line, when one token of a copy or of its source changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.check_copies import check_copies, find_copies

REPO = Path(__file__).resolve().parents[1]
MODELS = "lightning_gans/models"


def test_every_marked_copy_matches_its_source():
    assert check_copies(REPO) == []
    found = {
        (c.file.relative_to(REPO).as_posix(), c.source.rsplit(".", 2)[-2], c.source.rsplit(".", 1)[-1])
        for c in find_copies(REPO)
    }
    expected = {
        *((f"{MODELS}/{family}.py", "DCGAN", "training_step") for family in ("gan", "sagan", "sngan")),
        (f"{MODELS}/esrgan.py", "SRGAN", "training_step"),
        (f"{MODELS}/esrgan.py", "SRGAN", "setup"),
        *(
            (f"{MODELS}/dfgan.py", "GANINTCLS", hook)
            for hook in (
                "setup",
                "on_load_checkpoint",
                "sample",
                "interpolate",
                "grid_images",
                "grid_captions",
                "predict_dataloader",
                "predict_step",
            )
        ),
        *((f"{MODELS}/{f}.py", "SRResNet", "validation_step") for f in ("srgan", "esrgan")),
        (f"{MODELS}/cyclegan.py", "Pix2Pix", "setup"),  # GauGAN's also loads its VGG at fit
        (f"{MODELS}/gaugan.py", "Pix2Pix", "validation_step"),
    }
    assert expected <= found, sorted(expected - found)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the models package in tmp_path, for the check to find changes in."""
    shutil.copytree(REPO / MODELS, tmp_path / MODELS)
    assert check_copies(tmp_path) == []
    return tmp_path


def _edit(path: Path, after: str, old: str, new: str) -> int:
    """Replaces the first ``old`` that follows the line containing ``after``; returns that marker's line and the
    changed line (1-based)."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    changed = next(i for i in range(start, len(lines)) if old in lines[i])
    lines[changed] = lines[changed].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n")
    return start + 1, changed + 1


def test_one_changed_token_in_a_copy_fails_naming_the_file_and_line(tree: Path):
    marker, line = _edit(
        tree / MODELS / "gan.py", "# Copied from lightning_gans.models.dcgan", "opt_d.step()", "opt_g.step()"
    )
    problems = check_copies(tree)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{MODELS}/gan.py:{marker}: the copy of lightning_gans.models.dcgan.DCGAN.training_step"
    )
    assert f"differs at line {line}: 'opt_g' where the source has 'opt_d'" in problems[0]


def test_a_changed_source_fails_every_copy_of_it(tree: Path):
    _edit(tree / MODELS / "dcgan.py", "def training_step", "% self.n_critic == 0", "% self.n_critic == 1")
    problems = check_copies(tree)
    assert sorted(p.split(":")[0] for p in problems) == [f"{MODELS}/{f}.py" for f in ("gan", "sagan", "sngan")]
    assert all("'0' where the source has '1'" in p for p in problems)


def test_comments_may_differ_but_not_code_strings_or_renames(tree: Path):
    gan = tree / MODELS / "gan.py"
    _edit(gan, "# Copied from lightning_gans.models.dcgan", "# 1. D step", "# 1. The discriminator's step")
    assert check_copies(tree) == []
    esrgan = tree / MODELS / "esrgan.py"
    _edit(esrgan, "SRGAN.setup with SRGAN->ESRGAN", " with SRGAN->ESRGAN", "")  # the rename is what made it equal
    [problem] = check_copies(tree)
    assert "esrgan.py" in problem and "'\"ESRGAN\"' where the source has '\"SRGAN\"'" in problem
    _edit(tree / MODELS / "dfgan.py", "GANINTCLS.sample", "see :func:", "see the function")  # a docstring is code
    assert any("dfgan.py" in p and "GANINTCLS.sample" in p for p in check_copies(tree))


def test_broken_markers_are_reported(tree: Path):
    _edit(tree / MODELS / "sngan.py", "# Copied from", "DCGAN.training_step", "DCGAN.trainig_step")
    _edit(tree / MODELS / "sagan.py", "# Copied from", "training_step", "training_step\n    steps = 1")
    problems = " ".join(check_copies(tree))
    assert "sngan.py" in problems and "defines no DCGAN.trainig_step" in problems
    assert "sagan.py" in problems and "not on the line right above a def or class" in problems
