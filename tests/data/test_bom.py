"""Files that start with a UTF-8 byte-order mark (what Excel and Notepad write) read exactly as without it,
down to the prepared tokens (issue 16); and other files that are valid as written."""

from __future__ import annotations

import codecs
import json

import pytest

from axo.data.prepare import prepare_data
from axo.data.sources import read_rows

ROWS = [{"instruction": "Give a tip.", "input": "", "output": "Drink water."},
        {"instruction": "Say hi in French.", "input": "", "output": "Bonjour, ça va ?"}]


def _write(path, kind: str, bom: bool) -> None:
    if kind == "jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ROWS)
    elif kind == "json":
        text = json.dumps(ROWS, ensure_ascii=False, indent=1)
    else:
        text = "instruction,input,output\r\n" + "".join(f'"{r["instruction"]}",,"{r["output"]}"\r\n' for r in ROWS)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8"))


def _prepared(tok, make_cfg, path):
    cfg = make_cfg(f"shuffle_merged_datasets: false\ndatasets:\n  - path: {path}\n    type: alpaca\n")
    return cfg, prepare_data(cfg, tok)


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv"])
def test_bom_files_read_as_without_one(tok, make_cfg, tmp_path, kind):
    plain, marked = tmp_path / f"plain.{kind}", tmp_path / f"marked.{kind}"
    _write(plain, kind, bom=False)
    _write(marked, kind, bom=True)
    _, without = _prepared(tok, make_cfg, plain)
    marked_cfg, with_bom = _prepared(tok, make_cfg, marked)
    rows = read_rows(marked_cfg.datasets[0]).rows
    assert [row["instruction"] for row in rows] == [r["instruction"] for r in ROWS]  # not "\ufeffinstruction"
    assert [s.input_ids for s in with_bom.train] == [s.input_ids for s in without.train]
    assert [s.labels for s in with_bom.train] == [s.labels for s in without.train]


def test_bom_text_file(make_cfg, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(codecs.BOM_UTF8 + b"first line\nsecond line\n")
    entry = make_cfg(f"datasets:\n  - path: {path}\n    type: completion\n").datasets[0]
    assert [row["text"] for row in read_rows(entry).rows] == ["first line", "second line"]


def test_csv_field_longer_than_the_csv_module_default(make_cfg, tmp_path):
    long_text = "word " * 40_000  # 200 kB: over csv's default 128 KiB field limit
    path = tmp_path / "long.csv"
    path.write_text(f'text\n"{long_text}"\nshort\n', encoding="utf-8")
    entry = make_cfg(f"datasets:\n  - path: {path}\n    type: completion\n").datasets[0]
    assert [row["text"] for row in read_rows(entry).rows] == [long_text, "short"]
