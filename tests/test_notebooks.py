"""Notebooks are stored without outputs (CI executes them; see pyproject's nbmake options) and import the package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_is_a_quickstart_notebook():
    assert [p.name for p in NOTEBOOKS if p.name.startswith("01_")] == ["01_quickstart.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_stripped(path: Path):
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
            f"{path.name} holds outputs: clear them before committing "
            "(jupyter nbconvert --clear-output --inplace notebooks/*.ipynb)"
        )
    assert any("lightning_gans" in "".join(c["source"]) for c in code)
