"""Length rules and clean-up after tokenization; every sample dropped is counted with its reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from axo.config.schema import AxoConfig
from axo.data.errors import data_error
from axo.data.formats.base import IGNORE_INDEX, Sample
from axo.data.sources import Rows

TOO_LONG = "longer than sequence_len"
TOO_SHORT = "shorter than min_sample_len"
NOTHING_TRAINED = "no trained token"
DUPLICATE = "exact duplicate"


@dataclass
class Cleaned:
    samples: list[Sample]
    dropped: Counter = field(default_factory=Counter)
    truncated: int = 0


def apply_length_rules(samples: list[Sample], rows: Rows, cfg: AxoConfig) -> Cleaned:
    """Apply `excess_length_strategy`, `min_sample_len` and, when packing, drop samples with no loss."""
    result = Cleaned([])
    limit = cfg.sequence_len
    for sample in samples:
        if len(sample.input_ids) > limit:
            if cfg.excess_length_strategy == "raise":
                origin, line = rows.where(sample.row)
                raise data_error(f"row {line} is {len(sample.input_ids)} tokens, more than sequence_len {limit}.",
                                 origin=origin, line=line, key="sequence_len",
                                 hint="Raise `sequence_len`, or set `excess_length_strategy: drop` or `truncate`.")
            if cfg.excess_length_strategy == "drop":
                result.dropped[TOO_LONG] += 1
                continue
            sample = Sample(sample.input_ids[:limit], sample.labels[:limit], sample.row, sample.label)
            result.truncated += 1
        if len(sample.input_ids) < cfg.min_sample_len:
            result.dropped[TOO_SHORT] += 1
            continue
        if cfg.sample_packing and sample.label is None and all(label == IGNORE_INDEX for label in sample.labels):
            result.dropped[NOTHING_TRAINED] += 1
            continue
        result.samples.append(sample)
    return result


def deduplicate(samples: list[Sample], seen: set[tuple] | None = None) -> tuple[list[Sample], int]:
    """Drop exact repeats (same tokens and labels); `seen` carries across datasets and splits."""
    seen = set() if seen is None else seen
    kept = []
    for sample in samples:
        key = (tuple(sample.input_ids), tuple(sample.labels), sample.label)
        if key in seen:
            continue
        seen.add(key)
        kept.append(sample)
    return kept, len(samples) - len(kept)
