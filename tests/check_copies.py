"""Marked copies stay copies, in the way of diffusers' ``utils/check_copies.py``.

A def or class may carry a marker on the comment line right above it (above its decorators, if any)::

    # Copied from lightning_gans.models.dcgan.DCGAN.training_step
    # Copied from lightning_gans.models.srgan.SRGAN.setup with SRGAN->ESRGAN

The marked block must equal its source, the def or class at that dotted path, once the renames after ``with``
(``A->B``, comma-separated, each a plain text replacement applied to the source in order) are made. The comparison is
on Python tokens: names, strings (docstrings too), numbers, operators and the indentation structure must match;
comments and blank lines may differ, so a copy can say in its own words what its family's step does. Sources are
found by reading files under the root, not by importing them, so a tree copied elsewhere can be checked too.

    python -m tests.check_copies      # prints each copy that differs from its source, exits 1 if any
"""

from __future__ import annotations

import ast
import io
import re
import sys
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path

MARKER = re.compile(r"^\s*# Copied from ([\w.]+)(?: with (.+))?\s*$")
#: folders of the repository that hold code with markers
PACKAGES = ("lightning_gans", "datamodules", "benchmarks", "tests")
_SKIPPED_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}


@dataclass(frozen=True)
class Copy:
    """One marker: the file and line it stands on, its source's dotted path and its renames."""

    file: Path
    line: int
    source: str
    renames: tuple[tuple[str, str], ...]

    def where(self, root: Path) -> str:
        return f"{self.file.relative_to(root)}:{self.line}"


def parse_renames(text: str | None, where: str) -> tuple[tuple[str, str], ...]:
    """``"A->B, C->D"`` -> ``(("A", "B"), ("C", "D"))``."""
    if not text:
        return ()
    pairs = []
    for part in text.split(","):
        old, arrow, new = part.strip().partition("->")
        if not arrow or not old.strip() or not new.strip():
            raise ValueError(f"{where}: a rename is written 'Old->New', got {part.strip()!r}")
        pairs.append((old.strip(), new.strip()))
    return tuple(pairs)


def find_copies(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Copy]:
    """Every ``# Copied from`` marker in the ``.py`` files of ``packages`` under ``root``."""
    copies = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")) if (root / package).is_dir() else []:
            with path.open() as f:
                comments = [t for t in tokenize.generate_tokens(f.readline) if t.type == tokenize.COMMENT]
            for tok in comments:  # a comment on a line of its own (not one inside a string or after code)
                if tok.line.strip() == tok.string.strip() and (match := MARKER.match(tok.string)):
                    where = f"{path.relative_to(root)}:{tok.start[0]}"
                    renames = parse_renames(match.group(2), where)
                    copies.append(Copy(path, tok.start[0], match.group(1), renames))
    return copies


def _definitions(body: list[ast.stmt]) -> dict[str, ast.AST]:
    return {n.name: n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _first_line(node: ast.AST) -> int:
    """The line a definition starts on: its first decorator's, or its own."""
    return min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])


def _block(lines: list[str], node: ast.AST) -> str:
    return textwrap.dedent("\n".join(lines[_first_line(node) - 1 : node.end_lineno])) + "\n"


def resolve(root: Path, dotted: str) -> tuple[Path, str]:
    """The file and the source text of the def or class at ``dotted`` (a module path, then names inside it)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        base = root.joinpath(*parts[:cut])
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                text = path.read_text()
                body, node = ast.parse(text).body, None
                for name in parts[cut:]:
                    node = _definitions(body).get(name)
                    if node is None:
                        raise LookupError(f"{path.relative_to(root)} defines no {'.'.join(parts[cut:])}")
                    body = getattr(node, "body", [])
                return path, _block(text.splitlines(), node)
    raise LookupError(f"no module of {dotted!r} under {root}")


def marked_block(copy: Copy) -> str:
    """The def or class that starts on the line after the marker (decorators included)."""
    text = copy.file.read_text()
    nodes = [
        n for n in ast.walk(ast.parse(text)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    for node in nodes:
        if _first_line(node) == copy.line + 1:
            return _block(text.splitlines(), node)
    raise LookupError("the marker is not on the line right above a def or class (or its decorators)")


def code_tokens(source: str) -> list[tuple[int, str, int]]:
    """(type, text, line) of each token but comments and blank lines; indentation is kept as structure only."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in _SKIPPED_TOKENS:
            continue
        text = "" if tok.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE) else tok.string
        out.append((tok.type, text, tok.start[0]))
    return out


def check_copy(root: Path, copy: Copy) -> str | None:
    """None when the marked block equals its source; otherwise what differs, naming the file and line."""
    try:
        source_path, source = resolve(root, copy.source)
        block = marked_block(copy)
    except (LookupError, SyntaxError) as error:
        return f"{copy.where(root)}: '# Copied from {copy.source}': {error}"
    for old, new in copy.renames:
        source = source.replace(old, new)
    mine, theirs = code_tokens(block), code_tokens(source)
    fix = "make the same change to the source and to every copy, or drop the marker if the copy is meant to differ"
    for a, b in zip(mine, theirs):
        if a[:2] != b[:2]:
            shown = [t[1] or tokenize.tok_name[t[0]] for t in (a, b)]
            return (
                f"{copy.where(root)}: the copy of {copy.source} ({source_path.relative_to(root)}) differs at line "
                f"{copy.line + a[2]}: {shown[0]!r} where the source has {shown[1]!r}; {fix}"
            )
    if len(mine) != len(theirs):
        longer = "copy" if len(mine) > len(theirs) else "source"
        return f"{copy.where(root)}: the copy of {copy.source} differs: the {longer} goes on longer; {fix}"
    return None


def check_copies(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """What differs, one message per stale or broken copy (empty when every copy matches its source)."""
    return [problem for copy in find_copies(root, packages) if (problem := check_copy(root, copy))]


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    problems = check_copies(root)
    print("\n".join(problems) or f"{len(find_copies(root))} marked copies match their sources")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
