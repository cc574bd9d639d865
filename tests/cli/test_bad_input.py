"""The bad-input matrix: user mistakes across config, data, model and CLI (the cases are in
tests/bad_input/). Each one exits non-zero with a message that names the file, row or key and the fix, shows
no traceback, and leaves nothing half-written.

`python tests/cli/test_bad_input.py --write-doc docs/ERRORS.md` regenerates the table in docs/ERRORS.md
from these cases (run from the repo root with the package installed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, when run as a script for --write-doc
from bad_input import all_cases, half_written, run_case

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, tiny_llama_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_case(case, tmp_path, tiny_llama_dir)
    message = result.stderr + result.stdout
    assert result.exit_code != 0, message
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in message
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    for fragment in case.absent:
        assert fragment not in message, f"{fragment!r} must not be in:\n{message}"
    assert not half_written(tmp_path), half_written(tmp_path)


def test_there_are_at_least_forty_and_the_doc_lists_them():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "ERRORS.md").read_text()
    missing = [c.id for c in CASES if f"`{c.id}`" not in doc]
    assert not missing, f"run `python tests/cli/test_bad_input.py --write-doc docs/ERRORS.md`; missing {missing}"


def _error_lines(output: str) -> list[str]:
    """The lines about errors, each with its `fix:` line; warnings (e.g. what the generating machine cannot run)
    are left out, so the table reads the same whatever machine writes it."""
    kept: list[str] = []
    about_error = False
    for line in (text.strip() for text in output.splitlines()):
        if line.startswith("fix:"):
            if about_error:
                kept.append(line)
            continue
        about_error = "error" in line or "did you mean" in line
        if about_error:
            kept.append(line)
    return kept


def _write_doc(target: Path) -> None:
    import os
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tiny_models

    root = Path(tempfile.mkdtemp())
    tiny_models.build_tokenizer(root / "tok")
    model = tiny_models.build_model("llama", root / "llama", root / "tok")
    rows = []
    for case in CASES:
        folder = root / case.id
        folder.mkdir()
        os.chdir(folder)
        result = run_case(case, folder, model)
        lines = _error_lines(result.stderr + result.stdout)
        shown = " ".join(lines)[:400].replace("|", "\\|") or (result.stderr + result.stdout).strip()[:300]
        rows.append(f"| `{case.id}` | {case.mistake} | `axo {case.command}` | {shown} |")
    header = ("# Errors: what a mistake looks like\n\nGenerated from `tests/cli/test_bad_input.py` (the same table the "
              "tests run; regenerate with `python tests/cli/test_bad_input.py --write-doc docs/ERRORS.md`). Paths are "
              "those of the generating run. Every case exits non-zero, prints no traceback (pass `--debug` to the "
              "`axo` command for one) and leaves nothing half-written.\n\n| case | mistake | command | message |\n"
              "|---|---|---|---|\n")
    target.write_text(header + "\n".join(rows) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write-doc":
        _write_doc(Path(sys.argv[2]).resolve())
