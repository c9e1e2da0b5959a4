"""Config dataclasses resolved from defaults, then a TOML file, then ``--key=value`` flags (nanoGPT's
configurator, typed): nested dataclasses take dotted keys (``--model.lora_rank=8``); unknown keys fail."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _convert(kind: type, value: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    if kind is bool:
        if value.lower() not in _TRUE | _FALSE:
            raise ValueError(f"--{key} takes true or false, not {value!r}")
        return value.lower() in _TRUE
    try:
        return kind(value)
    except ValueError as error:
        raise ValueError(f"--{key}: {error}") from None


def build(cls: type[C], values: Mapping[str, Any], prefix: str = "") -> C:
    """``cls`` from a (nested) mapping; an unknown key raises ValueError naming it and the known ones."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"unknown config key {prefix}{unknown[0]}; known: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in values.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            kwargs[name] = build(kind, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _convert(kind, value, prefix + name)
    return cls(**kwargs)


def parse_config(cls: type[C], argv: Sequence[str] | None = None) -> C:
    """``--config FILE`` (TOML) first, then ``--key=value`` / ``--key value`` flags, over ``cls``'s defaults."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    values: dict[str, Any] = {}
    if "--config" in args:
        at = args.index("--config")
        values = tomllib.loads(Path(args[at + 1]).read_text())
        del args[at:at + 2]
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ValueError(f"expected --key=value, got {arg!r}")
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            key, value, i = arg[2:], args[i + 1], i + 1
        else:
            key, value = arg[2:], "true"  # a bare flag: --resume
        target = values
        *parents, leaf = key.replace("-", "_").split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
        i += 1
    return build(cls, values)
