"""Top-level data preparation: which datasets, how long, how split, where cached."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from axo.config.schema.base import Section
from axo.config.schema.datasets import (
    DatasetConfig,
    TrainOnEos,
    check_chat_template_name,
)


class DataSection(Section):
    datasets: list[DatasetConfig] | None = Field(None, description="Training datasets; several are merged.")
    test_datasets: list[DatasetConfig] | None = Field(
        None, description="Evaluation datasets (instead of splitting off `val_set_size`).",
    )
    chat_template: str | None = Field(
        None,
        description="Chat template for `chat_template` datasets: a built-in name, `tokenizer_default`, or `jinja`.",
    )
    chat_template_jinja: str | None = Field(
        None, description="Inline Jinja template (or path to a .jinja file) used with `chat_template: jinja`.",
    )
    eot_tokens: list[str] | None = Field(
        None, description="Tokens that end a turn (for `train_on_eot`), e.g. `[<|im_end|>]`.",
    )
    train_on_inputs: bool = Field(False, description="Also put loss on prompt tokens (default: answers only).")
    dataset_prepared_path: str | None = Field(
        None, description="Directory for the tokenized-dataset cache (default `./last_run_prepared`).",
    )
    dataset_num_proc: int | None = Field(None, ge=1, description="Processes used to tokenize (default: CPU count).")
    dataset_exact_deduplication: bool = Field(
        False, description="Drop exact duplicate samples (the first copy in the shuffled order stays; per split).",
    )
    shuffle_merged_datasets: bool = Field(
        True, description="Shuffle the merged samples with `seed`, in Axolotl's order (before long rows are dropped).",
    )
    val_set_size: float = Field(
        0.0, ge=0.0, description="Held-out evaluation split: a fraction (< 1) of the rows, or a row count (>= 1).",
    )
    sequence_len: int = Field(512, ge=8, description="Maximum tokens per sample (and per packed row).")
    excess_length_strategy: Literal["drop", "truncate", "raise"] = Field(
        "drop", description="What to do with samples longer than `sequence_len`.",
    )
    min_sample_len: int = Field(2, ge=1, description="Drop samples shorter than this many tokens.")
    sample_packing: bool = Field(False, description="Pack several samples into each row, isolated from each other.")
    eval_sample_packing: bool | None = Field(None, description="Pack evaluation rows too (default: as `sample_packing`).")
    sample_packing_eff_est: float | None = Field(None, gt=0.0, le=1.0, description="Expected packing efficiency, for step estimates.")
    pad_to_sequence_len: bool | None = Field(None, description="Pad every row to `sequence_len` (static shapes).")
    batch_flattening: bool | Literal["auto"] = Field(
        False, description="Padding-free batches without bin packing (each micro-batch flattened into one row).",
    )
    train_on_eos: TrainOnEos | None = Field(None, description="Default `train_on_eos` for chat_template datasets.")
    group_by_length: bool = Field(False, description="Batch samples of similar length together.")

    @field_validator("chat_template")
    @classmethod
    def _known_template(cls, value: str | None) -> str | None:
        return check_chat_template_name(value)
