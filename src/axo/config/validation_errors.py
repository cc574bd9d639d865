"""Turn pydantic's ValidationError into problems that name the key path, the bad value and the choices."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from axo.config.keys import Locator, section_of, user_keys
from axo.config.problems import Kind, Problem, Severity
from axo.config.redact import REDACTED, is_secret_key, redact
from axo.config.yaml_io import KeyPath, format_key_path

_TYPE_ERRORS = ("_type", "model_attributes_type", "dict_type", "list_type", "is_instance_of")


def _data_path(loc: tuple[Any, ...], data: Any, error_type: str) -> KeyPath:
    """Keep the parts of pydantic's `loc` that index the user's data; drop union-branch tags like 'str'."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and error_type == "missing" and isinstance(part, str) and part == loc[-1]:
            path.append(part)
    return tuple(path)


def _message(error: dict[str, Any], missing_description: str | None, secret: bool = False) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required." + (f" ({missing_description})" if missing_description else "")
    text = error["msg"]
    if text.startswith("Value error, "):
        text = text[len("Value error, "):]
        return f"{text}."
    shown = REDACTED if secret else repr(redact(error.get("input")))
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{text[0].lower()}{text[1:]} (got {shown})."


def _description(model: type[BaseModel], path: KeyPath) -> str | None:
    """The field description at `path`, following nested sections."""
    current: type[BaseModel] | None = model
    info = None
    for part in path:
        if isinstance(part, int) or current is None:
            continue
        name = user_keys(current).get(part)
        if name is None:
            return None
        info = current.model_fields[name]
        current = section_of(info.annotation)
    return info.description if info else None


def problems_from_validation_error(exc: ValidationError, data: dict[str, Any], model: type[BaseModel],
                                   locate: Locator) -> list[Problem]:
    """One problem per bad key; when a union produced several errors for one key, keep the telling one."""
    by_path: dict[KeyPath, list[dict[str, Any]]] = {}
    for error in exc.errors(include_url=False):
        path = _data_path(tuple(error["loc"]), data, error["type"])
        by_path.setdefault(path, []).append(error)
    # A mistake inside a `type:` mapping also fails the union's string branch at the parent path;
    # the child error is the telling one.
    for path in [p for p in by_path if any(len(q) > len(p) and q[: len(p)] == p for q in by_path)]:
        del by_path[path]
    problems = []
    for path, errors in by_path.items():
        # Prefer our own messages (value errors), then anything that is not "wrong container type".
        errors.sort(key=lambda e: (e["type"] != "value_error", e["type"].endswith(_TYPE_ERRORS)))
        chosen = errors[0]
        secret = any(isinstance(part, str) and is_secret_key(part) for part in path)
        message = _message(chosen, _description(model, path) if chosen["type"] == "missing" else None, secret)
        if len(errors) > 1 and chosen["type"] != "value_error":
            alternatives = {e["msg"] for e in errors[1:] if e["msg"] != chosen["msg"]}
            if alternatives:
                message += " Alternatively: " + "; ".join(sorted(alternatives)) + "."
        line, origin = locate(path)
        problems.append(Problem(Severity.ERROR, Kind.TYPE, format_key_path(path), message, None, line, origin))
    return problems
