"""The declared floors of the pure-Python dependencies, read from pyproject.toml, for CI's floor environment.

    python .ci/floors.py           # prints the requirements that pin each floor: lightning==2.5.2 ...
    python .ci/floors.py --check   # exits 1 unless the installed versions are those floors; prints them

torch and torchvision are not among them: their older wheels cannot be installed on CI's machine, so the floor
environment runs on the torch of the CI environment (README's install section says which versions were tested).
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

FLOORED = ("lightning", "torchmetrics", "jsonargparse", "omegaconf")
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def floors() -> dict[str, Requirement]:
    """{name: requirement} of each FLOORED dependency, as pyproject.toml declares it (each must have a ``>=``)."""
    declared = {}
    for line in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name in FLOORED:
            declared[requirement.name] = requirement
    has_floor = {name: any(s.operator == ">=" for s in r.specifier) for name, r in declared.items()}
    missing = [name for name in FLOORED if not has_floor.get(name)]
    if missing:
        sys.exit(f"pyproject.toml declares no '>=' floor for {', '.join(missing)}: each of {FLOORED} needs one")
    return declared


def floor_version(requirement: Requirement) -> str:
    return next(s.version for s in requirement.specifier if s.operator == ">=")


def pins() -> list[str]:
    """``name[extras]==floor`` for each FLOORED dependency."""
    out = []
    for name, requirement in floors().items():
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        out.append(f"{name}{extras}=={floor_version(requirement)}")
    return out


def check() -> int:
    """0 when every FLOORED package is installed at its floor (a floor '2.1' matches '2.1.0')."""
    wrong, found = [], []
    for name, requirement in floors().items():
        floor, installed = floor_version(requirement), version(name)
        found.append(f"{name} {installed}")
        if Requirement(f"{name}=={floor}").specifier.contains(installed, prereleases=True) is False:
            wrong.append(f"{name} {installed} (floor {floor})")
    print(f"floor environment: {', '.join(found)}; torch {version('torch')}, torchvision {version('torchvision')}")
    if wrong:
        print(f"not at the declared floors: {', '.join(wrong)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(check())
    print(" ".join(pins()))
