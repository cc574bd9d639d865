"""Sample packing: many samples per row, each isolated from the others.

Bins are filled by best-fit-decreasing (at least as tight as first-fit-decreasing) within groups of
samples, after a shuffle seeded by `seed + epoch`, so every epoch sees a new arrangement and the number of
steps is known before training starts. A packed row carries `position_ids` that restart at 0 for each
sample; transformers (5.x, with the KV cache off) turns those into a block-diagonal attention mask, and
the first label of each sample is masked so no sample learns to predict the next one's first token.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from typing import Any

from axo.data.formats.base import IGNORE_INDEX, Sample

DEFAULT_GROUP_SIZE = 100_000  # samples packed together (Axolotl's sample_packing_group_size)


def best_fit_decreasing(lengths: list[int], indices: list[int], capacity: int) -> list[list[int]]:
    """Bins of `indices` whose `lengths` sum to at most `capacity`, longest samples placed first, each
    into the fullest bin that still fits it."""
    order = sorted(indices, key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (remaining space, bin number), kept sorted
    for index in order:
        size = lengths[index]
        at = bisect.bisect_left(free, (size, -1))
        if at < len(free):
            remaining, number = free.pop(at)
            bins[number].append(index)
            bisect.insort(free, (remaining - size, number))
        else:
            bins.append([index])
            bisect.insort(free, (capacity - size, len(bins) - 1))
    return bins


@dataclass(frozen=True)
class PackingPlan:
    """The packed rows of every epoch, and how full they are."""

    epochs: list[list[list[int]]]  # epoch -> rows -> sample indices
    capacity: int
    tokens: int  # sample tokens in one epoch

    @property
    def rows_per_epoch(self) -> list[int]:
        return [len(rows) for rows in self.epochs]

    @property
    def efficiency(self) -> float:
        """Sample tokens / row capacity, over the first epoch."""
        rows = len(self.epochs[0]) if self.epochs else 0
        return self.tokens / (rows * self.capacity) if rows else 0.0


def plan_packing(samples: list[Sample], capacity: int, epochs: int, seed: int, *, shuffle: bool = True,
                 group_size: int = DEFAULT_GROUP_SIZE) -> PackingPlan:
    """Pack `samples` into rows of at most `capacity` tokens for each of `epochs` epochs."""
    lengths = [len(s.input_ids) for s in samples]
    too_long = [i for i, n in enumerate(lengths) if n > capacity]
    if too_long:
        raise ValueError(f"{len(too_long)} samples are longer than the packing capacity {capacity}")
    plans = []
    for epoch in range(epochs):
        order = list(range(len(samples)))
        if shuffle:
            random.Random(seed + epoch).shuffle(order)
        rows: list[list[int]] = []
        for start in range(0, len(order), group_size):
            rows += best_fit_decreasing(lengths, order[start:start + group_size], capacity)
        if shuffle:
            random.Random(seed + epoch + 1_000_003).shuffle(rows)  # long rows first is not a training order
        plans.append(rows)
    return PackingPlan(plans, capacity, sum(lengths))


def packed_row(samples: list[Sample], indices: list[int]) -> dict[str, list[int]]:
    """One packed row: concatenated ids, labels with each sample's first label masked, restarting positions."""
    input_ids: list[int] = []
    labels: list[int] = []
    position_ids: list[int] = []
    for index in indices:
        sample = samples[index]
        input_ids += sample.input_ids
        labels += [IGNORE_INDEX, *sample.labels[1:]]
        position_ids += range(len(sample.input_ids))
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


class PackedDataset:
    """A map-style dataset of packed rows, epoch after epoch (the trainer runs it as one long epoch)."""

    def __init__(self, samples: list[Sample], plan: PackingPlan):
        self.samples = samples
        self.rows = [row for epoch in plan.epochs for row in epoch]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return packed_row(self.samples, self.rows[index])


class PackedCollator:
    """Stacks packed rows (one per micro-batch) into tensors; with `pad_to` the row is padded to a fixed
    length by a block of its own (positions from 0, labels masked), so padding never joins a sample."""

    def __init__(self, pad_token_id: int, pad_to: int | None = None):
        self.pad_token_id = pad_token_id
        self.pad_to = pad_to

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(self.pad_to or 0, max(len(f["input_ids"]) for f in features))
        batch: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
        for feature in features:
            ids = list(feature["input_ids"])
            # An unpacked sample (eval without eval_sample_packing) is a row holding one sample.
            positions = list(feature["position_ids"]) if "position_ids" in feature else list(range(len(ids)))
            missing = longest - len(ids)
            batch["input_ids"].append(ids + [self.pad_token_id] * missing)
            batch["labels"].append(list(feature["labels"]) + [IGNORE_INDEX] * missing)
            batch["position_ids"].append(positions + list(range(missing)))
        return {key: torch.tensor(value, dtype=torch.long) for key, value in batch.items()}
