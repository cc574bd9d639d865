"""`axo preprocess` without torch: tokenizing and masking need none, and importing it costs 1.3-2.5 s here.

Written against transformers 5.25 (the same holds for 5.17-5.24). Nothing in axo's preprocessing uses torch,
but transformers imports it as soon as it can: AutoTokenizer reads the model's config, and
`configuration_utils` imports `modeling_rope_utils`, which runs `if is_torch_available(): import torch`.
transformers has no switch to turn torch off (5.x has no USE_TORCH), yet it supports installs without torch:
every tokenizer, config and chat-template path asks `is_torch_available()` first, and that answer is computed
once per process (`@lru_cache`; transformers' docstring: "fixed for the lifetime of the process") from
`importlib.util.find_spec("torch")`.

So `axo preprocess` lets transformers answer that question while torch is invisible, the way Python documents
for making a module unimportable (`sys.modules["torch"] = None`: `find_spec` answers None, `import torch`
raises ModuleNotFoundError), then makes torch visible again at once: transformers keeps behaving as an install
without torch, and any other code that imports torch outright still gets it (slower, never broken; `datasets`
does so for streamed datasets). Nothing of transformers is changed: AutoTokenizer picks the same class by the
same rules (Qwen2Tokenizer rebuilding its pre-tokenizer, Llama and Gemma adding BOS, ...) and the tokens are
its own. `tests/cli/test_preprocess_without_torch.py` runs the real command, checks that torch was never
imported, and compares the prepared rows and the cache folder with the torch path. If a transformers release
stops caching the answer, torch is simply imported again (that test fails, nothing else does).

Only `cli/main.py` `main()` does this, and only for the commands in `TORCH_FREE_COMMANDS`, because it owns the
whole process: transformers cannot change its answer later, so a caller that imports axo (tests, API users)
keeps transformers with torch.

When a tokenizer does need transformers' torch code (a class that `requires_backends(..., ["torch"])`, code
that reads a name only defined when torch is there), the command runs again in a fresh process with torch
(`rerun_with_torch`): the same command line and environment plus `AXO_PREPROCESS_TORCH=rerun` (the config's
warnings, already shown, are not repeated). `AXO_PREPROCESS_TORCH=1` forces the torch path by hand.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

TORCH_FREE_COMMANDS = ("preprocess",)
WITH_TORCH = "AXO_PREPROCESS_TORCH"
# transformers' `__init__` advice when torch is missing, which here is missing on purpose
_ADVICE = "PyTorch was not found. Models won't be available"

_without = False


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_ADVICE)


def _command(argv: list[str]) -> str | None:
    """The subcommand of an `axo` command line (the root options --debug/--version/--help take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def hide_torch_for(argv: list[str]) -> bool:
    """When `argv` (the arguments after `axo`) runs a command of `TORCH_FREE_COMMANDS`, have transformers decide
    that torch is not installed (module docstring), unless torch or transformers is already imported or
    `AXO_PREPROCESS_TORCH` is set. Call it only from a process's entry point. Returns whether it did."""
    global _without
    if (_command(argv) not in TORCH_FREE_COMMANDS or "torch" in sys.modules or "transformers" in sys.modules
            or os.environ.get(WITH_TORCH, "0").lower() not in ("", "0", "false", "no", "off")):
        return False
    logging.getLogger("transformers").addFilter(_DropAdvice())
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        from transformers.utils.import_utils import is_torch_available

        is_torch_available()  # transformers' `__init__` asked already; the answer is cached for the process
    finally:
        del sys.modules["torch"]
    _without = True
    return True


def without_torch() -> bool:
    """Whether this process's transformers was told torch is absent (`hide_torch_for`)."""
    return _without


def rerun() -> bool:
    """Whether this process is the second run of a command that needed torch (its first run said the rest)."""
    return os.environ.get(WITH_TORCH) == "rerun"


def _needed_torch(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it was raised from or while handling, comes from torch's absence."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ImportError) and ((exc.name or "").split(".")[0] == "torch" or "torch" in str(exc).lower()):
            return True  # also transformers' requires_backends: "... requires the PyTorch library ..."
        if isinstance(exc, NameError) and getattr(exc, "name", None) == "torch":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def rerun_with_torch(exc: BaseException) -> None:
    """If transformers runs without torch here and `exc` comes from that, replace this process by the same
    command with torch (never returns then); otherwise return, and the caller reports `exc` as usual."""
    if not (_without and _needed_torch(exc) and sys.executable and sys.orig_argv):
        return
    os.environ[WITH_TORCH] = "rerun"  # the new process keeps torch: no second attempt without it
    if os.environ.get("AXO_DEBUG"):
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        print(f"axo: running again with torch ({type(exc).__name__}: {first})", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


@contextmanager
def torch_when_needed() -> Iterator[None]:
    """Run the block; if it fails for want of torch (`rerun_with_torch`), run the whole command again with it."""
    try:
        yield
    except Exception as exc:
        rerun_with_torch(exc)
        raise
