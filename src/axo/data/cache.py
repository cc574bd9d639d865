"""The prepared-dataset cache: a folder per fingerprint, written atomically, never stale.

The fingerprint covers everything that changes tokens: the data-relevant config keys, the tokenizer's
files (or its full serialized state when it came from the Hub), the bytes of every local data file, and
axo's version. Editing one line of a data file or upgrading axo therefore prepares again; an unchanged
run reuses the cache. A folder becomes visible under its fingerprint name only after every file in it
is written and synced, so a killed run never leaves a cache that later loads.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo import __version__
from axo.config.paths import resolve_local_path
from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig
from axo.data.formats.base import Sample
from axo.storage import free_space, hash_file, write_failure

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# 2: the data checks of issue 16 (typed fields, content parts, trained tokens); 3: Axolotl's row order;
# 4: classification text pairs (token_type_ids), regression scores (floats), class names in meta.json
CACHE_FORMAT = 4
_DATA_KEYS = ("datasets", "test_datasets", "sequence_len", "excess_length_strategy", "min_sample_len",
              "train_on_inputs", "chat_template", "chat_template_jinja", "eot_tokens", "train_on_eos", "val_set_size",
              "shuffle_merged_datasets", "seed", "dataset_exact_deduplication", "sample_packing", "num_labels",
              "rl", "reward_model", "problem_type")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                    "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt", "tokenizer.model")


def _tokenizer_digest(tokenizer: PreTrainedTokenizerBase) -> str:
    digest = hashlib.sha256()
    folder = Path(str(tokenizer.name_or_path))
    files = [folder / name for name in _TOKENIZER_FILES if (folder / name).is_file()] if folder.is_dir() else []
    if files:
        for file in files:
            digest.update(file.name.encode())
            hash_file(file, digest)
    else:  # a hub tokenizer: its serialized state is what determines the tokens
        backend = getattr(tokenizer, "backend_tokenizer", None)
        digest.update((backend.to_str() if backend is not None else repr(tokenizer.get_vocab())).encode())
        digest.update(str(tokenizer.chat_template).encode())
    # special_tokens / tokens in the config change the tokenizer after loading
    digest.update(json.dumps([tokenizer.all_special_tokens, len(tokenizer)], sort_keys=True).encode())
    return digest.hexdigest()


def _data_files_digest(cfg: AxoConfig, config_dir: Path | None) -> list[str]:
    digests = []
    for entry in [*(cfg.datasets or []), *(cfg.test_datasets or [])]:
        digest = hashlib.sha256(entry.path.encode())
        local = resolve_local_path(entry.path, config_dir)
        if local is not None:
            files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
            for file in files:
                digest.update(str(file.relative_to(local) if local.is_dir() else file.name).encode())
                hash_file(file, digest)
        digests.append(digest.hexdigest())
    return digests


def bundled_templates_digest(folder: Any = None) -> str:
    """A digest of the text of every chat template axo bundles (in `folder`, default the package's): a dataset
    may name one, and editing it changes tokens without changing the config or the tokenizer."""
    from importlib import resources

    digest = hashlib.sha256()
    folder = folder if folder is not None else resources.files("axo.data.chat_templates")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".jinja"):
            digest.update(entry.name.encode() + entry.read_bytes())
    return digest.hexdigest()


def fingerprint(cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase, config_dir: Path | None) -> str:
    """A hex digest that changes whenever the prepared tokens could change."""
    settings = cfg.model_dump(mode="json", include=set(_DATA_KEYS))
    payload = {
        "axo": __version__,
        "format": CACHE_FORMAT,
        "settings": settings,
        "tokenizer": _tokenizer_digest(tokenizer),
        "data": _data_files_digest(cfg, config_dir),
        "templates": bundled_templates_digest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _list_column(lists: list[list[int]]):
    """A list<int32> Arrow column built from one flat buffer (much faster than from nested lists)."""
    import itertools

    import numpy as np
    import pyarrow as pa

    lengths = np.fromiter((len(values) for values in lists), dtype=np.int32, count=len(lists))
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int32, count=int(offsets[-1]))
    return pa.ListArray.from_arrays(_int32_array(offsets), _int32_array(flat))


def _int32_array(values):
    """An int32 Arrow array over a numpy int32 array's buffer. Not `pa.array(values)`: pyarrow 26 asks pandas
    whether `values` is a Series, importing pandas (~0.3 s of every `axo preprocess`)."""
    import pyarrow as pa

    return pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)])


def _write_split(path: Path, samples: list[Sample]) -> None:
    import pyarrow as pa

    columns: dict[str, Any] = {
        "input_ids": _list_column([s.input_ids for s in samples]),
        "labels": _list_column([s.labels for s in samples]),
    }
    if samples and samples[0].label is not None:
        scores = any(isinstance(s.label, float) for s in samples)  # `problem_type: regression`
        columns["label"] = pa.array([s.label for s in samples], type=pa.float64() if scores else pa.int64())
    if any(getattr(s, "token_type_ids", None) is not None for s in samples):  # text pairs (classification)
        columns["token_type_ids"] = _list_column([getattr(s, "token_type_ids", None) or [0] * len(s.input_ids)
                                                  for s in samples])
    table = pa.table(columns)
    # The IPC stream format is what `datasets` writes, so `datasets.Dataset.from_file` can map it.
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def fsync(path: Path) -> None:
    """Flush a file's or a folder's contents to disk (folders too: that makes a rename durable)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write text rows (preference data) as JSON lines."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def save_prepared(root: Path, key: str, splits: dict[str, list[Any]], meta: dict[str, Any], *,
                  write_split: Any = None, suffix: str = ".arrow") -> Path:
    """Write `splits` and `meta` under `root/key` atomically; returns the final folder. Splits are tokenized
    samples (Arrow) unless `write_split(path, items)` and its file `suffix` say otherwise (e.g. `write_rows`)."""
    write_split = write_split or _write_split
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.{os.getpid()}.", suffix=".partial", dir=root))
    except OSError as exc:
        reason = write_failure(exc)
        if reason is None:
            raise
        raise _disk_full(root, reason) from None
    try:
        for name, samples in splits.items():
            write_split(staging / f"{name}{suffix}", samples)
        (staging / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        for file in staging.iterdir():
            fsync(file)
        fsync(staging)
        if final.exists():  # an identical fingerprint prepared by a concurrent run: keep theirs
            shutil.rmtree(staging)
            return final
        staging.rename(final)
        fsync(root)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        reason = write_failure(exc) if isinstance(exc, Exception) else None
        if reason is not None:  # a full disk (pyarrow and Python raise OSError ENOSPC); anything else is a bug
            raise _disk_full(root, reason) from None
        raise
    return final


def _disk_full(root: Path, reason: str) -> ConfigError:
    return ConfigError([Problem(
        Severity.ERROR, Kind.MISSING_RESOURCE, "dataset_prepared_path",
        f"writing the prepared dataset to {root} failed: {reason} ({free_space(root)}). The half-written copy was "
        "removed; data prepared earlier is untouched.",
        "Free space on that disk, or point dataset_prepared_path at a disk with room.")])


def _load(folder: Path, read_split: Any, errors: tuple[type[Exception], ...]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """meta.json and each split it lists, read by `read_split(folder, name)`; None when the folder is missing,
    incomplete or unreadable (any of `errors`): the caller prepares again."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        return {name: read_split(folder, name) for name in meta["splits"]}, meta
    except (OSError, ValueError, KeyError, *errors):
        return None


def _read_samples(folder: Path, name: str) -> list[Sample]:
    import pyarrow as pa

    with pa.memory_map(str(folder / f"{name}.arrow")) as source:
        table = pa.ipc.open_stream(source).read_all()
    ids, labels = table.column("input_ids").to_pylist(), table.column("labels").to_pylist()
    classes = table.column("label").to_pylist() if "label" in table.column_names else [None] * len(ids)
    if "token_type_ids" in table.column_names:
        from axo.data.formats.classification import ClassifiedSample

        types = table.column("token_type_ids").to_pylist()
        return [ClassifiedSample(i, l, n, c, t) for n, (i, l, c, t) in enumerate(zip(ids, labels, classes, types))]
    return [Sample(i, l, n, c) for n, (i, l, c) in enumerate(zip(ids, labels, classes))]


def load_prepared(folder: Path) -> tuple[dict[str, list[Sample]], dict[str, Any]] | None:
    """The splits and meta saved in `folder`, or None when it is missing or incomplete."""
    import pyarrow as pa

    return _load(folder, _read_samples, (pa.ArrowInvalid,))


def _read_rows(folder: Path, name: str) -> list[dict[str, Any]]:
    with (folder / f"{name}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def load_rows(folder: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]] | None:
    """The text-row splits (written with `write_rows`) and meta saved in `folder`, or None when it is missing
    or incomplete."""
    return _load(folder, _read_rows, ())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_partial_folders(root: Path) -> list[Path]:
    """Delete staging folders left by killed runs (not those of running processes); returns them."""
    removed = []
    if root.is_dir():
        for leftover in root.glob(".*.partial"):
            parts = leftover.name.split(".")
            pid = int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else None
            if pid is not None and pid != os.getpid() and _alive(pid):
                continue
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
    return removed


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the cache folder `root` (created if needed).

    Preparation runs under it: with several training processes the first prepares and caches, the others
    wait here and then find the cache. A file lock, not a collective, so a long preparation cannot hit a
    distributed timeout. A folder this call created and that holds nothing but the lock afterwards (the
    preparation failed) is removed again: bad input leaves nothing behind.
    """
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    lock = root / ".lock"
    try:
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        if created and root.is_dir() and all(child == lock for child in root.iterdir()):
            shutil.rmtree(root, ignore_errors=True)
