"""The bad-input matrix's machinery: a `Case` is one user mistake (the command, its config and data, what
the message must say); `run_case` runs it through the real CLI in a folder of its own. The cases live in
the modules beside this one, one per area; `all_cases()` gathers them for tests/cli/test_bad_input.py,
which runs each and writes docs/ERRORS.md from them.

To add a case: put a `Case(...)` in the list of the module for its area (or a new module, listed in
`AREAS`). Config text is YAML with `base_model: <the tiny llama>` prepended and `dataset_prepared_path:
prepared` appended; start it with `RAW` to get it verbatim or `NOBASE` to leave out the base model.
`data` is the rows of data.jsonl (or `raw(text)`); `setup(folder, model)` builds anything else the mistake needs.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

BASE = "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"
ALPACA = ({"instruction": "Give a tip.", "input": "", "output": "Drink water."},) * 4
CLOSED = "http://127.0.0.1:9"  # a Hub endpoint nothing answers: no test reaches outside this machine
AREAS = ("first_round", "data", "checkpoints", "commands", "secrets")  # modules of this package holding a CASES list, in the order the doc lists them


@dataclass(frozen=True)
class Case:
    id: str
    mistake: str
    command: str
    config: str | None = None  # YAML (base_model is prepended) or None
    extra: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    data: object = ALPACA  # rows for data.jsonl, or raw text
    setup: Callable[[Path, Path], None] | None = None
    # Environment for the command. Such a case runs `python -m axo` in a subprocess (huggingface_hub reads its
    # HF_* variables once, when imported), with an empty Hugging Face cache and, unless `env` names another, the
    # CLOSED Hub endpoint.
    env: tuple[tuple[str, str], ...] = ()
    absent: tuple[str, ...] = ()  # fragments that must NOT be in the output (a secret, a wrong word)


@dataclass
class Ran:
    """A subprocess's outcome, with the fields of typer's test Result that the checks read."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None


def raw(text: str):
    """Data given as file text, not rows."""
    return text


def all_cases() -> list[Case]:
    return [case for area in AREAS for case in importlib.import_module(f"bad_input.{area}").CASES]


def prepare(case: Case, folder: Path, model: Path) -> list[str]:
    if case.setup is not None:
        case.setup(folder, model)
    data = case.data
    names = {"data.jsonl": data}
    if case.config and "data.csv" in case.config:
        names = {"data.csv": "instruction,output\na,b\nc,d,e\n"}
    if case.config and "data.xml" in case.config:
        names = {"data.xml": "<rows/>"}
    for name, content in names.items():
        text = content if isinstance(content, str) else "".join(json.dumps(r) + "\n" for r in content)
        (folder / name).write_text(text)
    args = [case.command]
    if case.config is not None:
        text = case.config
        if text.startswith("RAW"):
            text = text[3:]
        elif text.startswith("NOBASE"):
            text = text[len("NOBASE"):]
        else:
            text = f"base_model: {model}\n" + text
        text += "dataset_prepared_path: prepared\n" if "dataset_prepared_path" not in text and not case.config.startswith("RAW") else ""
        (folder / "cfg.yml").write_text(text)
        args.append("cfg.yml")
    return args + list(case.extra)


def half_written(folder: Path) -> list[Path]:
    leftovers = [p for p in folder.rglob("*.partial")] + [p for p in folder.rglob("*.tmp")]
    prepared = folder / "prepared"
    if prepared.is_dir():  # a complete cache (meta.json written last) and the cache's lock file are fine
        leftovers += [p for p in prepared.iterdir() if not (p / "meta.json").is_file() and p.name != ".lock"]
    for out in (folder / "out", folder / "model-out"):
        leftovers += [out / f for f in ("adapter_model.safetensors", "model.safetensors") if (out / f).exists()]
    return leftovers


def run_case(case: Case, folder: Path, model: Path):
    from axo.cli.main import app

    args = prepare(case, folder, model)
    if case.env:
        return _run_process(args, folder, dict(case.env))
    return CliRunner().invoke(app, args)


def _run_process(args: list[str], folder: Path, env: dict[str, str]) -> Ran:
    import os
    import subprocess

    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    done = subprocess.run([sys.executable, "-m", "axo", *args], capture_output=True, text=True, cwd=folder, timeout=300,
                          env={**inherited, "HF_HOME": str(folder / "hf"), "HF_ENDPOINT": CLOSED, **env})
    return Ran(done.returncode, done.stdout, done.stderr)
