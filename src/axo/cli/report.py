"""Show a loaded config and its problems to a person (rich) or a program (JSON)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape

from axo.config.keys import user_keys
from axo.config.load import LoadedConfig, load_config
from axo.config.overrides import parse_overrides
from axo.config.problems import Kind, Problem, Severity
from axo.config.redact import redact
from axo.config.resources import unwritable_folders
from axo.config.schema import AxoConfig
from axo.config.support import NOT_IMPLEMENTED

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.NOTE: "cyan"}


def config_as_dict(config: AxoConfig) -> dict[str, Any]:
    """The resolved config as plain data, Axolotl key spellings, unset keys left out, secrets redacted."""
    return redact(config.model_dump(mode="json", by_alias=True, exclude_none=True))


def config_as_yaml(config: AxoConfig) -> str:
    return yaml.safe_dump(config_as_dict(config), sort_keys=False, allow_unicode=True, width=110)


def _where(problem: Problem) -> str:
    if problem.line:
        return f"line {problem.line}"
    if problem.origin and problem.origin.startswith("--"):
        return problem.origin
    return ""


def _line(console: Console, problem: Problem) -> None:
    where = _where(problem)
    head = f"[{_STYLE[problem.severity]}]{problem.severity.value}[/]"
    location = f" [dim]({where})[/]" if where else ""
    key = f" [bold]{escape(problem.key)}[/]" if problem.key else ""
    hint = f"\n    [green]fix:[/] {escape(problem.hint)}" if problem.hint else ""
    console.print(f"  {head}{key}{location}: {escape(problem.message)}{hint}", highlight=False, soft_wrap=True)


def print_problems(console: Console, loaded: LoadedConfig) -> None:
    """Errors first, then warnings, then notes; not-yet-implemented keys grouped by feature."""
    problems = loaded.problems
    pending = [p for p in problems if p.kind is Kind.NOT_IMPLEMENTED and p.severity is Severity.WARNING]
    rest = [p for p in problems if p not in pending]
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTE: 2}
    if rest:
        console.print(f"[bold]{escape(loaded.origin)}[/]", highlight=False)
    for problem in sorted(rest, key=lambda p: order[p.severity]):
        _line(console, problem)
    if pending:
        by_feature: dict[str, list[Problem]] = defaultdict(list)
        for problem in pending:
            by_feature[NOT_IMPLEMENTED.get(_field(problem.key), "other")].append(problem)
        console.print("[yellow]Not implemented yet[/] (validated; no effect until the feature lands):", highlight=False)
        for feature, items in by_feature.items():
            keys = ", ".join(f"{p.key}" + (f" (line {p.line})" if p.line else "") for p in items)
            console.print(f"  [yellow]warning[/] {escape(feature)}: {escape(keys)}", highlight=False, soft_wrap=True)


def _field(key: str) -> str:
    return user_keys(AxoConfig).get(key, key)


def print_errors(console: Console, problems: list[Problem]) -> None:
    """Each problem on its own line(s), as `render()` words it (location, severity, key, message, fix)."""
    for problem in problems:
        console.print(f"[bold red]{escape(problem.render())}[/]", highlight=False, soft_wrap=True)


def load_for_run(config: Path, args: list[str], strict: bool, err: Console) -> AxoConfig:
    """The validated config for a command that acts on it (`preprocess`, `train`): problems printed and
    exit 1 when invalid; the warnings a user should see before a run (unknown keys, conflicts, keys whose
    feature has not landed) printed, the rest left to `axo validate`.

    Raises:
        ConfigError: for malformed `--key value` overrides.
    """
    import typer

    loaded = load_config(config, parse_overrides(args), strict=strict)
    if loaded.ok:  # both commands prepare data into this folder first
        loaded.problems += unwritable_folders(loaded.require(), ("dataset_prepared_path",))
        loaded.config = loaded.config if not loaded.errors else None
    if not loaded.ok:
        print_problems(err, loaded)
        raise typer.Exit(1)
    for problem in loaded.problems:
        if problem.severity is Severity.WARNING and problem.kind is not Kind.MISSING_RESOURCE:
            err.print(f"[yellow]{escape(problem.render())}[/]", highlight=False, soft_wrap=True)
    return loaded.require()


def summary(loaded: LoadedConfig) -> str:
    errors = sum(p.severity is Severity.ERROR for p in loaded.problems)
    warnings = sum(p.severity is Severity.WARNING for p in loaded.problems)
    verdict = "valid" if loaded.ok else "INVALID"
    return f"{loaded.origin}: {verdict} ({errors} error(s), {warnings} warning(s))"


def as_json(loaded: LoadedConfig) -> str:
    """Machine-readable result: validity, the resolved config and every problem."""
    return json.dumps(
        {
            "valid": loaded.ok,
            "origin": loaded.origin,
            "config": config_as_dict(loaded.config) if loaded.config is not None else None,
            "problems": [
                {"severity": p.severity.value, "kind": p.kind.value, "key": p.key, "message": p.message,
                 "hint": p.hint, "line": p.line, "origin": p.origin}
                for p in loaded.problems
            ],
        },
        indent=2,
    )
