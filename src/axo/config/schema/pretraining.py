"""Streamed pretraining (`pretraining_dataset:`), under Axolotl 0.21's key names: raw text read as a stream,
tokenized and packed while training runs (train/modes/pretraining.py, data/streaming.py)."""

from __future__ import annotations

from pydantic import Field, model_validator

from axo.config.schema.base import Section

DEFAULT_STREAM_BUFFER = 10_000  # Axolotl's `streaming_multipack_buffer_size` default


class PretrainingDataset(Section):
    """One streamed text dataset (Axolotl reads only the first entry of `pretraining_dataset`)."""

    path: str = Field(..., description="A Hugging Face Hub dataset id, or a local file (.jsonl/.json, .txt, .csv, "
                      ".parquet) or folder, read as a stream.")
    name: str | None = Field(None, description="The Hub dataset's configuration (subset), e.g. `sample-10BT`.")
    split: str = Field("train", description="The split to stream.")
    text_column: str = Field("text", description="The column holding each document's text.")
    type: str | None = Field("pretrain", description="How rows become tokens: `pretrain`, or Axolotl's `completion` "
                             "(the same for a stream: its `field` names the text column): the text, tokenized with "
                             "the tokenizer's BOS, then EOS.")
    field: str | None = Field(None, description="With `type: completion`: the column holding the text (Axolotl's "
                              "completion format's name for `text_column`).")

    @model_validator(mode="after")
    def _completion_field(self) -> PretrainingDataset:
        if self.field is not None:
            self.text_column = self.field
        return self
    data_files: str | list[str] | None = Field(None, description="Files of the dataset to stream (as "
                                               "`datasets.load_dataset`'s `data_files`).")
    skip: int | None = Field(None, ge=0, description="Skip this many documents at the start of the stream.")
    trust_remote_code: bool = Field(False, description="Let a Hub dataset's loading script run on this machine.")


class PretrainingSection(Section):
    pretraining_dataset: list[PretrainingDataset] | None = Field(
        None, min_length=1, description="Stream raw text for (continued) pretraining instead of reading "
        "`datasets:`: documents are tokenized, followed by EOS and packed into rows while training runs; "
        "nothing is cached, and `max_steps` sets the length of the run. Only the first entry is read (as Axolotl).",
    )
    pretrain_multipack_attn: bool = Field(
        True, description="With `sample_packing`: keep the documents of a packed row apart (positions restart, "
        "so attention never crosses a document boundary). `false`: plain concatenation, documents run on across "
        "rows and attend to each other.",
    )
    pretraining_sample_concatenation: bool | None = Field(
        None, description="Without `sample_packing`: concatenate documents into full rows of `sequence_len` "
        "tokens (true) instead of one document per row, truncated and padded (default).",
    )
    streaming: bool | None = Field(
        None, description="Stream the data; implied by `pretraining_dataset` (axo reads `datasets:` in full, "
        "so it has no effect there).",
    )
    streaming_multipack_buffer_size: int | None = Field(
        None, ge=1, description="Documents in the shuffle buffer (seeded by `seed`) and in each group packed "
        f"together; default {DEFAULT_STREAM_BUFFER:,}.",
    )
    pretrain_multipack_buffer_size: int | None = Field(
        None, ge=1, description="Axolotl's older name of `streaming_multipack_buffer_size` (used when that is "
        "not set).",
    )

    def stream_buffer_size(self) -> int:
        """The shuffle/packing buffer in documents: the new key, else the old one, else Axolotl's default."""
        return self.streaming_multipack_buffer_size or self.pretrain_multipack_buffer_size or DEFAULT_STREAM_BUFFER
