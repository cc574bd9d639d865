"""`--key value` overrides from the command line, applied to the raw config data.

`--learning-rate 1e-4` and `--learning_rate 1e-4` are the same; `--datasets.0.path x` reaches into lists
and mappings; `--key=value` works; a flag with no value means `true`. Values are parsed as YAML scalars,
so they get the same types as in the file (`--lora-r 16` is an int, `--bf16 false` a bool).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.yaml_io import KeyPath, format_key_path


@dataclass(frozen=True)
class Override:
    """One `--key value` from the command line."""

    path: KeyPath
    value: Any
    flag: str  # as the user typed it, for messages


def _usage_error(flag: str, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError([Problem(Severity.ERROR, Kind.TYPE, flag, message, hint, origin="command line")])


def _parse_path(flag: str, name: str) -> KeyPath:
    parts: list[str | int] = []
    for raw in name.split("."):
        if raw.startswith("-") and raw[1:].isdigit():
            raise _usage_error(flag, f"uses a negative index {raw}.", "Count list entries from 0.")
        if not raw:
            raise _usage_error(flag, "has an empty part in its key path.", "Write nested keys as `--a.b value`.")
        parts.append(int(raw) if raw.isdigit() else raw.replace("-", "_"))
    if isinstance(parts[0], int):
        raise _usage_error(flag, "must start with a key name, not an index.")
    return tuple(parts)


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text  # not valid YAML on its own (e.g. `a: b: c`): keep the literal string


def parse_overrides(args: list[str]) -> list[Override]:
    """Turn leftover CLI arguments into overrides.

    Raises:
        ConfigError: for an argument that is not `--key`, or a malformed key path.
    """
    overrides: list[Override] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("--") or len(arg) == 2:
            raise _usage_error(arg, "is not an option.", "Overrides look like `--learning-rate 1e-4`.")
        name, has_equals, inline = arg[2:].partition("=")
        if has_equals:
            value: Any = _parse_value(inline)
            index += 1
        elif index + 1 < len(args) and not args[index + 1].startswith("--"):
            value = _parse_value(args[index + 1])
            index += 2
        else:
            value = True
            index += 1
        overrides.append(Override(_parse_path(arg, name), value, f"--{name}"))
    return overrides


def apply_override(data: dict[str, Any], override: Override) -> None:
    """Set `override.value` at its path in `data`, creating mappings (and list entries) on the way.

    Raises:
        ConfigError: when the path runs through a value that is not a mapping or list, or skips list entries.
    """
    node: Any = data
    path = override.path
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        here = format_key_path(path[: depth + 1])
        if isinstance(part, int):
            if not isinstance(node, list):
                raise _usage_error(override.flag, f"`{format_key_path(path[:depth])}` is not a list, so `{part}` "
                                   "cannot index it.")
            if part > len(node):
                raise _usage_error(override.flag, f"index {part} skips entries: the list has {len(node)}.",
                                   f"Use index {len(node)} to add an entry.")
            if part == len(node):
                node.append({} if not last else None)
            if last:
                node[part] = override.value
            else:
                if node[part] is None:
                    node[part] = [] if isinstance(path[depth + 1], int) else {}
                node = node[part]
            continue
        if not isinstance(node, dict):
            raise _usage_error(override.flag, f"`{here}` cannot be set: its parent is not a mapping.")
        if last:
            node[part] = override.value
        else:
            if node.get(part) is None:
                node[part] = [] if isinstance(path[depth + 1], int) else {}
            node = node[part]
