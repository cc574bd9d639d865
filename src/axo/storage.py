"""Files that cannot be written or are no longer whole: how each library reports a full disk, and cheap checks
that a safetensors, torch or JSON file is complete.

A full disk reaches axo in three shapes: Python's `OSError(ENOSPC)` (plain writes, pyarrow, fsync), torch's
`RuntimeError` from its zip writer ("PytorchStreamWriter failed writing file …: file write failed" or
"unexpected pos N vs M", no errno) and safetensors' `SafetensorError` ("Error while serializing: I/O error: No
space left on device (os error 28)"; older versions print the io::Error's Debug form, "code: 28, kind:
StorageFull"). `write_failure` recognises exactly those, so callers can turn them into a clear error and let
every other exception (a real bug) through unchanged. Written against torch 2.13, safetensors 0.8 and
pyarrow's OSError-with-errno (each checked by writing past RLIMIT_FSIZE, which fails the same way).

The file checks read headers only (a safetensors header, a zip central directory, which sits at the end of
the file and so is the first thing a truncation removes), never the tensors.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# torch's zip writer: no errno, only these words (caffe2/serialize/inline_container.cc)
_TORCH_WRITER = ("PytorchStreamWriter failed", "file write failed", "unexpected pos")
# safetensors wraps Rust's io::Error: "(os error 28)" (Display) or "code: 28, kind: StorageFull" (Debug)
_SAFETENSORS_ERRNO = re.compile(r"os error (\d+)|code: (\d+)")


def _chain(exc: BaseException):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def write_failure(exc: BaseException) -> str | None:
    """Why a write failed, when `exc` (or an exception it was raised from) is a full disk, an exceeded
    quota or file-size limit, or torch's zip writer failing; None for anything else."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno in _WRITE_ERRNOS:
            return os.strerror(link.errno)  # pyarrow's own text around it adds nothing
        text = str(link)
        if isinstance(link, RuntimeError) and any(marker in text for marker in _TORCH_WRITER):
            # "[enforce fail at inline_container.cc:NNN] . PytorchStreamWriter failed writing file data/0: …"
            return "torch could not write the file (" + text.split("] . ")[-1].splitlines()[0][:160] + ")"
        if type(link).__name__ == "SafetensorError" and (found := _SAFETENSORS_ERRNO.search(text)):
            code = int(found.group(1) or found.group(2))
            if code in _WRITE_ERRNOS:
                return os.strerror(code)
    return None


def free_space(path: Path) -> str:
    """"N.NN GiB free" on the disk that holds `path` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return f"{shutil.disk_usage(path).free / 2**30:.2f} GiB free"
    except OSError:
        return "free space unknown"


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file (missing, empty, truncated, not safetensors), or None.

    safetensors itself checks, when it opens a file, that the header parses and that the file is exactly
    as long as the header says; only the header is read.
    """
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return f"{path.name} is missing"
    if path.stat().st_size == 0:
        return f"{path.name} is empty"
    try:
        with safe_open(str(path), framework="numpy"):
            pass
    except (SafetensorError, OSError) as exc:
        return f"{path.name} is truncated or damaged ({str(exc).splitlines()[0][:120]})"
    return None


def safetensors_names(path: Path) -> set[str]:
    """The tensor names in a safetensors file's header (call `safetensors_problem` first)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return set(handle.keys())


def torch_file_problem(path: Path) -> str | None:
    """What is wrong with a file written by `torch.save` (a zip archive since torch 1.6), or None."""
    import zipfile

    if not path.is_file():
        return f"{path.name} is missing"
    try:
        with zipfile.ZipFile(path):  # reads the central directory at the end: a cut file has none
            pass
    except (zipfile.BadZipFile, OSError, ValueError):
        return f"{path.name} is truncated or damaged (not a complete torch archive)"
    return None


def json_problem(path: Path) -> str | None:
    """What is wrong with a JSON file (missing, unreadable, truncated), or None."""
    if not path.is_file():
        return f"{path.name} is missing"
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"{path.name} is not valid JSON, truncated or damaged ({str(exc).splitlines()[0][:80]})"
    return None


def hash_file(path: Path, digest: Any) -> Any:
    """Feed `path`'s bytes to a hashlib `digest` in 1 MiB blocks (any file size in constant memory); returns it."""
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest
