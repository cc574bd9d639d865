"""Prepare the datasets of a config: read, tokenize, clean, merge, split, cache.

`prepare_data(cfg)` is what `axo preprocess` and `axo train` call. It returns the cached result when the
fingerprint matches, and otherwise prepares and saves it atomically.
"""

from __future__ import annotations

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
from axo.data.cleanup import DUPLICATE, apply_length_rules, unique_positions
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
    label_names: list[str] | None = None  # classification: the class names, in id order, when labels were names


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
                     config_dir: Path | None, section: str) -> tuple[list[Sample], list[DatasetReport]]:
    """The samples of `entries` in Axolotl 0.21's order: tokenized samples of every entry concatenated,
    permuted with numpy's `default_rng(seed)` over all of them *before* the length rules drop any (this is
    `datasets.Dataset.shuffle(seed=…)`), then filtered in that order, then exact repeats removed (the first in
    the shuffled order stays). The length rules drop sample by sample, so applying them per entry first and
    keeping the positions gives the same rows as filtering after the shuffle, with drops counted per entry."""
    slots: list[Sample | None] = []  # every tokenized sample in entry order; None where a length rule dropped it
    owners: list[int] = []
    reports = []
    for index, entry in enumerate(entries):
        rows = read_rows(entry, config_dir, cfg.seed)
        prompt_format = format_for(tokenizer, cfg, entry)
        produced = prompt_format.tokenize(rows)
        _require_trained(produced, tokenizer, prompt_format.masking(), entry.path, f"{section}[{index}]")
        cleaned = apply_length_rules(produced, rows, cfg)
        report = DatasetReport(entry.path, len(rows.rows), len(cleaned.samples), dict(cleaned.dropped),
                               cleaned.truncated, getattr(prompt_format, "label_names", None))
        _require_kept(cleaned.samples, report, cfg, f"{section}[{index}]")
        kept: list[Sample | None] = [None] * len(produced)
        for position, sample in zip(cleaned.kept, cleaned.samples):
            kept[position] = sample
        slots += kept
        owners += [index] * len(produced)
        reports.append(report)
    if cfg.shuffle_merged_datasets:
        import numpy as np

        order = np.random.default_rng(cfg.seed).permutation(len(slots)).tolist()
    else:
        order = range(len(slots))
    merged = [(slots[i], owners[i]) for i in order if slots[i] is not None]
    if cfg.dataset_exact_deduplication:
        merged = _deduplicate(merged, reports, cfg, section)
    return [sample for sample, _ in merged], reports


def _require_kept(kept: list[Sample], report: DatasetReport, cfg: AxoConfig, key: str) -> None:
    """Refuse a dataset with no rows, or whose every row was dropped, or whose kept samples train nothing."""
    if report.rows and not kept:
        reasons = ", ".join(f"{n} {why}" for why, n in report.dropped.items())
        raise data_error(f"every one of its {report.rows} rows was dropped ({reasons}).", origin=report.path,
                         key=key, hint="Raise `sequence_len`, set `excess_length_strategy: truncate`, or check the format.")
    if not report.rows:
        raise data_error("holds no rows.", origin=report.path, key=key, hint="Check the file, `split` and `data_files`.")
    if not _trained_kinds(kept, set())[0]:  # the length rules took every trained token away
        done = ("cut every trained token off" if cfg.excess_length_strategy == "truncate"
                else "dropped every sample that had one")
        raise data_error(f"no sample kept has a trained token: at sequence_len {cfg.sequence_len}, "
                         f"`excess_length_strategy: {cfg.excess_length_strategy}` {done}.",
                         origin=report.path, key=key, hint="Raise `sequence_len`, or shorten the prompts so the answers fit.")


def _deduplicate(merged: list[tuple[Sample, int]], reports: list[DatasetReport], cfg: AxoConfig,
                 section: str) -> list[tuple[Sample, int]]:
    """Drop exact repeats within one split (`datasets`, or `test_datasets`: as in Axolotl, eval rows are not
    compared with train rows), counting each against the entry of the copy dropped."""
    unique = unique_positions([sample for sample, _ in merged])
    if len(unique) == len(merged):
        return merged
    kept = set(unique)
    for position, (_, owner) in enumerate(merged):
        if position not in kept:
            report = reports[owner]
            report.dropped[DUPLICATE] = report.dropped.get(DUPLICATE, 0) + 1
            report.samples -= 1
    result = [merged[position] for position in unique]
    for index, report in enumerate(reports):
        if not report.samples:
            _require_kept([], report, cfg, f"{section}[{index}]")
    return result


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


def hold_out(items: list, cfg: AxoConfig, unit: str = "rows") -> tuple[list, list]:
    """(train, eval): `val_set_size` (a fraction, rounded up, or a count) held out from the end, as `datasets`'
    train_test_split does. Samples, preference rows and meta-learning tasks are all split this way.

    Raises:
        DataError: when the held-out part would leave no training `unit`.
    """
    if not cfg.val_set_size or cfg.val_set_size <= 0:
        return items, []
    size = ceil(cfg.val_set_size * len(items)) if cfg.val_set_size < 1 else int(cfg.val_set_size)
    if size >= len(items):
        raise data_error(f"val_set_size {cfg.val_set_size:g} leaves no training {unit} out of {len(items)}.",
                         key="val_set_size", hint=f"Use a fraction such as 0.05, or fewer {unit}.")
    return items[: len(items) - size], items[len(items) - size:]


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
    train, train_reports = _prepare_entries(cfg.datasets, cfg, tokenizer, config_dir, "datasets")
    if cfg.test_datasets:
        evaluation, eval_reports = _prepare_entries(cfg.test_datasets, cfg, tokenizer, config_dir, "test_datasets")
    else:
        train, evaluation = hold_out(train, cfg)
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
