"""Where the files a config names are, and whether they are on this machine.

Axolotl resolves relative paths from the working directory, so existing commands keep working that way;
when a path is not found there but is found next to the config file, that copy is used (so a config can
travel with its data). Anything else that looks like `org/name` is a Hugging Face hub id.
"""

from __future__ import annotations

import re
from pathlib import Path

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FILE_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".arrow", ".txt", ".gguf", ".safetensors", ".jinja",
                  ".j2", ".yml", ".yaml", ".bin")


def resolve_local_path(value: str, config_dir: Path | None) -> Path | None:
    """The existing local path `value` refers to (working directory first, then the config's folder)."""
    candidate = Path(value).expanduser()
    if candidate.exists():
        return candidate
    if config_dir is not None and not candidate.is_absolute():
        beside_config = config_dir / candidate
        if beside_config.exists():
            return beside_config
    return None


def looks_like_hub_id(value: str) -> bool:
    """True for `org/name` (no leading `.` or `/`, no file suffix): what the Hub would be asked for."""
    return bool(_HUB_ID.match(value)) and not value.lower().endswith(_FILE_SUFFIXES)
