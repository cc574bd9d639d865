"""Safe YAML reading for user configs: size limits, alias-bomb protection and key line numbers.

PyYAML's ``safe_load`` already refuses arbitrary Python objects, but it happily builds a "billion laughs"
document whose aliases expand to millions of nodes, and it forgets where each key was written. We compose
the node graph first, measure its expanded size, record the line of every key, and only then construct
plain Python data.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from axo.config.problems import ConfigError, Kind, Problem, Severity

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_ALIASES = 200
MAX_EXPANDED_NODES = 200_000
MAX_LINES = 50_000
_STREAMS = ("/dev/stdin", "/dev/fd/", "/proc/self/fd/")

KeyPath = tuple[str | int, ...]
# What YAML 1.1 does not allow in a stream (PyYAML's Reader.NON_PRINTABLE): C0 controls but tab, LF and CR,
# DEL, C1 controls but NEL, surrogates, U+FFFE/U+FFFF.
_CONTROL = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


def format_key_path(path: KeyPath) -> str:
    """``("datasets", 1, "type")`` -> ``datasets[1].type``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class YamlDocument:
    """A parsed config file: its data, where each key was written, and what the reader noticed."""

    data: dict[str, Any]
    origin: str
    lines: dict[KeyPath, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of the key at ``path`` or of its nearest enclosing key."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def _loader_class() -> type[yaml.SafeLoader]:
    # The pure-Python loader, not libyaml's: libyaml recurses in C and crashes the process on a
    # deeply nested document; Python raises RecursionError, which becomes a clear message. Configs are
    # small, so the speed difference does not show.
    return yaml.SafeLoader


def _error(origin: str, message: str, hint: str | None = None, line: int | None = None) -> ConfigError:
    return ConfigError(
        [Problem(Severity.ERROR, Kind.SYNTAX, "", message, hint=hint, line=line, origin=origin)]
    )


def _too_many_values(origin: str, aliases: int) -> ConfigError:
    # Only a document that reaches the limit through aliases is an alias bomb; a long plain file is just
    # not a training config, and calling it a bomb sends the user looking for anchors that are not there.
    if aliases:
        return _error(origin, f"the YAML expands to more than {MAX_EXPANDED_NODES:,} values through its aliases "
                      "(an alias bomb?).", "A training config is a few hundred values; check the anchors and aliases.")
    return _error(origin, f"the config is too large: it holds more than {MAX_EXPANDED_NODES:,} values.",
                  "A training config is a few hundred values; is this the right file?")


def _check_expansion(root: yaml.Node, origin: str) -> None:
    """Refuse documents whose aliases expand to an unreasonable number of nodes."""
    sizes: dict[int, int] = {}
    seen_nodes: set[int] = set()
    aliases = 0

    def size(node: yaml.Node, depth: int) -> int:
        nonlocal aliases
        if depth > 200:
            raise _error(origin, "the YAML nests deeper than 200 levels.", "Flatten the config.")
        key = id(node)
        if key in sizes:
            aliases += 1  # a node reached twice is an alias (or a merge of one)
            if aliases > MAX_ALIASES:
                raise _error(
                    origin,
                    f"the YAML uses more than {MAX_ALIASES} aliases.",
                    "Write the values out instead of referencing anchors (&name / *name).",
                )
            return sizes[key]
        if key in seen_nodes:
            raise _error(origin, "the YAML contains a recursive alias.", "Remove the self-reference.")
        seen_nodes.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k, depth + 1) + size(v, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
        if total > MAX_EXPANDED_NODES:
            raise _too_many_values(origin, aliases)
        sizes[key] = total
        return total

    size(root, 0)


def _record_lines(node: yaml.Node, path: KeyPath, doc: YamlDocument) -> None:
    """Remember the line of every mapping key and warn about keys written twice."""
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            sub = (*path, key)
            if key in first_line:
                doc.problems.append(
                    Problem(
                        Severity.WARNING,
                        Kind.CONFLICT,
                        format_key_path(sub),
                        f"is written twice (lines {first_line[key]} and {line}); the later value wins.",
                        hint="Delete one of them.",
                        line=line,
                        origin=doc.origin,
                    )
                )
            first_line[key] = line
            doc.lines[sub] = line
            _record_lines(value_node, sub, doc)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines.setdefault((*path, index), item.start_mark.line + 1)
            _record_lines(item, (*path, index), doc)


def _refuse_control_characters(text: str, origin: str) -> None:
    """YAML forbids control characters (a NUL byte above all: a binary file, or text saved as UTF-16); PyYAML
    reports them from the loader's constructor, outside its marked errors, so they are found here first."""
    found = _CONTROL.search(text)
    if found is None:
        return
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    code = ord(found.group())
    what = "a NUL byte" if code == 0 else f"the control character U+{code:04X}"
    raise _error(origin, f"contains {what} at column {column}, which YAML does not allow (a binary file, or text "
                 "saved as UTF-16?).", "Save the config as plain UTF-8 text; delete the character if it is a stray.",
                 line=line)


def parse_yaml_text(text: str, origin: str) -> YamlDocument:
    """Parse config text safely.

    Raises:
        ConfigError: on a syntax error, an alias bomb, or a document that is not a mapping.
    """
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise _error(origin, f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB.",
                     "A config is a few KiB; is this the right file?")
    lines = text.count("\n")
    if lines > MAX_LINES:  # found before composing: pure-Python YAML takes seconds per 100k values
        raise _error(origin, f"the config is too large: {lines:,} lines.", "A training config is a few hundred "
                     "lines; is this the right file?")
    _refuse_control_characters(text, origin)
    doc = YamlDocument(data={}, origin=origin)
    loader = _loader_class()(text)
    try:
        root = loader.get_single_node()
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null")):
            raise _error(origin, "the file is empty.", "Run `axo init` to write a starting config.")
        _check_expansion(root, origin)
        _record_lines(root, (), doc)  # before construction, which merges `<<:` keys into the nodes
        data = loader.construct_document(root)
    except RecursionError:
        raise _error(origin, "the YAML nests too deeply to read.", "A config nests a few levels; check brackets.") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = f", column {mark.column + 1}" if mark else ""
        raise _error(origin, f"invalid YAML{column}: {exc.problem or exc.context}.",
                     "Check indentation and quoting around this line.", line=line) from None
    except yaml.YAMLError as exc:  # e.g. more than one document
        raise _error(origin, f"invalid YAML: {exc}.") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise _error(origin, f"the top level must be a mapping of keys to values, got {type(data).__name__}.",
                     "A config looks like `base_model: ...` on its own line, then more `key: value` lines.")
    doc.data = data
    return doc


def read_yaml_file(path: str | Path) -> YamlDocument:
    """Read a config file from disk with the limits of :func:`parse_yaml_text`.

    Raises:
        ConfigError: when the file is missing, unreadable, too large or not a YAML mapping.
    """
    path = Path(path)
    origin = str(path)
    if not path.exists():
        raise _error(origin, "no such file.", "Check the path, or run `axo init -o config.yml` to create one.")
    if path.is_dir():
        raise _error(origin, "is a directory, not a config file.", "Point at the .yml file inside it.")
    try:
        mode = path.stat().st_mode
        # Reading a named pipe nobody writes to waits forever; a stream given on purpose (`/dev/stdin`,
        # bash's `<(...)` as /dev/fd/N) is read as before.
        if not stat.S_ISREG(mode) and not origin.startswith(_STREAMS):
            raise _error(origin, f"is {special_file_kind(mode)}, not a config file.",
                         "Point at the .yml file itself (write the config to a file first).")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _error(origin, f"the file is {size / 2**20:.1f} MiB; configs are limited to "
                         f"{MAX_FILE_BYTES // 2**20} MiB.", "Is this the right file?")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _error(origin, "is not UTF-8 text.", "Save the config as UTF-8.") from None
    except OSError as exc:
        raise _error(origin, f"cannot be read: {exc.strerror}.", "Check the file's permissions.") from None
    return parse_yaml_text(text, origin)


def special_file_kind(mode: int) -> str:
    """What a path that is neither a regular file nor a folder is, in words ("a named pipe (FIFO)")."""
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")
