"""Task-structured data for meta-learning: each row is one task, `{"task_id": …, "support_set": [rows],
"query_set": [rows]}`, whose inner rows are in an existing prompt format (alpaca, chat_template, completion, …;
`meta_learning.task_type` or the dataset's `type:`) and are tokenized and masked by it.

`prepare_tasks(cfg)` reads, checks, tokenizes, shuffles (seed), splits (`val_set_size`, in tasks) and caches the
tasks as JSONL under `dataset_prepared_path`; `read_tasks` tokenizes one file of tasks for evaluation.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo import __version__
from axo.config.schema import AxoConfig, DatasetConfig
from axo.data import formats  # noqa: F401  (registers every prompt format)
from axo.data.cache import (
    fingerprint,
    load_rows,
    locked,
    remove_partial_folders,
    save_prepared,
    write_rows,
)
from axo.data.errors import data_error, describe
from axo.data.formats.base import IGNORE_INDEX, format_for
from axo.data.prepare import hold_out
from axo.data.sources import Rows, read_rows

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Row = dict[str, list[int]]  # {"input_ids", "labels"}
Task = dict[str, Any]  # {"task_id", "support": [Row], "query": [Row]}
_SETS = ("support", "query")


@dataclass
class PreparedTasks:
    train: list[Task]
    eval: list[Task]
    folder: Path
    fingerprint: str
    from_cache: bool
    meta: dict[str, Any]


def task_entry(cfg: AxoConfig, entry: DatasetConfig) -> DatasetConfig:
    """The dataset entry with the `type:` of the rows inside its tasks."""
    meta = cfg.meta_learning
    kind = meta.task_type if meta and meta.task_type else entry.type
    return entry.model_copy(update={"type": kind})


def _inner_rows(rows: Rows, cfg: AxoConfig) -> tuple[Rows, list[tuple[int, str]]]:
    """Every task's support and query rows as one `Rows` (each inner row located at its task's line), and for
    each inner row its (task index, set name)."""
    meta = cfg.meta_learning
    inner, owners, lines, files = [], [], [], []
    for index, row in enumerate(rows.rows):
        origin, line = rows.where(index)
        for name, field in zip(_SETS, (meta.support_field, meta.query_field)):
            value = row.get(field)
            if not isinstance(value, list) or not value:
                found = "missing" if field not in row else f"{describe(value)}"
                raise data_error(f"row {line}: task {row.get(meta.task_id_field, index)!r} has no {name} rows "
                                 f"({field!r} is {found}; a non-empty list of rows is expected).", origin=origin,
                                 line=line, key=field, hint=f'Give each task `"{field}": [{{…}}, …]` in the rows\' '
                                 "format, or set `meta_learning.support_field`/`query_field` to your field names.")
            for position, item in enumerate(value):
                if not isinstance(item, dict):
                    raise data_error(f"row {line}: {field}[{position}] is {describe(item)}, not a row (JSON object).",
                                     origin=origin, line=line, key=field, hint="Write each inner row as an object.")
                inner.append(item)
                owners.append((index, name))
                lines.append(line)
                files.append(origin)
    return Rows(rows.source, inner, lines, files), owners


def context_ids(rows: list[Row], bos_token_id: int | None) -> list[int]:
    """Rows one after another, as trained (prompt and answer), each row's leading BOS after the first dropped:
    the examples a query is asked after."""
    context: list[int] = []
    for row in rows:
        ids = list(row["input_ids"])
        context += ids[1:] if context and bos_token_id is not None and ids[:1] == [bos_token_id] else ids
    return context


def after_context(row: Row, context: list[int], bos_token_id: int | None) -> Row:
    """`row` asked after `context`: its BOS dropped when the context has one, the context's tokens untrained."""
    ids, labels = list(row["input_ids"]), list(row["labels"])
    if context and bos_token_id is not None and ids[:1] == [bos_token_id]:
        ids, labels = ids[1:], labels[1:]
    return {"input_ids": context + ids, "labels": [IGNORE_INDEX] * len(context) + labels}


def _check_context_fits(tasks: list[Task], cfg: AxoConfig, rows: Rows, bos_token_id: int | None) -> None:
    """With `support_in_context`, every query row after all of its task's support rows fits `sequence_len`."""
    for index, task in enumerate(tasks):
        context = context_ids(task["support"], bos_token_id)
        longest = max(len(after_context(row, context, bos_token_id)["input_ids"]) for row in task["query"])
        if longest > cfg.sequence_len:
            origin, line = rows.where(index)
            raise data_error(f"row {line}: task {task['task_id']!r}: a query row after its {len(task['support'])} "
                             f"support rows is {longest} tokens, more than sequence_len {cfg.sequence_len} "
                             "(meta_learning.support_in_context).", origin=origin, line=line, key="sequence_len",
                             hint="Raise `sequence_len`, give the task fewer or shorter support rows, or set "
                             "`meta_learning.support_in_context: false`.")


def tokenize_tasks(rows: Rows, cfg: AxoConfig, entry: DatasetConfig, tokenizer: PreTrainedTokenizerBase) -> list[Task]:
    """The tasks of `rows`, their inner rows tokenized and masked by the task format.

    Raises:
        DataError: for a task without support or query rows, an inner row the format rejects, an inner row longer
            than `sequence_len` (with `support_in_context`: a query row after its task's support rows), or one
            with no trained token.
    """
    inner, owners = _inner_rows(rows, cfg)
    samples = format_for(tokenizer, cfg, task_entry(cfg, entry)).tokenize(inner)
    meta = cfg.meta_learning
    tasks: list[Task] = [{"task_id": str(row.get(meta.task_id_field, index)), "support": [], "query": []}
                         for index, row in enumerate(rows.rows)]
    for sample in samples:
        task, name = owners[sample.row]
        origin, line = inner.where(sample.row)
        where = f"row {line}: task {tasks[task]['task_id']!r}, a {name} row"
        if len(sample.input_ids) > cfg.sequence_len:
            raise data_error(f"{where} is {len(sample.input_ids)} tokens, more than sequence_len {cfg.sequence_len}.",
                             origin=origin, line=line, key="sequence_len", hint="Raise `sequence_len`, or shorten "
                             "the task's rows (each support and query row is one sequence).")
        if all(label == IGNORE_INDEX for label in sample.labels):
            raise data_error(f"{where} has no trained token (its answer is empty or masked).", origin=origin,
                             line=line, key=name, hint="Give every inner row an answer.")
        tasks[task][name].append({"input_ids": sample.input_ids, "labels": sample.labels})
    if meta.support_in_context:
        _check_context_fits(tasks, cfg, rows, tokenizer.bos_token_id)
    return tasks


def _shuffled(tasks: list[Task], cfg: AxoConfig) -> list[Task]:
    """The tasks in the seed's order (`shuffle_merged_datasets`), before the eval tasks are held out."""
    import numpy as np

    if not cfg.shuffle_merged_datasets:
        return tasks
    return [tasks[i] for i in np.random.default_rng(cfg.seed).permutation(len(tasks))]


def _read(entries: list[DatasetConfig], cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase,
          config_dir: Path | None) -> tuple[list[Task], list[dict[str, Any]]]:
    tasks, reports = [], []
    for entry in entries:
        rows = read_rows(entry, config_dir, cfg.seed)
        found = tokenize_tasks(rows, cfg, entry, tokenizer)
        tasks += found
        reports.append({"path": entry.path, "tasks": len(found), "support_rows": sum(len(t["support"]) for t in found),
                        "query_rows": sum(len(t["query"]) for t in found)})
    return tasks, reports


def prepare_tasks(cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase, config_dir: Path | None = None, *,
                  force: bool = False) -> PreparedTasks:
    """The train/eval tasks of `cfg`, from the cache under `dataset_prepared_path` when nothing that matters changed.

    Raises:
        DataError: for unreadable or malformed task rows (naming file, row and field).
    """
    if not cfg.datasets:
        raise data_error("no datasets configured.", key="datasets", hint="Add `datasets:` with a file of tasks.")
    meta = cfg.meta_learning
    shape = f"{meta.support_field}:{meta.query_field}:{meta.task_id_field}:{meta.task_type}:{meta.support_in_context}"
    key = hashlib.sha256(f"{fingerprint(cfg, tokenizer, config_dir)}:meta:{shape}".encode()).hexdigest()[:20]
    root = Path(cfg.dataset_prepared_path or "last_run_prepared")
    with locked(root):
        remove_partial_folders(root)
        cached = None if force else load_rows(root / key)
        if cached is not None:
            splits, info = cached
            return PreparedTasks(splits["train"], splits.get("eval", []), root / key, key, True, info)
        started = time.perf_counter()
        tasks, reports = _read(cfg.datasets, cfg, tokenizer, config_dir)
        if cfg.test_datasets:
            train, evaluation = _shuffled(tasks, cfg), _read(cfg.test_datasets, cfg, tokenizer, config_dir)[0]
        else:
            train, evaluation = hold_out(_shuffled(tasks, cfg), cfg, "tasks")
        info = {"axo_version": __version__, "fingerprint": key, "kind": "meta", "datasets": reports,
                "splits": ["train", "eval"], "train": {"tasks": len(train)}, "eval": {"tasks": len(evaluation)},
                "seconds": round(time.perf_counter() - started, 3), "tokenizer": str(tokenizer.name_or_path)}
        folder = save_prepared(root, key, {"train": train, "eval": evaluation}, info, write_split=write_rows,
                               suffix=".jsonl")
    return PreparedTasks(train, evaluation, folder, key, False, info)


def read_tasks(path: Path, cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase) -> list[Task]:
    """The tasks of one file (for evaluation), in the format of the run's first dataset entry (its type and field
    options; not its selection of rows: split, files, shards)."""
    where = {"path": str(path), "split": "train", "data_files": None, "name": None, "shards": None, "shards_idx": None}
    entry = (cfg.datasets or [DatasetConfig(path=str(path), type="alpaca")])[0].model_copy(update=where)
    return tokenize_tasks(read_rows(entry, None, cfg.seed), cfg, entry, tokenizer)
