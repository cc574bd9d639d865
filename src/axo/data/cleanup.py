"""Length rules and clean-up after tokenization; every sample dropped is counted with its reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

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
    kept: list[int] = field(default_factory=list)  # input position of each sample kept (the merged order needs it)


def apply_length_rules(samples: list[Sample], rows: Rows, cfg: AxoConfig) -> Cleaned:
    """Apply `excess_length_strategy`, `min_sample_len` and, when packing, drop samples with no loss."""
    result = Cleaned([])
    limit = cfg.sequence_len
    for position, sample in enumerate(samples):
        if len(sample.input_ids) > limit:
            if cfg.excess_length_strategy == "raise":
                origin, line = rows.where(sample.row)
                raise data_error(f"row {line} is {len(sample.input_ids)} tokens, more than sequence_len {limit}.",
                                 origin=origin, line=line, key="sequence_len",
                                 hint="Raise `sequence_len`, or set `excess_length_strategy: drop` or `truncate`.")
            if cfg.excess_length_strategy == "drop":
                result.dropped[TOO_LONG] += 1
                continue
            sample = truncated(sample, limit)
            result.truncated += 1
        if len(sample.input_ids) < cfg.min_sample_len:
            result.dropped[TOO_SHORT] += 1
            continue
        if cfg.sample_packing and sample.label is None and all(label == IGNORE_INDEX for label in sample.labels):
            result.dropped[NOTHING_TRAINED] += 1
            continue
        result.samples.append(sample)
        result.kept.append(position)
    return result


def truncated(sample: Sample, limit: int) -> Sample:
    """`sample` cut to its first `limit` tokens (a text pair's token type ids with it)."""
    cut = replace(sample, input_ids=sample.input_ids[:limit], labels=sample.labels[:limit])
    if getattr(cut, "token_type_ids", None) is not None:
        cut.token_type_ids = cut.token_type_ids[:limit]
    return cut


def unique_positions(samples: list[Sample]) -> list[int]:
    """Positions of the samples that are not exact repeats (same tokens, labels and class) of an earlier one.

    The first occurrence in the order given wins, as in Axolotl, which deduplicates after shuffling."""
    seen: set[tuple] = set()
    kept = []
    for position, sample in enumerate(samples):
        key = (tuple(sample.input_ids), tuple(sample.labels), sample.label)
        if key not in seen:
            seen.add(key)
            kept.append(position)
    return kept
