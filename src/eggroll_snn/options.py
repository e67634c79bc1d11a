"""The one check every option uses, and the lookup of an option's one default.

:func:`check` raises a :class:`~eggroll_snn.errors.ConfigError` that names the option
(``section.key``), its value and the allowed range, and records that range so that a wrong-type
error found later (while a TOML file is read) can state it too. :func:`default_of` reads an
option's default from the class that declares it, so every other place that offers the option
(a config section, the bench, the command-line help) derives it instead of repeating it.
"""

from __future__ import annotations

from typing import Any

from eggroll_snn.errors import ConfigError

ALLOWED: dict[str, str] = {}
"""``option -> allowed range`` as the checks state it; filled as the option classes are built."""


def check(condition: bool, option: str, value: Any, allowed: str) -> None:
    """Raise a :class:`ConfigError` naming ``option`` unless ``condition`` holds."""
    ALLOWED.setdefault(option, allowed)
    if not condition:
        raise ConfigError(f"option {option} = {value!r} is out of range: {allowed}")


def check_choice(value: Any, option: str, choices: tuple[str, ...]) -> None:
    """Raise a :class:`ConfigError` naming ``option`` unless ``value`` is one of ``choices``."""
    check(isinstance(value, str) and value in choices, option, value, f"one of {', '.join(choices)}")


def is_integer(value: Any) -> bool:
    """``value`` is an int and not a bool (TOML and Python both have ``true == 1``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def default_of(declaring_class: type, name: str) -> Any:
    """The default of option ``name`` in the dataclass that declares it."""
    return declaring_class.__dataclass_fields__[name].default


__all__ = ["ALLOWED", "check", "check_choice", "is_integer", "default_of"]
