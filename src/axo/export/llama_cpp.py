"""llama.cpp's own tools, pinned: its HF-to-GGUF converter and its quantizer. axo writes no converter of its own.

Which llama.cpp: the one vendored by `llama-cpp-python` LLAMA_CPP_PYTHON. Its source distribution holds the
converter (`convert_hf_to_gguf.py`, its `conversion/` package and the matching `gguf-py`); its installed package
(`pip install 'axo[llama-cpp]'`, a local build of llama.cpp: ~4 min once on 2 cores with
`CMAKE_ARGS="-DLLAVA_BUILD=OFF"`, ~13 without) holds the quantizer
(`llama_model_quantize`) and the runtime that loads a GGUF. One version for both, so the converter writes what the
quantizer and runtime of that version read. The converter files are taken from that source distribution (`pip
download`, once, into CACHE) unless `--llama-cpp DIR` names a llama.cpp checkout to use instead (offline machines).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from axo.config.problems import ConfigError, Kind, Problem, Severity

LLAMA_CPP_PYTHON = "0.3.36"
_VENDOR = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/"
_CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")
# The converter writes these itself; the others go through llama.cpp's quantizer from an f16 file.
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
QUANTIZER_TYPES = ("q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m",
                   "q5_k_s", "q5_k_m", "q6_k")
QUANT_TYPES = CONVERTER_TYPES + QUANTIZER_TYPES
INSTALL_RUNTIME = f"pip install 'llama-cpp-python=={LLAMA_CPP_PYTHON}'"


def error(message: str, hint: str, key: str = "", kind: Kind = Kind.MISSING_RESOURCE) -> ConfigError:
    """A user-facing export error (a sentence, then what to do), as every axo command reports them."""
    return ConfigError([Problem(Severity.ERROR, kind, key, message if message.endswith(".") else message + ".", hint)])


def cache_root() -> Path:
    """Where fetched converters live: $AXO_LLAMA_CPP_CACHE, else ~/.cache/axo/llama.cpp."""
    return Path(os.environ.get("AXO_LLAMA_CPP_CACHE") or Path.home() / ".cache" / "axo" / "llama.cpp")


@dataclass(frozen=True)
class Tools:
    """A llama.cpp converter (its folder holds convert_hf_to_gguf.py and gguf-py) and where it came from."""

    root: Path
    source: str  # "llama-cpp-python 0.3.36 (vendored llama.cpp)" or "llama.cpp checkout at DIR"

    @property
    def converter(self) -> Path:
        return self.root / "convert_hf_to_gguf.py"


def find_tools(llama_cpp_dir: Path | None = None) -> Tools:
    """The converter to run: `llama_cpp_dir` when given, else the pinned one, fetched into the cache on first use."""
    if llama_cpp_dir is not None:
        root = Path(llama_cpp_dir)
        if not (root / "convert_hf_to_gguf.py").is_file() or not (root / "gguf-py").is_dir():
            raise error(f"--llama-cpp {root}: no convert_hf_to_gguf.py and gguf-py/ there",
                        "Point it at the root of a llama.cpp checkout, or leave it out to use the pinned converter.",
                        "--llama-cpp")
        return Tools(root, f"llama.cpp checkout at {root}")
    root = cache_root() / f"llama-cpp-python-{LLAMA_CPP_PYTHON}"
    if not (root / "convert_hf_to_gguf.py").is_file():
        _fetch_converter(root)
    return Tools(root, f"llama-cpp-python {LLAMA_CPP_PYTHON} (vendored llama.cpp)")


def _fetch_converter(root: Path) -> None:
    """Unpack the converter files of the pinned source distribution into `root` (complete, or not at all)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    # Scratch beside `root`, not in /tmp: the final rename must not cross file systems.
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root.parent) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                   f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", scratch]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        archives = list(Path(scratch).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode != 0 or not archives:
            reason = (done.stderr.strip().splitlines() or ["no archive"])[-1]
            raise error(f"could not fetch llama.cpp's converter (the llama-cpp-python {LLAMA_CPP_PYTHON} source "
                        f"distribution) from the package index: {reason}",
                        "Connect to the package index once (the files are cached in "
                        f"{cache_root()}), or pass --llama-cpp DIR with a llama.cpp checkout.")
        staging = Path(scratch) / "tools"
        with tarfile.open(archives[0]) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(_VENDOR)
                       and m.name[len(_VENDOR):].startswith(_CONVERTER_PARTS) and (m.isfile() or m.isdir())]
            for member in members:
                member.name = member.name[len(_VENDOR):]
            # The "data" filter where this Python has it (3.10.12+, 3.11.4+); the members are the known sdist's.
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            archive.extractall(staging, members=members, **safe)
        if (root / "convert_hf_to_gguf.py").is_file():
            return  # another process finished first
        shutil.rmtree(root, ignore_errors=True)  # an incomplete earlier copy (its converter file is missing)
        try:
            staging.rename(root)  # atomic: a process fetching at the same time finds it complete or absent
        except OSError:
            if not (root / "convert_hf_to_gguf.py").is_file():
                raise


def supported_architectures(tools: Tools) -> set[str]:
    """The `architectures` names the converter knows (its `--print-supported-models`), cached beside the pinned
    converter (a `--llama-cpp` checkout is asked each time and never written to)."""
    listing = tools.root / ".axo-supported-models.txt"
    if listing.is_file():
        return set(listing.read_text().split())
    done = _run_converter(tools, ["--print-supported-models"])
    names = re.findall(r"^\s+- (\S+)$", done.stdout + done.stderr, flags=re.MULTILINE)
    if not names:
        raise error("llama.cpp's converter did not list its supported models: " + _tail(done),
                    "Check the converter's installation (--llama-cpp) or remove the cache folder "
                    f"{tools.root} to fetch it again.")
    if tools.root.is_relative_to(cache_root()):
        listing.write_text("\n".join(sorted(names)) + "\n")
    return set(names)


def _run_converter(tools: Tools, arguments: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NO_LOCAL_GGUF", None)  # the converter must use its own gguf-py, not the installed `gguf`
    return subprocess.run([sys.executable, str(tools.converter), *arguments], capture_output=True, text=True,
                          env=env, check=False)


def _tail(done: subprocess.CompletedProcess, lines: int = 6) -> str:
    text = (done.stderr or "") + (done.stdout or "")
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


# What the converter says when it cannot do a model, and what to tell the user instead.
_KNOWN_FAILURES = (
    (re.compile("BPE pre-tokenizer was not recognized"),
     ("llama.cpp's converter does not know this tokenizer (its BPE pre-tokenizer hash is not in the converter's "
      "table), so llama.cpp could not split text the way the model was trained"),
     "Use a base model whose tokenizer llama.cpp supports, or a newer llama.cpp checkout with --llama-cpp DIR."),
    (re.compile(r"Model \S+ is not supported"),
     "llama.cpp's converter does not support this model architecture",
     ("`python convert_hf_to_gguf.py --print-supported-models` lists what it supports; a newer llama.cpp checkout "
      "may support this one (--llama-cpp DIR).")),
)


def convert(tools: Tools, model_dir: Path, outfile: Path, outtype: str, *, vocab_only: bool = False,
            source: Path | None = None) -> str:
    """Run the converter on an HF model folder; return its log. A failure raises a ConfigError that says why,
    naming `source` (what the user knows the folder as; default `model_dir`)."""
    source = source or model_dir
    arguments = [str(model_dir), "--outtype", outtype, "--outfile", str(outfile)]
    done = _run_converter(tools, arguments + (["--vocab-only"] if vocab_only else []))
    if done.returncode != 0:
        text = done.stdout + done.stderr
        for marker, message, hint in _KNOWN_FAILURES:
            if marker.search(text):
                raise error(f"{message} ({source}).", hint, "base_model", Kind.CONFLICT)
        raise error(f"llama.cpp's converter failed on {source}; its last lines: {_tail(done)}",
                    "Nothing was written to the output. The converter's message says what it could not read; "
                    "--llama-cpp DIR tries another llama.cpp.", "base_model", Kind.CONFLICT)
    return done.stdout + done.stderr


def quantizer_problem() -> str | None:
    """Why llama.cpp's quantizer cannot be used here ("is not installed", a broken build, another version than the
    pinned one, whose converter files the export uses), or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("llama-cpp-python")
    except PackageNotFoundError:
        return "is not installed"
    if found != LLAMA_CPP_PYTHON:
        return f"is version {found}; axo's converter files are those of {LLAMA_CPP_PYTHON}"
    try:
        import llama_cpp  # noqa: F401 (loads the built library: a broken build fails here, not after the merge)
    except Exception as exc:  # a missing shared library or symbol: OSError, ImportError, AttributeError
        return f"does not load ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return None


def quantizer_available() -> bool:
    return quantizer_problem() is None


def quantize(source: Path, target: Path, quant: str) -> None:
    """llama.cpp's quantizer (`llama_model_quantize`, from the llama-cpp-python package) from an f16 GGUF."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}")
    params.nthread = os.cpu_count() or 1
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) != 0:
        raise error(f"llama.cpp's quantizer failed to write {quant} from {source}",
                    "Its messages are above (llama.cpp prints to the terminal); nothing was written to the output.",
                    "--quant", Kind.CONFLICT)
