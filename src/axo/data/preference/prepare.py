"""Prepare a config's preference datasets as Axolotl 0.21 does: read, transform, length rule, merge, split, cache.

Order (Axolotl's `utils/data/rl.py`, checked against a real run in tests/fixtures/preference/expected.json):
each entry's rows are transformed and filtered on their own (`excess_length_strategy`); the kept rows of all
entries are concatenated and, with `shuffle_merged_datasets` (default), permuted with numpy's
`default_rng(seed)` (`datasets.Dataset.shuffle`), a single dataset too; exact repeats are removed
(`dataset_exact_deduplication`, the first copy stays; a row is its source columns with the produced ones over
them); `val_set_size` holds out the tail; and eval rows that repeat a train row are removed. Reward models
(`bradley_terry.*`) go through Axolotl's SFT loader instead: shuffled over every row, cut to `sequence_len`
rather than dropped, and eval not compared with train.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo import __version__
from axo.config.schema import AxoConfig, DatasetConfig
from axo.data import preference  # noqa: F401  (registers every preference type)
from axo.data.cache import (
    fingerprint,
    load_rows,
    locked,
    remove_partial_folders,
    save_prepared,
    write_rows,
)
from axo.data.errors import data_error
from axo.data.preference.base import KTO_METHODS, columns_for, preference_format_for
from axo.data.prepare import hold_out
from axo.data.sources import Rows, read_rows

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PROMPT_TOO_LONG = "prompt longer than sequence_len"
TOO_LONG = "longer than sequence_len"
DUPLICATE = "exact duplicate"
REPEATS_TRAIN = "repeats a train row"


@dataclass
class PreparedPreference:
    """Text rows of the train and eval splits, where they are cached, and what preparation did."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    folder: Path
    fingerprint: str
    from_cache: bool
    meta: dict[str, Any]


@dataclass
class _Entry:
    """One entry's kept rows (with their dedup keys) and its report."""

    rows: list[dict[str, Any]]
    keys: list[str]
    report: dict[str, Any] = field(default_factory=dict)


class _Lengths:
    """Axolotl's length rule: token counts without special tokens; prompt + each side <= sequence_len."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, method: str, limit: int):
        self.tokenizer, self.limit = tokenizer, limit
        self.sides = ("completion",) if method in KTO_METHODS else ("chosen", "rejected")

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def problem(self, row: dict[str, Any]) -> str | None:
        """None when the row fits, else why not."""
        prompt = len(self.ids(row["prompt"]))
        if all(prompt + len(self.ids(row[side])) <= self.limit for side in self.sides):
            return None
        return PROMPT_TOO_LONG if prompt >= self.limit else TOO_LONG

    def truncate(self, row: dict[str, Any]) -> dict[str, Any]:
        """Cut each side to the tokens left after the prompt (decoded back to text), as Axolotl does; a row
        whose prompt alone fills sequence_len is returned unchanged (and then dropped)."""
        room = self.limit - len(self.ids(row["prompt"]))
        if room <= 0:
            return row
        cut = dict(row)
        for side in self.sides:
            ids = self.ids(row[side])
            if len(ids) > room:
                cut[side] = self.tokenizer.decode(ids[:room], skip_special_tokens=False)
        return cut


def _row_key(source: dict[str, Any], produced: dict[str, Any]) -> str:
    """What Axolotl's exact deduplication compares: the source columns (a missing one is null) with the
    produced ones written over them."""
    merged = {k: v for k, v in {**source, **produced}.items() if v is not None}
    return hashlib.sha256(json.dumps(merged, sort_keys=True, default=str).encode()).hexdigest()


def _prepare_entry(entry: DatasetConfig, index: int, section: str, cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase,
                   method: str, config_dir: Path | None) -> _Entry:
    rows: Rows = read_rows(entry, config_dir, cfg.seed)
    produced = preference_format_for(tokenizer, cfg, entry, method).transform(rows)
    lengths = _Lengths(tokenizer, method, cfg.sequence_len)
    strategy = (cfg.excess_length_strategy or "drop").lower()
    kept, keys, dropped, truncated = [], [], {}, 0
    for position, row in enumerate(produced):
        problem = lengths.problem(row)
        if problem is not None and method == "reward":  # Axolotl cuts reward pairs at sequence_len, drops none
            truncated += 1
        elif problem is not None and strategy == "raise":
            origin, line = rows.where(position)
            what = "its prompt alone" if problem == PROMPT_TOO_LONG else "its prompt with an answer"
            raise data_error(f"row {line}: {what} is longer than sequence_len {cfg.sequence_len} (tokens without "
                             "special tokens).", origin=origin, line=line, key="prompt" if problem == PROMPT_TOO_LONG
                             else "sequence_len", hint="Raise `sequence_len`, shorten the row, or set "
                             "`excess_length_strategy: drop` or `truncate`.")
        elif problem is not None and strategy == "truncate":
            row = lengths.truncate(row)
            if lengths.problem(row) is not None:
                dropped[PROMPT_TOO_LONG] = dropped.get(PROMPT_TOO_LONG, 0) + 1
                continue
            truncated += 1
        elif problem is not None:
            dropped[problem] = dropped.get(problem, 0) + 1
            continue
        kept.append(row)
        # a reward row is compared as Axolotl's SFT loader compares it: by what it produced only
        keys.append(_row_key({} if method == "reward" else rows.rows[position], row))
    report = {"path": entry.path, "rows": len(rows.rows), "samples": len(kept), "dropped": dropped,
              "truncated": truncated}
    where = f"{section}[{index}]"
    if not rows.rows:
        raise data_error("holds no rows.", origin=entry.path, key=where, hint="Check the file, `split` and `data_files`.")
    if not kept:
        reasons = ", ".join(f"{n} {why}" for why, n in dropped.items())
        raise data_error(f"every one of its {len(rows.rows)} rows was dropped ({reasons}).", origin=entry.path,
                         key=where, hint="Raise `sequence_len`, set `excess_length_strategy: truncate`, or shorten "
                                         "the prompts.")
    return _Entry(kept, keys, report)


def _permutation(n: int, seed: int) -> list[int]:
    import numpy as np

    return np.random.default_rng(seed).permutation(n).tolist()


def _merge(entries: list[_Entry], cfg: AxoConfig, method: str) -> list[tuple[dict[str, Any], str, int]]:
    """Concatenate, shuffle (`shuffle_merged_datasets`, with `seed`) and deduplicate the entries' rows."""
    merged = [(row, key, owner) for owner, e in enumerate(entries) for row, key in zip(e.rows, e.keys)]
    if cfg.shuffle_merged_datasets and not getattr(cfg, "curriculum_sampling", False):
        merged = [merged[i] for i in _permutation(len(merged), cfg.seed)]
    if cfg.dataset_exact_deduplication:
        seen: set[str] = set()
        unique = []
        for item in merged:
            if item[1] in seen:
                report = entries[item[2]].report
                report["dropped"][DUPLICATE] = report["dropped"].get(DUPLICATE, 0) + 1
                report["samples"] -= 1
                continue
            seen.add(item[1])
            unique.append(item)
        merged = unique
    return merged


def _load_section(entries: list[DatasetConfig], section: str, cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase,
                  method: str, config_dir: Path | None) -> tuple[list, list[dict[str, Any]]]:
    prepared = [_prepare_entry(e, i, section, cfg, tokenizer, method, config_dir) for i, e in enumerate(entries)]
    return _merge(prepared, cfg, method), [p.report for p in prepared]


def _build(cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase, method: str,
           config_dir: Path | None) -> tuple[list[dict], list[dict], dict[str, Any]]:
    train, train_reports = _load_section(cfg.datasets, "datasets", cfg, tokenizer, method, config_dir)
    eval_reports: list[dict[str, Any]] = []
    if cfg.test_datasets:
        evaluation, eval_reports = _load_section(cfg.test_datasets, "test_datasets", cfg, tokenizer, method, config_dir)
    else:
        train, evaluation = hold_out(train, cfg)
    removed = 0
    if cfg.dataset_exact_deduplication and method != "reward":  # Axolotl's RL loader compares eval with train
        seen = {key for _, key, _ in train}
        before = len(evaluation)
        evaluation = [item for item in evaluation if item[1] not in seen]
        removed = before - len(evaluation)
    meta = {"datasets": train_reports, "test_datasets": eval_reports,
            "eval_dropped": {REPEATS_TRAIN: removed} if removed else {}}
    return [row for row, _, _ in train], [row for row, _, _ in evaluation], meta


def prepare_preference(cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase, method: str,
                       config_dir: Path | None = None, *, force: bool = False) -> PreparedPreference:
    """The train/eval preference rows of `cfg` for `method` (dpo, ipo, orpo, simpo, kto or reward), from the
    cache under `dataset_prepared_path` when nothing that matters changed.

    Raises:
        DataError: for unreadable or malformed rows (naming file, row and field), a type that is not a
            `method` type, a dataset whose every row was dropped, or a row too long under
            `excess_length_strategy: raise`.
    """
    if not cfg.datasets:
        raise data_error("no datasets configured.", key="datasets", hint="Add `datasets:` with at least one entry.")
    base = fingerprint(cfg, tokenizer, config_dir)
    key = hashlib.sha256(f"{base}:preference:{method}".encode()).hexdigest()[:20]
    root = Path(cfg.dataset_prepared_path or "last_run_prepared")
    with locked(root):  # several processes share the cache: one prepares, the rest wait and then read it
        remove_partial_folders(root)
        if not force:
            cached = load_rows(root / key)
            if cached is not None:
                splits, meta = cached
                return PreparedPreference(splits["train"], splits.get("eval", []), root / key, key, True, meta)
        started = time.perf_counter()
        train, evaluation, reports = _build(cfg, tokenizer, method, config_dir)
        meta = {"axo_version": __version__, "fingerprint": key, "kind": "preference", "method": method,
                "columns": list(columns_for(method)), "splits": ["train", "eval"], **reports,
                "train": {"rows": len(train)}, "eval": {"rows": len(evaluation)},
                "seconds": round(time.perf_counter() - started, 3), "tokenizer": str(tokenizer.name_or_path)}
        folder = save_prepared(root, key, {"train": train, "eval": evaluation}, meta, write_split=write_rows,
                               suffix=".jsonl")
    return PreparedPreference(train, evaluation, folder, key, False, meta)
