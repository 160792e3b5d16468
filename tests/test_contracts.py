"""The contracts of the functions shared by a group of families (issue 25): each group module states what it uses of a
family as a ``typing.Protocol``; every registered family that calls the group's functions satisfies it, and the
functions read or write no attribute of the family that the protocol does not name."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

from lightning_gans import image2image, models, superres, text2image
from tests.families import TINY

#: group module -> the protocol its shared functions take.
GROUPS = {
    image2image: image2image.PairedFamily,
    superres: superres.SuperResolutionFamily,
    text2image: text2image.TextFamily,
}


def _members(protocol: type) -> set[str]:
    names = set(typing.get_type_hints(protocol, globalns=vars(inspect.getmodule(protocol))))
    return names | {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("__")}


def _functions_taking(module, protocol: type) -> list[ast.FunctionDef]:
    """The module's functions with a parameter annotated with ``protocol`` (by name)."""
    tree = ast.parse(Path(module.__file__).read_text())
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(a.annotation, ast.Name) and a.annotation.id == protocol.__name__ for a in node.args.args)
    ]


def _family_files_calling(module, functions: list[str]) -> list[str]:
    """The registered families whose file calls one of ``functions``: imported by name from ``module``, or called as
    ``alias.fn(...)`` where ``alias`` is ``module`` imported."""
    users = []
    for name in TINY:
        tree = ast.parse(Path(inspect.getfile(getattr(models, name))).read_text())
        by_name, aliases = set(), set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == module.__name__:
                by_name |= {a.asname or a.name for a in node.names if a.name in functions}
            elif isinstance(node, ast.ImportFrom) and f"{node.module}.{node.names[0].name}" == module.__name__:
                aliases |= {a.asname or a.name for a in node.names}
        calls = [
            node.func
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id in by_name)
                or (
                    isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in aliases
                    and node.func.attr in functions
                )
            )
        ]
        if calls:
            users.append(name)
    return users


def _has(module, name: str) -> bool:
    """``hasattr`` without running properties (Lightning's ``trainer`` raises until a Trainer is attached), seeing
    submodules and buffers (kept in nn.Module's own dicts)."""
    if any(name in getattr(module, d) for d in ("_modules", "_buffers", "_parameters")):
        return True
    try:
        inspect.getattr_static(module, name)
    except AttributeError:
        return False
    return True


@pytest.mark.parametrize("module", list(GROUPS), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_shared_functions_use_only_what_their_protocol_names(module):
    protocol = GROUPS[module]
    allowed = _members(protocol)
    functions = _functions_taking(module, protocol)
    assert functions, f"no function of {module.__name__} takes a {protocol.__name__}"
    undeclared = {}
    for fn in functions:
        params = {a.arg for a in fn.args.args if getattr(a.annotation, "id", None) == protocol.__name__}
        used = {
            node.attr
            for node in ast.walk(fn)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in params
        }
        if used - allowed:
            undeclared[fn.name] = sorted(used - allowed)
    assert not undeclared, f"{module.__name__}: attributes used but not in {protocol.__name__}: {undeclared}"


@pytest.mark.parametrize("module", list(GROUPS), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_family_of_the_group_satisfies_its_protocol(module):
    protocol = GROUPS[module]
    functions = [fn.name for fn in _functions_taking(module, protocol)]
    families = _family_files_calling(module, functions)
    assert families, f"no registered family calls {module.__name__}'s {functions}"
    for name in families:
        family = getattr(models, name)(**TINY[name].kwargs)
        missing = [m for m in sorted(_members(protocol)) if not _has(family, m)]
        assert not missing, f"{name} lacks {missing} of {protocol.__name__}"


def test_the_groups_are_the_expected_families():
    """The scan above finds the families a reader would expect (so a family cannot drop out of the check unseen)."""
    found = {
        m.__name__.rsplit(".", 1)[-1]: set(_family_files_calling(m, [fn.name for fn in _functions_taking(m, p)]))
        for m, p in GROUPS.items()
    }
    assert found == {
        "image2image": {"Pix2Pix", "GauGAN"},
        "superres": {"SRResNet", "SRGAN", "ESRGAN"},
        "text2image": {"GANINTCLS", "DFGAN"},
    }
