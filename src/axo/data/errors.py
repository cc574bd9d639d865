"""Errors about the user's data: they name the file, the row and the field, and say how to fix it."""

from __future__ import annotations

from typing import Any

from axo.config.problems import ConfigError, Kind, Problem, Severity


class DataError(ConfigError):
    """Bad input data (a malformed line, a missing field, an empty dataset)."""


def data_error(message: str, *, origin: str | None = None, line: int | None = None, key: str = "",
               hint: str | None = None) -> DataError:
    """A DataError with one problem; `line` is the 1-based line (or row) in `origin`."""
    return DataError([Problem(Severity.ERROR, Kind.TYPE, key, message, hint, line, origin)])


def describe(value: Any, limit: int = 60) -> str:
    """What `value` is, in the words of the JSON the user wrote, with a short excerpt: `a list (JSON array)
    ['a', 'b']`, `a number 42`, `null`. Used by messages that say which type was found where text belongs."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, (int, float)):
        kind = "a number"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, (list, tuple)):
        kind = "a list (JSON array)"
    elif isinstance(value, dict):
        kind = "an object (JSON dict)"
    else:
        kind = f"a {type(value).__name__}"
    excerpt = repr(value)
    return f"{kind} {excerpt if len(excerpt) <= limit else excerpt[: limit - 1] + '…'}"
