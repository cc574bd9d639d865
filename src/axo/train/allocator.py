"""The CUDA caching allocator's setting for axo's commands: expandable segments, unless the user chose.

With torch's default allocator a long-sequence run can stop for want of one contiguous block while enough memory
is free in pieces. Measured on an H200 (docs/BENCHMARKS.md "Longest trainable sequence"): 8B QLoRA under a
24 GiB cap ran out of memory at 81,920 tokens holding 20.98 GiB and asking for 2.19 GiB; with
`expandable_segments:True` the same run trains 81,920 tokens (peak 22.77 GiB). Unsloth and Axolotl's CLI set the
same. torch reads the setting when CUDA first allocates, so the CLI sets it before any command imports torch;
the user's own `PYTORCH_ALLOC_CONF` or `PYTORCH_CUDA_ALLOC_CONF` wins. (Code calling `axo.train.run.train` as a
library sets the variable itself, before its first CUDA allocation.)
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

DEFAULT = "expandable_segments:True"
NAMES = ("PYTORCH_ALLOC_CONF", "PYTORCH_CUDA_ALLOC_CONF")  # torch >= 2.9's name first; the older one still read


def choose_allocator(environ: MutableMapping[str, str] | None = None) -> str:
    """Set `PYTORCH_ALLOC_CONF` (torch >= 2.9; `PYTORCH_CUDA_ALLOC_CONF` for older torch) to expandable segments
    in `environ` (the process's) unless either variable is set; return the setting in effect."""
    environ = os.environ if environ is None else environ
    chosen = allocator_setting(environ)
    if chosen is not None:
        return chosen
    environ[NAMES[0] if _torch_at_least(2, 9) else NAMES[1]] = DEFAULT
    return DEFAULT


def allocator_setting(environ: MutableMapping[str, str] | None = None) -> str | None:
    """The allocator setting the environment gives torch, or None (torch's defaults)."""
    environ = os.environ if environ is None else environ
    return next((environ[name] for name in NAMES if environ.get(name)), None)


def _torch_at_least(major: int, minor: int) -> bool:
    """From torch's own `version.py`, read as text: importing torch here would be too early, and
    `importlib.metadata` costs ~0.1 s of every command's start-up."""
    import importlib.util
    import re
    from pathlib import Path

    spec = importlib.util.find_spec("torch")
    try:
        text = (Path(spec.origin).parent / "version.py").read_text()  # type: ignore[union-attr, arg-type]
        found = re.search(r"__version__\s*=\s*['\"](\d+)\.(\d+)", text)
        return found is None or (int(found[1]), int(found[2])) >= (major, minor)
    except (AttributeError, TypeError, OSError):
        return True  # no torch installed (or unreadable): the current name
