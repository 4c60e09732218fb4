"""Names to classes: the kit's registries of networks and noise models.

A name read from a weights, checkpoint or data file resolves only through a registry; a
'package.module:Class' path, which imports and runs code, is accepted only from the user's own
settings (`trusted=True`: params.yaml, the command line, Python calls), never from a file.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Callable

from pngan.errors import RegistryError

_PLAIN = (bool, int, float, str, type(None))


class Registry:
    """Registry name -> 'module:Class', the module imported on first use (cheap to import)."""

    def __init__(self, what: str, entries: dict[str, str]):
        self.what, self.entries = what, dict(entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def names(self) -> list[str]:
        return sorted(self.entries)

    def resolve(self, name: str, trusted: bool = False) -> Callable[..., Any]:
        """The class a name stands for; a 'module:Class' path only when `trusted`."""
        if not isinstance(name, str):
            raise RegistryError(f"{self.what} must be a name, got {name!r}")
        if name in self.entries:
            return _import(self.entries[name])
        if ":" in name and trusted:
            try:
                return _import(name)
            except (ImportError, AttributeError, ValueError) as err:
                raise RegistryError(f"cannot import {self.what} '{name}' ({err})") from err
        if ":" in name:
            raise RegistryError(f"{self.what} '{name}' is a code path; a file may only name the kit's {self.what}s: {', '.join(self.names())}")
        close = difflib.get_close_matches(name, self.entries, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise RegistryError(f"unknown {self.what} '{name}'{hint}; known: {', '.join(self.names())}")

    def build(self, name: str, kwargs: dict[str, Any] | None = None, trusted: bool = False) -> Any:
        """`resolve(name)(**kwargs)` once the arguments are checked against its signature."""
        cls = self.resolve(name, trusted)
        kwargs = dict(kwargs or {})
        check_arguments(cls, kwargs, f"{self.what} '{name}'")
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise RegistryError(f"{self.what} '{name}' refuses {kwargs}: {err}") from err


def _import(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def check_arguments(cls: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
    """Refuse keyword arguments the constructor does not take, and plain values whose type
    differs from the default's (e.g. width 'abc' for an int), naming the argument."""
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        known = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        for key in kwargs:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise RegistryError(f"{what} has no argument '{key}'{hint}; it takes: {', '.join(known) or 'none'}")
    for key, value in kwargs.items():
        default = params[key].default if key in params else inspect.Parameter.empty
        if not _same_kind(value, default):
            raise RegistryError(f"{what}: argument '{key}' expects {type(default).__name__} (default {default!r}), got {value!r}")


def _same_kind(value: Any, default: Any) -> bool:
    """True unless both are plain values of clearly different kinds (an int where a float is
    expected is fine; a bool is not a number here)."""
    if value is None or default is inspect.Parameter.empty or default is None or not isinstance(default, _PLAIN) or not isinstance(value, _PLAIN):
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) == isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return type(value) is type(default)
