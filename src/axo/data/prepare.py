"""Prepare the datasets of a config: read, tokenize, clean, merge, split, cache.

`prepare_data(cfg)` is what `axo preprocess` and `axo train` call. It returns the cached result when the
fingerprint matches, and otherwise prepares and saves it atomically.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo import __version__
from axo.config.schema import AxoConfig, DatasetConfig
from axo.data import formats  # noqa: F401  (registers every prompt format)
from axo.data.cache import (
    fingerprint,
    load_prepared,
    locked,
    remove_partial_folders,
    save_prepared,
)
from axo.data.cleanup import DUPLICATE, apply_length_rules, deduplicate
from axo.data.errors import data_error
from axo.data.formats.base import IGNORE_INDEX, Sample, format_for
from axo.data.sources import read_rows

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass
class DatasetReport:
    """What happened to one dataset entry."""

    path: str
    rows: int
    samples: int
    dropped: dict[str, int] = field(default_factory=dict)
    truncated: int = 0


@dataclass
class PreparedData:
    """Tokenized train and eval samples, where they are cached, and what preparation did."""

    train: list[Sample]
    eval: list[Sample]
    folder: Path
    fingerprint: str
    from_cache: bool
    meta: dict[str, Any]


def _prepare_entries(entries: list[DatasetConfig], cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase,
                     config_dir: Path | None, section: str, seen: set | None) -> tuple[list[Sample], list[DatasetReport]]:
    samples: list[Sample] = []
    reports = []
    for index, entry in enumerate(entries):
        rows = read_rows(entry, config_dir)
        produced = format_for(tokenizer, cfg, entry).tokenize(rows)
        cleaned = apply_length_rules(produced, rows, cfg)
        kept = cleaned.samples
        if seen is not None:
            kept, repeats = deduplicate(kept, seen)
            if repeats:
                cleaned.dropped[DUPLICATE] += repeats
        if rows.rows and not kept:
            reasons = ", ".join(f"{n} {why}" for why, n in cleaned.dropped.items())
            raise data_error(f"every one of its {len(rows.rows)} rows was dropped ({reasons}).", origin=entry.path,
                             key=f"{section}[{index}]",
                             hint="Raise `sequence_len`, set `excess_length_strategy: truncate`, or check the format.")
        if not rows.rows:
            raise data_error("holds no rows.", origin=entry.path, key=f"{section}[{index}]",
                             hint="Check the file, `split` and `data_files`.")
        samples += kept
        reports.append(DatasetReport(entry.path, len(rows.rows), len(kept), dict(cleaned.dropped), cleaned.truncated))
    return samples, reports


def _split(samples: list[Sample], cfg: AxoConfig) -> tuple[list[Sample], list[Sample]]:
    """Hold out `val_set_size` (fraction or count) from the end, as `datasets`' train_test_split does."""
    if cfg.val_set_size <= 0:
        return samples, []
    size = ceil(cfg.val_set_size * len(samples)) if cfg.val_set_size < 1 else int(cfg.val_set_size)
    if size >= len(samples):
        raise data_error(f"val_set_size {cfg.val_set_size:g} leaves no training rows out of {len(samples)}.",
                         key="val_set_size", hint="Use a fraction such as 0.05, or fewer rows.")
    return samples[: len(samples) - size], samples[len(samples) - size:]


def summarize(samples: list[Sample]) -> dict[str, Any]:
    """Token counts and a length histogram (powers of two) for a split."""
    lengths = [len(s.input_ids) for s in samples]
    trained = sum(sum(1 for label in s.labels if label != IGNORE_INDEX) for s in samples)
    histogram: Counter = Counter()
    for length in lengths:
        bucket = 1
        while bucket < length:
            bucket *= 2
        histogram[bucket] += 1
    total = sum(lengths)
    return {"samples": len(samples), "tokens": total, "trained_tokens": trained,
            "trained_fraction": trained / total if total else 0.0,
            "max_length": max(lengths, default=0), "mean_length": total / len(samples) if samples else 0.0,
            "length_histogram": {str(k): histogram[k] for k in sorted(histogram)}}


def prepare_data(cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase | None = None, *,
                 config_dir: Path | None = None, force: bool = False) -> PreparedData:
    """Prepared train/eval samples for `cfg`, from the cache when nothing that matters changed.

    Raises:
        DataError: for unreadable or malformed data, naming the file, row and field.
    """
    if tokenizer is None:
        from axo.models.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(cfg)
    if not cfg.datasets:
        raise data_error("no datasets configured.", key="datasets", hint="Add `datasets:` with at least one entry.")
    key = fingerprint(cfg, tokenizer, config_dir)
    root = Path(cfg.dataset_prepared_path or "last_run_prepared")
    with locked(root):  # several training processes (or commands) share the cache: one prepares, the rest wait
        return _prepare_unlocked(cfg, tokenizer, config_dir, force, key, root)


def _prepare_unlocked(cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase, config_dir: Path | None, force: bool,
                      key: str, root: Path) -> PreparedData:
    remove_partial_folders(root)
    if not force:
        cached = load_prepared(root / key)
        if cached is not None:
            splits, meta = cached
            return PreparedData(splits["train"], splits.get("eval", []), root / key, key, True, meta)

    started = time.perf_counter()
    seen: set | None = set() if cfg.dataset_exact_deduplication else None
    train, train_reports = _prepare_entries(cfg.datasets, cfg, tokenizer, config_dir, "datasets", seen)
    if cfg.shuffle_merged_datasets:
        random.Random(cfg.seed).shuffle(train)
    if cfg.test_datasets:
        evaluation, eval_reports = _prepare_entries(cfg.test_datasets, cfg, tokenizer, config_dir, "test_datasets", seen)
    else:
        train, evaluation = _split(train, cfg)
        eval_reports = []
    meta = {
        "axo_version": __version__,
        "fingerprint": key,
        "splits": ["train", "eval"],
        "datasets": [vars(r) for r in train_reports],
        "test_datasets": [vars(r) for r in eval_reports],
        "train": summarize(train),
        "eval": summarize(evaluation),
        "seconds": round(time.perf_counter() - started, 3),
        "tokenizer": str(tokenizer.name_or_path),
    }
    folder = save_prepared(root, key, {"train": train, "eval": evaluation}, meta)
    return PreparedData(train, evaluation, folder, key, False, meta)
