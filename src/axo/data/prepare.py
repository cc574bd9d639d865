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
        prompt_format = format_for(tokenizer, cfg, entry)
        produced = prompt_format.tokenize(rows)
        _require_trained(produced, tokenizer, prompt_format.masking(), entry.path, f"{section}[{index}]")
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
        if kept and not _trained_kinds(kept, set())[0]:  # the length rules took every trained token away
            done = ("cut every trained token off" if cfg.excess_length_strategy == "truncate"
                    else "dropped every sample that had one")
            raise data_error(f"no sample kept has a trained token: at sequence_len {cfg.sequence_len}, "
                             f"`excess_length_strategy: {cfg.excess_length_strategy}` {done}.",
                             origin=entry.path, key=f"{section}[{index}]",
                             hint="Raise `sequence_len`, or shorten the prompts so the answers fit.")
        samples += kept
        reports.append(DatasetReport(entry.path, len(rows.rows), len(kept), dict(cleaned.dropped), cleaned.truncated))
    return samples, reports


def _trained_kinds(samples: list[Sample], special: set[int]) -> tuple[bool, bool]:
    """(does any sample train a token, does any train a token outside `special`). Stops at the first
    ordinary trained token, so a normal dataset costs one sample's labels."""
    trained = False
    for sample in samples:
        if sample.label is not None:  # sequence classification: the class is what is learnt
            return True, True
        for label in sample.labels:
            if label != IGNORE_INDEX:
                if label not in special:
                    return True, True
                trained = True
    return trained, False


def _special_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    ids = set(tokenizer.all_special_ids)
    ids.update(index for index, token in tokenizer.added_tokens_decoder.items() if token.special)
    return ids


def _require_trained(samples: list[Sample], tokenizer: PreTrainedTokenizerBase, masking: tuple[str, str],
                     origin: str, key: str) -> None:
    """Refuse a dataset in which no token carries loss (training would divide by zero trained tokens and
    report a NaN loss) or only special tokens do (every answer is empty: the model would learn to stop)."""
    if not samples:
        return
    trained, ordinary = _trained_kinds(samples, _special_ids(tokenizer))
    settings, hint = masking
    if not trained:
        which = "its only sample has" if len(samples) == 1 else f"all {len(samples)} of its samples have"
        raise data_error(f"{which} no trained token ({settings}): nothing would be "
                         "learnt, and training would end in a NaN loss (0/0).", origin=origin, key=key, hint=hint)
    if not ordinary:
        raise data_error(f"only special tokens (end of sequence / end of turn) carry loss in its {len(samples)} "
                         f"samples ({settings}): every text to learn is empty.", origin=origin, key=key, hint=hint)


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
    counts = [sum(1 for label in s.labels if label != IGNORE_INDEX) for s in samples]
    trained = sum(counts)
    # Kept without sample_packing, they cost time, and a step made only of them has a 0/0 loss.
    untrained = sum(1 for s, count in zip(samples, counts) if not count and s.label is None)
    histogram: Counter = Counter()
    for length in lengths:
        bucket = 1
        while bucket < length:
            bucket *= 2
        histogram[bucket] += 1
    total = sum(lengths)
    return {"samples": len(samples), "tokens": total, "trained_tokens": trained, "untrained_samples": untrained,
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
    for split, samples in (("train", train), ("eval", evaluation)):
        if samples and not _trained_kinds(samples, set())[0]:  # each dataset has some: a split took none of them
            raise data_error(f"the {split} split holds {len(samples)} samples and none has a trained token.",
                             key="val_set_size", hint="Lower `val_set_size`, or fix the samples without a trained token.")
    folder = save_prepared(root, key, {"train": train, "eval": evaluation}, meta)
    return PreparedData(train, evaluation, folder, key, False, meta)
