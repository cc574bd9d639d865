"""Errors about the user's data: they name the file, the row and the field, and say how to fix it."""

from __future__ import annotations

from axo.config.problems import ConfigError, Kind, Problem, Severity


class DataError(ConfigError):
    """Bad input data (a malformed line, a missing field, an empty dataset)."""


def data_error(message: str, *, origin: str | None = None, line: int | None = None, key: str = "",
               hint: str | None = None) -> DataError:
    """A DataError with one problem; `line` is the 1-based line (or row) in `origin`."""
    return DataError([Problem(Severity.ERROR, Kind.TYPE, key, message, hint, line, origin)])
