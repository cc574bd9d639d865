"""Read the rows of one dataset entry: local files and folders (read directly, with line numbers for
errors) or Hugging Face hub datasets (through `datasets.load_dataset`)."""

from __future__ import annotations

import codecs
import csv
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axo.config.paths import looks_like_hub_id, resolve_local_path
from axo.config.schema import DatasetConfig
from axo.data.errors import data_error, describe

SUFFIX_TYPES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow",
                ".txt": "text"}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # the JSON escape of a UTF-16 surrogate half
_SLICE = re.compile(r"^(?P<split>[\w.-]+)(\[(?P<start>-?\d+%?)?:(?P<stop>-?\d+%?)?\])?$")


@dataclass
class Rows:
    """Rows read from one dataset entry, with where each came from (for error messages)."""

    source: str
    rows: list[dict[str, Any]]
    lines: list[int] = field(default_factory=list)  # 1-based line per row for text formats, else row number
    files: list[str] = field(default_factory=list)  # file per row when a folder holds several

    def where(self, index: int) -> tuple[str, int]:
        """(file, line) of row `index`."""
        origin = self.files[index] if self.files else self.source
        return origin, self.lines[index] if self.lines else index + 1


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """The JSON objects of a .jsonl file and their 1-based line numbers; blank lines are skipped, and a
    UTF-8 byte-order mark at the start (what Excel and Notepad write) is ignored.

    Raises:
        DataError: for a missing file, a line that is not UTF-8 or not JSON, or a line that is not an object.
    """
    if not path.is_file():
        raise data_error("no such file.", origin=str(path), hint="Check the path.")
    rows, lines = [], []
    with path.open("rb") as handle:  # bytes, decoded per line: a bad byte is reported with its line
        for number, raw in enumerate(handle, start=1):
            text = _decode(raw[3:] if number == 1 and raw.startswith(codecs.BOM_UTF8) else raw, path, number)
            if not text.strip():
                continue
            row = _parse_json(text, path, number)
            if not isinstance(row, dict):
                raise data_error(f"line {number} is {describe(row)}, not a JSON object.", origin=str(path),
                                 line=number, hint='Write each row as {"field": value, ...}.')
            rows.append(row)
            lines.append(number)
    return rows, lines


def _decode(raw: bytes, path: Path, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise data_error(f"line {number} is not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1}).",
                         origin=str(path), line=number,
                         hint="Save the file as UTF-8 (it may be Latin-1 or UTF-16: `iconv -f latin1 -t utf-8 "
                              "IN > OUT` converts the former).") from None


def _parse_json(text: str, path: Path, number: int | None) -> Any:
    """`text` parsed as JSON; `number` is its line in a .jsonl file, None for a whole .json file (whose
    syntax errors the caller reports, as it may read the file as JSON Lines instead)."""
    where = f"line {number}" if number else "the file"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if number is None:
            raise
        raise data_error(f"line {number} is not valid JSON: {exc.msg} (column {exc.colno}).",
                         origin=str(path), line=number,
                         hint="Each line of a .jsonl file must be one JSON object.") from None
    except RecursionError:  # json's decoder recurses once per nesting level
        raise data_error(f"{where} nests arrays or objects too deeply to read.", origin=str(path),
                         line=number, hint="Rows are flat objects of text fields (and message lists).") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(value):
        # json accepts an unpaired `\ud800`; the tokenizer then fails with a TypeError that names nothing.
        raise data_error(f"{where} holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff), which is not text.",
                         origin=str(path), line=number,
                         hint="Write the character itself or both halves of its escape (😀 is \\ud83d\\ude00); "
                              "the file was probably cut in the middle of a character.")
    return value


def _holds_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _read_json(path: Path, field_name: str | None) -> tuple[list[dict[str, Any]], list[int]]:
    text = path.read_text(encoding="utf-8-sig")  # -sig: a leading byte-order mark is not part of the JSON
    try:
        data = _parse_json(text, path, None)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # one object per line in a .json file: read it as JSON Lines
            return read_jsonl(path)
        raise data_error(f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
                         origin=str(path), line=exc.lineno) from None
    if isinstance(data, dict):
        if field_name and isinstance(data.get(field_name), list):
            data = data[field_name]
        else:
            lists = [k for k, v in data.items() if isinstance(v, list)]
            raise data_error("holds a JSON object, not a list of rows.", origin=str(path),
                             hint=f"Set `field:` to the key holding the rows ({', '.join(lists) or 'none found'}).")
    if not isinstance(data, list):
        raise data_error("must hold a JSON list of row objects.", origin=str(path))
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise data_error(f"row {index + 1} is {describe(row)}, not a JSON object.", origin=str(path),
                             line=index + 1, hint='Write each row as {"field": value, ...}.')
    return data, []


def _read_csv(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    # Long documents exceed csv's default 128 KiB field limit, which is not a mistake in the file.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(encoding="utf-8-sig", newline="") as handle:  # -sig: Excel starts its CSV with a BOM
        reader = csv.DictReader(handle)
        rows, lines = [], []
        try:
            for row in reader:
                if None in row:
                    raise data_error(f"line {reader.line_num} has more columns than the header.", origin=str(path),
                                     line=reader.line_num, hint="Quote values that contain commas.")
                if None in row.values():
                    raise data_error(f"line {reader.line_num} has fewer columns than the header "
                                     f"({', '.join(reader.fieldnames or [])}).", origin=str(path),
                                     line=reader.line_num, hint="Give every row a value for each column (empty is fine).")
                rows.append(row)
                lines.append(reader.line_num)
        except csv.Error as exc:
            raise data_error(f"line {reader.line_num} cannot be read as CSV: {exc}.", origin=str(path),
                             line=reader.line_num, hint="Save the file as plain UTF-8 CSV.") from None
    return rows, lines


def _read_table(path: Path, kind: str) -> tuple[list[dict[str, Any]], list[int]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if kind == "parquet":
            table = pq.read_table(path)
        else:
            with pa.memory_map(str(path)) as source:
                try:
                    table = pa.ipc.open_stream(source).read_all()  # what `datasets` writes
                except pa.ArrowInvalid:
                    table = pa.ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise data_error(f"cannot be read as {kind}: {str(exc).rstrip('.')}.", origin=str(path)) from None
    return table.to_pylist(), []


def _read_file(path: Path, kind: str, entry: DatasetConfig) -> tuple[list[dict[str, Any]], list[int]]:
    try:
        if kind == "json":
            return read_jsonl(path) if path.suffix.lower() == ".jsonl" else _read_json(path, entry.field)
        if kind == "csv":
            return _read_csv(path)
        if kind == "text":
            lines = path.read_text(encoding="utf-8-sig").splitlines()
            return [{"text": line} for line in lines if line.strip()], [i + 1 for i, line in enumerate(lines) if line.strip()]
        return _read_table(path, kind)
    except UnicodeDecodeError:
        raise data_error("is not UTF-8 text.", origin=str(path), hint="Convert the file to UTF-8.") from None
    except OSError as exc:
        raise data_error(f"cannot be read: {exc.strerror}.", origin=str(path), hint="Check the path and permissions.") from None


def _files_of(path: Path, entry: DatasetConfig) -> list[Path]:
    if path.is_file():
        return [path]
    wanted = [entry.data_files] if isinstance(entry.data_files, str) else entry.data_files
    if wanted:
        files = [path / name for name in wanted]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise data_error(f"data_files not found: {', '.join(missing)}.", origin=str(path), key="data_files")
        return files
    files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIX_TYPES)
    if not files:
        raise data_error("is a folder with no data files.", origin=str(path),
                         hint=f"Put {', '.join(SUFFIX_TYPES)} files in it, or point `path` at a file.")
    return files


def _slice(rows: Rows, split: str, origin: str) -> Rows:
    """Apply a split slice such as `train[:500]` or `train[10%:20%]` to local rows."""
    match = _SLICE.match(split)
    if match is None:
        raise data_error(f"split {split!r} is not a split name or slice.", origin=origin, key="split",
                         hint="Write `train`, `train[:500]` or `train[10%:20%]`.")
    if match["split"] != "train":
        raise data_error(f"a local file has only a `train` split, not {match['split']!r}.", origin=origin,
                         key="split", hint="Use `split: train` (with a slice if needed) or `val_set_size`.")

    def bound(text: str | None) -> int | None:
        if text is None:
            return None
        return round(len(rows.rows) * int(text[:-1]) / 100) if text.endswith("%") else int(text)

    chosen = slice(bound(match["start"]), bound(match["stop"]))
    return Rows(rows.source, rows.rows[chosen], rows.lines[chosen], rows.files[chosen])


def _shard(rows: Rows, entry: DatasetConfig, seed: int) -> Rows:
    if not entry.shards:
        return rows
    index = entry.shards_idx or 0
    if index >= entry.shards:
        raise data_error(f"shards_idx {index} is out of range for {entry.shards} shards.", key="shards_idx",
                         hint=f"Use 0 … {entry.shards - 1}.")
    import numpy as np

    # Axolotl 0.21 takes `dataset.shuffle(seed=seed).shard(shards, shards_idx)`: a seeded permutation, then
    # one contiguous shard of it (`datasets.Dataset.shard(contiguous=True)`)
    order = np.random.default_rng(seed).permutation(len(rows.rows)).tolist()
    size, extra = divmod(len(order), entry.shards)
    start = index * size + min(index, extra)
    chosen = order[start:start + size + (1 if index < extra else 0)]
    def pick(values: list) -> list:
        return [values[i] for i in chosen] if values else values

    return Rows(rows.source, pick(rows.rows), pick(rows.lines), pick(rows.files))


def read_rows(entry: DatasetConfig, config_dir: Path | None = None, seed: int = 42) -> Rows:
    """All rows of one `datasets:` entry, after its split slice and sharding (`seed` shuffles before sharding).

    Raises:
        DataError: for a missing path, an unknown file type, or a malformed file (naming file and line).
    """
    local = resolve_local_path(entry.path, config_dir)
    if local is None:
        if looks_like_hub_id(entry.path):
            rows = _read_hub(entry, config_dir)
        else:
            raise data_error("not found.", origin=entry.path, key="path",
                             hint="Fix the path (relative paths start from the working directory or the config's folder).")
    else:
        rows = _read_local(local, entry)
        if entry.split != "train":
            rows = _slice(rows, entry.split, entry.path)
    return _shard(rows, entry, seed)


def _read_local(path: Path, entry: DatasetConfig) -> Rows:
    all_rows: list[dict[str, Any]] = []
    all_lines: list[int] = []
    all_files: list[str] = []
    files = _files_of(path, entry)
    for file in files:
        kind = entry.ds_type or SUFFIX_TYPES.get(file.suffix.lower())
        if kind is None:
            raise data_error(f"has an unknown file type {file.suffix!r}.", origin=str(file), key="ds_type",
                             hint="Set `ds_type:` to one of json, csv, parquet, arrow, text.")
        rows, lines = _read_file(file, kind, entry)
        all_rows += rows
        all_lines += lines or list(range(1, len(rows) + 1))
        if file != path:  # read from a folder: errors name the file, not the folder
            all_files += [str(file)] * len(rows)
    return Rows(str(path), all_rows, all_lines, all_files)


def _read_hub(entry: DatasetConfig, config_dir: Path | None) -> Rows:
    """A hub dataset through `datasets`: from its local cache when it has one (no Hub request), else from the
    Hub — refused at once when the Hub cannot be asked (models/hub.py), not after ~25 s of retries."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        raise data_error("reading hub datasets needs the `datasets` package.", origin=entry.path,
                         hint="pip install datasets") from None
    from axo.models import hub

    hub.require([hub.dataset_ref(entry, "path", config_dir)])  # refuses at once what cannot be loaded
    try:
        dataset = datasets.load_dataset(entry.path, name=entry.name, split=entry.split, data_files=entry.data_files,
                                        revision=entry.revision, trust_remote_code=entry.trust_remote_code)
    except Exception as exc:  # datasets raises many types (network, missing config, bad split)
        raise data_error(f"cannot load the hub dataset: {str(exc).splitlines()[0]}", origin=entry.path, key="path",
                         hint="Check the id, `name` and `split`, and that this machine can reach the Hub "
                              "(or has the dataset cached).") from None
    return Rows(entry.path, dataset.to_list())
