"""Problems found while reading a config: what is wrong, where, and how to fix it.

Every check in `axo.config` reports through :class:`Problem` so that the CLI can show them all at once
(a user fixes five mistakes in one edit, not in five runs) and tests can assert on structured fields
instead of on rendered text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from axo.config.redact import redact_text


class Severity(str, Enum):
    """How bad a problem is. Errors stop a run; warnings and notes are shown and the run goes on."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


class Kind(str, Enum):
    """What sort of problem it is, so the CLI can group them and `strict` can promote some."""

    SYNTAX = "syntax"  # the file is not readable YAML
    TYPE = "type"  # a value has the wrong type or is not one of the allowed values
    CONFLICT = "conflict"  # two settings that cannot both hold
    UNKNOWN_KEY = "unknown-key"  # a key axo does not know (a typo, or another tool's key)
    UNSUPPORTED_KEY = "unsupported-key"  # a real Axolotl key that axo does not implement
    NOT_IMPLEMENTED = "not-implemented"  # an axo key whose feature has not landed yet
    DEPRECATED = "deprecated"  # an old spelling, translated to the current one
    MISSING_RESOURCE = "missing-resource"  # a path or model that is not on this machine
    DERIVED = "derived"  # a value axo computed from other values
    HARDWARE = "hardware"  # a setting this machine cannot run as written (e.g. 4-bit loading without a CUDA GPU)
    REMOTE_CODE = "remote-code"  # code from a model or dataset repository will run on this machine


@dataclass(frozen=True)
class Problem:
    """One finding about a config.

    Attributes:
        severity: error, warning or note.
        kind: the category, see :class:`Kind`.
        key: the key path in the config, e.g. ``datasets[1].type``; empty for the whole file.
        message: what is wrong, naming the bad value and what was expected.
        hint: how to fix it, when there is something to say.
        line: 1-based line of the key in the YAML file, when it came from the file.
        origin: where the value came from: the config file's path or the CLI flag that set it.
    """

    severity: Severity
    kind: Kind
    key: str
    message: str
    hint: str | None = None
    line: int | None = None
    origin: str | None = None

    def __post_init__(self) -> None:
        # Messages quote values, paths and library errors: a password in a URL or a token must reach neither
        # the screen nor a log (config/redact.py).
        for name in ("message", "hint", "origin"):
            if getattr(self, name):
                object.__setattr__(self, name, redact_text(getattr(self, name)))

    def location(self) -> str:
        """``file:line`` or ``--flag`` or the bare file, whichever is known."""
        if self.origin and self.line:
            return f"{self.origin}:{self.line}"
        return self.origin or ""

    def render(self) -> str:
        """One plain-text paragraph: location, key, message and hint."""
        where = self.location()
        head = f"{where}: " if where else ""
        key = f"{self.key}: " if self.key else ""
        text = f"{head}{self.severity.value}: {key}{self.message}"
        if self.hint:
            text += f" {self.hint}"
        return text


@dataclass
class ProblemList:
    """An ordered collection of problems with helpers for the common questions."""

    items: list[Problem] = field(default_factory=list)

    def add(self, problem: Problem) -> None:
        self.items.append(problem)

    def extend(self, problems: list[Problem] | ProblemList) -> None:
        self.items.extend(problems.items if isinstance(problems, ProblemList) else problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity is Severity.WARNING]

    @property
    def notes(self) -> list[Problem]:
        return [p for p in self.items if p.severity is Severity.NOTE]

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class ConfigError(Exception):
    """Raised when a config cannot be used; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))
