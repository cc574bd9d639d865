"""Turn prepared samples into what the HF Trainer consumes: a `datasets.Dataset` and a padding collator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo.config.schema import AxoConfig

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase


def load_split(folder: Path, name: str, classification: bool = False) -> datasets.Dataset | None:
    """The cached split, memory-mapped from its Arrow file (None when the split is empty).

    For sequence classification the class (or score) becomes `labels` (what the loss reads), the per-token
    labels are dropped, and a text pair's `token_type_ids` stay for the collator to pad.
    """
    import datasets

    dataset = datasets.Dataset.from_file(str(folder / f"{name}.arrow"))
    if not len(dataset):
        return None
    if classification:
        dataset = dataset.remove_columns("labels").rename_column("label", "labels")
    return dataset


def packing_capacity(cfg: AxoConfig) -> int:
    """Tokens per packed row: the micro-batch's token budget."""
    return cfg.micro_batch_size * cfg.sequence_len


def collator(cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase) -> Any:
    """The batch builder for this config: packed rows, flattened micro-batches, or padded batches (input_ids
    padded with the pad token and labels with -100; to `sequence_len` when pad_to_sequence_len)."""
    from transformers import (
        DataCollatorForSeq2Seq,
        DataCollatorWithFlattening,
    )

    from axo.data.packing import PackedCollator

    if cfg.sample_packing:
        return PackedCollator(tokenizer.pad_token_id, packing_capacity(cfg) if cfg.pad_to_sequence_len else None)
    if cfg.batch_flattening:
        # transformers' padding-free collator: one row per micro-batch, positions restart, and the first
        # label of each sample is masked (separator_id).
        return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)
    if cfg.pad_to_sequence_len:
        return DataCollatorForSeq2Seq(tokenizer, padding="max_length", max_length=cfg.sequence_len,
                                      label_pad_token_id=-100, return_tensors="pt")
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, pad_to_multiple_of=8,
                                  return_tensors="pt")
