"""Which model and tokenizer to load, and how."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from axo.config.schema.base import Section


class SpecialTokens(Section):
    """Special tokens to set on the tokenizer (added to the vocabulary when missing)."""

    bos_token: str | None = Field(None, description="Beginning-of-sequence token.")
    eos_token: str | None = Field(None, description="End-of-sequence token, e.g. `<|eot_id|>` for Llama-3 chat.")
    pad_token: str | None = Field(None, description="Padding token; defaults to the EOS token when the tokenizer has none.")
    unk_token: str | None = Field(None, description="Unknown-token placeholder.")
    additional_special_tokens: list[str] | None = Field(None, description="More special tokens to register.")


class ModelSection(Section):
    base_model: str = Field(
        description="The model to fine-tune: a local Hugging Face directory, a hub id (`org/name`) or a `.gguf` file.",
    )
    base_model_config: str | None = Field(
        None, description="Where to read the model config from, when it differs from `base_model`.",
    )
    revision_of_model: str | None = Field(None, description="Hub revision (branch, tag or commit) of `base_model`.")
    model_type: str | None = Field(
        None,
        description="transformers class used to load the model, e.g. `AutoModelForCausalLM` or `LlamaForCausalLM`.",
    )
    tokenizer_type: str | None = Field(
        None, description="transformers tokenizer class, e.g. `AutoTokenizer` or `LlamaTokenizer`.",
    )
    tokenizer_config: str | None = Field(
        None, description="Where to load the tokenizer from, when it differs from `base_model`.",
    )
    tokenizer_use_fast: bool = Field(True, description="Use the fast (Rust) tokenizer.")
    tokenizer_legacy: bool | None = Field(None, description="Pass `legacy=` to the tokenizer (SentencePiece models).")
    trust_remote_code: bool = Field(
        False, description="Run Python code shipped with the model. Off unless you trust the model's author.",
    )
    special_tokens: SpecialTokens | None = Field(None, description="Special tokens to set on the tokenizer.")
    tokens: list[str] | None = Field(
        None, description="Extra (non-special) tokens to add to the vocabulary; embeddings are resized.",
    )
    overrides_of_model_config: dict[str, Any] | None = Field(
        None,
        alias="model_config",
        description="Values that override the model's config.json, e.g. `{rope_theta: 1000000}`.",
    )
    overrides_of_model_kwargs: dict[str, Any] | None = Field(
        None, alias="model_kwargs", description="Extra keyword arguments for `from_pretrained`.",
    )
    reinit_weights: bool | None = Field(
        None, description="Start from random weights of `base_model`'s architecture (its config) instead of its "
        "trained weights: pretraining from scratch.",
    )
    num_labels: int | None = Field(
        None, ge=1, description="Number of classes for sequence classification (loads a classification head).",
    )
    problem_type: Literal["single_label_classification", "regression"] | None = Field(
        None, description="With `num_labels`: `regression` trains a numeric score (`num_labels: 1`, float labels, "
        "mean squared error); `single_label_classification` (the default) one class per row (cross-entropy). "
        "transformers' `config.problem_type` values.",
    )
    load_pickle_weights: bool = Field(
        False, description="Allow pickle (.bin) weights, which can run code when loaded; safetensors only otherwise.",
    )
    low_cpu_mem_usage: bool | None = Field(None, description="Load weights with transformers' low-memory path.")

    @field_validator("base_model")
    @classmethod
    def _base_model_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; name the model to fine-tune: a local model folder, a hub id "
                             "(`org/name`) or a .gguf file")
        return value
