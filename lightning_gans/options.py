"""What the typed option groups share (``Toolbox``, ``ContentLoss``, ``Tiling``, ``TextEncoderOptions``, the evaluation
callback's groups): a frozen dataclass whose ``Args:`` docstring is the CLI help, built from a constructor argument by
:meth:`OptionGroup.of` (an instance, a mapping as configs and checkpoints give it, or ``None``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

_G = TypeVar("_G", bound="OptionGroup")


@dataclass(frozen=True)
class OptionGroup:
    """Base of the option groups. A dataclass without fields, so jsonargparse takes a group as nested options (a YAML
    mapping, dotted flags), not as a class with a ``class_path``."""

    #: the constructor argument that holds the group, for messages
    _group: ClassVar[str] = ""

    def __post_init__(self) -> None:
        # jsonargparse (omegaconf+ mode) hands a nested field set to null on the command line
        # (``--model.init_args.text.checkpoint null``) over as the string "None"
        for field in dataclasses.fields(self):
            if getattr(self, field.name) == "None":
                object.__setattr__(self, field.name, None)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def of(cls: type[_G], value: _G | Mapping[str, Any] | None, default: _G | None = None) -> _G:
        """The group from a constructor argument: an instance; a mapping, which changes the fields it names of
        ``default`` (the family's own defaults; the class's when None); or None (``default``)."""
        default = cls() if default is None else default
        if value is None:
            return default
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(cls.names()))
            if unknown:
                raise ValueError(f"Unknown {cls._group} option(s) {unknown}. Valid: {cls.names()}")
            return dataclasses.replace(default, **value)
        raise TypeError(f"{cls._group} must be a mapping or a {cls.__name__}, got {type(value).__name__}")


__all__ = ["OptionGroup"]
