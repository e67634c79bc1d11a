"""A :class:`TrainConfig` from and to plain data: TOML files, ``--set section.key=value`` overrides.

Values are checked against each option's type with the option's name (ints widen to floats,
lists to tuples); unknown sections and keys are refused with their name. :func:`dumps` writes a
TOML file that :func:`loads` reads back to an equal config.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from eggroll_snn.config.sections import SECTIONS, TrainConfig
from eggroll_snn.errors import ConfigError
from eggroll_snn.options import ALLOWED as _ALLOWED


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _type_name(inner[0]) + " (or unset)"
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(hint)[0])}s"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _range_of(option: str) -> str:
    """``", allowed: <range>"`` for ``option`` (or its list), or "" when it has no range check."""
    if not _ALLOWED:
        for cls in SECTIONS.values():
            cls()  # the defaults pass every check, recording each option's range on the way
    allowed = _ALLOWED.get(option.split("[")[0])
    return f" ({allowed})" if allowed else ""


def _coerce(value: Any, hint: Any, option: str) -> Any:
    """Check ``value`` against the type ``hint`` of ``option``; ints widen to floats, lists to tuples."""
    origin = typing.get_origin(hint)
    wrong = ConfigError(f"option {option} = {value!r} has the wrong type: expected {_type_name(hint)}{_range_of(option)}")
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _coerce(value, inner[0], option)
    if origin is Literal:
        if value not in typing.get_args(hint) or not isinstance(value, str):
            raise ConfigError(f"option {option} = {value!r} is not allowed: expected {_type_name(hint)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise wrong
        item_hint = typing.get_args(hint)[0]
        return tuple(_coerce(item, item_hint, f"{option}[{index}]") for index, item in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise wrong
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range (TOML integers are unbounded here)
            raise ConfigError(
                f"option {option} = <an integer of {value.bit_length()} bits> is out of range: a number within +-1.8e308"
            ) from None
        if isinstance(value, int) and number != value:  # stored as another number than the one given
            raise ConfigError(
                f"option {option} = {value} is out of range: an integer a float holds exactly (|n| <= 2**53), or a float"
            )
        return number
    if hint is str:
        if not isinstance(value, str):
            raise wrong
        try:  # a path from the command line with non-UTF-8 bytes holds lone surrogates
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(
                f"option {option} = {value!r} is not allowed: expected text that UTF-8 can encode (the run's "
                "config.toml must store it); rename the file or folder"
            ) from None
        return value
    raise TypeError(f"unsupported option type {hint!r} for {option}")  # a bug in this module


def section_from_dict(name: str, table: Any) -> Any:
    """Build section ``name`` from a mapping of its options; unknown keys raise :class:`ConfigError`."""
    cls = SECTIONS[name]
    if not isinstance(table, Mapping):
        raise ConfigError(f"section [{name}] must be a table of options, got {table!r}")
    hints = typing.get_type_hints(cls)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"unknown option {name}.{unknown[0]}; the options of [{name}] are: {', '.join(sorted(known))}"
        )
    values = {key: _coerce(value, hints[key], f"{name}.{key}") for key, value in table.items()}
    return cls(**values)


def from_dict(tables: Any) -> TrainConfig:
    """Build a :class:`TrainConfig` from ``{"section": {"key": value}}``; missing keys take defaults."""
    if not isinstance(tables, Mapping):
        raise ConfigError(f"a configuration must be a table of sections, got {tables!r}")
    unknown = sorted(set(tables) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}]; the sections are: {', '.join(SECTIONS)}")
    return TrainConfig(**{name: section_from_dict(name, tables.get(name, {})) for name in SECTIONS})


def loads(text: str, source: str = "<string>", overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Parse TOML text into a validated :class:`TrainConfig`; ``source`` names it in errors.

    ``overrides`` (``{"section.key": value}``) are set before the config is built and validated.
    """
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    except (ValueError, RecursionError) as error:  # an integer of over 4300 digits; nesting too deep
        raise ConfigError(f"{source}: not valid TOML: {type(error).__name__}: {error}") from None
    if overrides:
        tables = override_tables(tables, overrides)  # an unknown override name is not the file's fault
    try:
        return from_dict(tables)
    except ConfigError as error:
        # An option set on the command line is the command line's fault, not the file's.
        given = [key for key in overrides or {} if f"option {key} " in str(error) or f"option {key}[" in str(error)]
        where = f"command-line option {given[0]}" if given else source
        raise ConfigError(f"{where}: {error}") from None


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a TOML config file (see ``configs/default.toml``), with ``overrides`` as :func:`loads`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    return loads(text, source=str(path), overrides=overrides)


# --------------------------------------------------------------------------------------------
# Overrides (`--set section.key=value` and the common command-line flags)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split ``"section.key=value"``; the value is read as a TOML value, else taken as a string.

    ``"strategy.sigma=0.1"`` -> ``("strategy.sigma", 0.1)``; ``"network.hidden_sizes=[64, 64]"``
    -> a list; ``"data.root=/data/nmnist"`` -> the string.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or "." not in key:
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. strategy.sigma=0.05)")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw
    except (ValueError, RecursionError) as error:  # an integer of over 4300 digits; nesting too deep
        raise ConfigError(f"override {key}: its value cannot be read ({type(error).__name__}: {error})") from None
    return key, value


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """``config`` with ``{"section.key": value}`` replaced; the result is validated as a whole."""
    return from_dict(override_tables(config.to_dict(), overrides))


def override_tables(tables: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """A copy of the plain tables ``{"section": {"key": value}}`` with ``overrides`` set (names checked).

    Applying overrides to the tables before the config is built lets a config file be completed by
    them (a tonic config file names its data set; ``--data`` gives the folder).
    """
    tables = {name: dict(table) if isinstance(table, Mapping) else table for name, table in tables.items()}
    for key, value in overrides.items():
        section, _, option = key.partition(".")
        if section not in SECTIONS:
            raise ConfigError(f"unknown option {key}: [{section}] is not a section ({', '.join(SECTIONS)})")
        known = sorted(field.name for field in dataclasses.fields(SECTIONS[section]))
        if option not in known:
            raise ConfigError(f"unknown option {key}; the options of [{section}] are: {', '.join(known)}")
        if isinstance(tables.setdefault(section, {}), dict):  # else from_dict names the malformed section
            tables[section][option] = value
    return tables


# --------------------------------------------------------------------------------------------
# TOML writer (the subset a TrainConfig needs: strings, numbers, booleans, flat lists)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        # TOML needs a fraction or exponent to read a float back as a float.
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        # JSON's escaped string is a valid TOML basic string once DEL, which TOML also forbids
        # raw and JSON leaves alone, is escaped too.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def dumps(config: TrainConfig, header: str = "") -> str:
    """The resolved config as TOML; unset (None) options appear as comments.

    ``loads(dumps(config)) == config`` for every valid config.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for name, table in config.to_dict().items():
        if lines:
            lines.append("")
        lines.append(f"[{name}]")
        for key, value in table.items():
            if value is None:
                lines.append(f"# {key} is unset")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def dump(config: TrainConfig, path: str | Path, header: str = "") -> None:
    """Write :func:`dumps` of ``config`` to ``path``."""
    Path(path).write_text(dumps(config, header), encoding="utf-8")


def options_missing_at_default(stored: Mapping[str, Any], config: TrainConfig) -> tuple[str, ...]:
    """``"section.key"`` of every option that ``stored`` (a config dict recorded before the option
    existed, e.g. in an older checkpoint) lacks while ``config`` holds it at its default: such an
    option cannot have changed, so a resume need not count it as a difference."""
    defaults, current = TrainConfig().to_dict(), config.to_dict()
    return tuple(
        f"{section}.{key}"
        for section, table in current.items()
        for key, value in table.items()
        if key not in (stored.get(section) if isinstance(stored.get(section), Mapping) else {})
        and value == defaults[section][key]
    )


__all__ = [
    "from_dict", "section_from_dict", "loads", "load", "dumps", "dump", "parse_assignment", "apply_overrides",
    "override_tables",
    "options_missing_at_default",
]
