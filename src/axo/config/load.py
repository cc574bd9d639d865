"""Read a config the way Axolotl does, and report everything that is wrong, ignored or derived.

The pipeline, in order: read YAML safely -> translate axolotl-rs nesting -> apply CLI overrides ->
translate deprecated spellings -> remove (and report) unknown keys -> validate types with pydantic ->
check cross-key rules -> derive values -> warn about keys whose feature has not landed -> check that
the paths it names exist.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from axo.config.aliases import translate_deprecated
from axo.config.derive import derive_values
from axo.config.hardware import Hardware, detect_hardware
from axo.config.keys import remove_unknown_keys, user_keys
from axo.config.nested import SECTIONS as NESTED_SECTIONS
from axo.config.nested import is_nested, translate_nested
from axo.config.overrides import Override, apply_override
from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.resources import check_resources
from axo.config.rules import Finding, check_rules
from axo.config.schema import AxoConfig
from axo.config.support import not_implemented_message
from axo.config.validation_errors import problems_from_validation_error
from axo.config.yaml_io import KeyPath, YamlDocument, parse_yaml_text, read_yaml_file

_STRICT_KINDS = (Kind.UNKNOWN_KEY, Kind.UNSUPPORTED_KEY, Kind.NOT_IMPLEMENTED)


@dataclass
class LoadedConfig:
    """The outcome of reading a config: the typed config (None when it has errors) and every problem."""

    config: AxoConfig | None
    problems: list[Problem]
    origin: str
    user_set: set[str] = field(default_factory=set)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def ok(self) -> bool:
        return self.config is not None and not self.errors

    def require(self) -> AxoConfig:
        """The config, or :class:`ConfigError` listing every error."""
        if not self.ok or self.config is None:
            raise ConfigError(self.errors)
        return self.config


class _Locator:
    """Finds the file line (or CLI flag) a key path came from."""

    def __init__(self, doc: YamlDocument, sources: dict[KeyPath, KeyPath], flags: dict[KeyPath, str]):
        self.doc, self.sources, self.flags = doc, sources, flags
        self.renamed: dict[KeyPath, KeyPath] = {}  # current spelling -> deprecated spelling the user wrote

    def __call__(self, path: KeyPath) -> tuple[int | None, str | None]:
        for depth in range(len(path), 0, -1):
            if path[:depth] in self.renamed:
                path = self.renamed[path[:depth]] + path[depth:]
                break
        for depth in range(len(path), 0, -1):
            prefix = path[:depth]
            if prefix in self.sources:  # translated from a nested axolotl-rs section
                path = self.sources[prefix] + path[depth:]
                break
        for depth in range(len(path), 0, -1):
            if path[:depth] in self.flags:
                return None, self.flags[path[:depth]]
        return self.doc.line_of(path), self.doc.origin


def load_config(path: str | Path, overrides: list[Override] | None = None, *, strict: bool = False,
                hardware: Hardware | None = None) -> LoadedConfig:
    """Read and validate the config file at `path`.

    Args:
        path: the YAML file.
        overrides: `--key value` overrides, applied after the file.
        strict: make unknown, unsupported and not-yet-implemented keys errors (as `strict: true` does).
        hardware: the accelerator to resolve `auto` values for (default: this machine's).

    Returns:
        The loaded config with its problems. A file that cannot be read at all is reported the same way.
    """
    try:
        doc = read_yaml_file(path)
    except ConfigError as exc:
        return LoadedConfig(None, exc.problems, str(path))
    return _resolve(doc, overrides or [], strict, hardware, Path(path).resolve().parent)


def resolve_config(data: dict[str, Any] | str, overrides: list[Override] | None = None, *, strict: bool = False,
                   hardware: Hardware | None = None, origin: str = "<config>",
                   config_dir: Path | None = None) -> LoadedConfig:
    """Validate config data given as a mapping or as YAML text (same rules as :func:`load_config`)."""
    try:
        doc = parse_yaml_text(data, origin) if isinstance(data, str) else YamlDocument(copy.deepcopy(data), origin)
    except ConfigError as exc:
        return LoadedConfig(None, exc.problems, origin)
    return _resolve(doc, overrides or [], strict, hardware, config_dir)


def _locate_findings(findings: list[Finding], locate: _Locator) -> list[Problem]:
    problems = []
    for finding in findings:
        path: KeyPath = tuple(int(p) if p.isdigit() else p
                              for p in finding.key.replace("[", ".").replace("]", "").split("."))
        line, origin = locate(path)
        problems.append(Problem(finding.severity, finding.kind, finding.key, finding.message, finding.hint, line, origin))
    return problems


def _resolve(doc: YamlDocument, overrides: list[Override], strict: bool, hardware: Hardware | None,
             config_dir: Path | None) -> LoadedConfig:
    problems: list[Problem] = list(doc.problems)
    data = doc.data
    sources: dict[KeyPath, KeyPath] = {}
    flags: dict[KeyPath, str] = {}
    nested = is_nested(data)
    # `--training.epochs 5` on a nested file edits the nested section, before translation.
    early = [o for o in overrides if nested and str(o.path[0]) in NESTED_SECTIONS and len(o.path) > 1]
    problems += _apply_overrides(data, early, flags)
    if nested:
        data, sources, nested_problems = translate_nested(data, doc.origin, doc.lines)
        problems += nested_problems
    problems += _apply_overrides(data, [o for o in overrides if o not in early], flags)
    locate = _Locator(doc, sources, flags)

    deprecations, locate.renamed = translate_deprecated(data, locate)
    problems += deprecations
    problems += remove_unknown_keys(data, AxoConfig, locate)
    data = _drop_blank(data)
    spelled = user_keys(AxoConfig)
    user_set = {spelled[key] for key in data}

    strict = strict or str(data.get("strict")).lower() in ("true", "yes", "on", "1")
    for key in sorted(data, key=lambda k: locate((k,))[0] or 0):
        message = not_implemented_message(spelled[key])
        if message:
            line, origin = locate((key,))
            problems.append(Problem(Severity.WARNING, Kind.NOT_IMPLEMENTED, key, message, line=line, origin=origin))
    if strict:
        problems = [_promote(p) for p in problems]

    try:
        config = AxoConfig.model_validate(data)
    except ValidationError as exc:
        problems += problems_from_validation_error(exc, data, AxoConfig, locate)
        return LoadedConfig(None, problems, doc.origin, user_set)

    problems += _locate_findings(check_rules(config, user_set), locate)
    config, notes = derive_values(config, hardware or detect_hardware())
    problems += _locate_findings(notes, locate)
    problems += check_resources(config, locate, config_dir)
    failed = any(p.severity is Severity.ERROR for p in problems)
    return LoadedConfig(None if failed else config, problems, doc.origin, user_set)


def _apply_overrides(data: dict[str, Any], overrides: list[Override], flags: dict[KeyPath, str]) -> list[Problem]:
    problems: list[Problem] = []
    for override in overrides:
        try:
            apply_override(data, override)
        except ConfigError as exc:
            problems += exc.problems
            continue
        flags[override.path] = override.flag
    return problems


def _drop_blank(value: Any) -> Any:
    """A blank `key:` means "unset", as in Axolotl: drop it (at any depth) so the default applies."""
    if isinstance(value, dict):
        return {key: _drop_blank(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_drop_blank(item) for item in value]
    return value


def _promote(problem: Problem) -> Problem:
    if problem.kind not in _STRICT_KINDS or problem.severity is Severity.ERROR:
        return problem
    return Problem(Severity.ERROR, problem.kind, problem.key, problem.message,
                   (problem.hint + " " if problem.hint else "") + "(An error because `strict` is on.)",
                   problem.line, problem.origin)
