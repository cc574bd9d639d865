"""Dataset entries (`datasets:` and `test_datasets:`) and their prompt formats."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from axo.config.axolotl_keys import PREFERENCE_DATASET_TYPES
from axo.config.schema.base import Section
from axo.config.schema.names import (
    AXOLOTL_ONLY_TEMPLATES,
    CHAT_TEMPLATES,
    DATASET_TYPES,
    did_you_mean,
    is_chat_template_name,
)

TrainOnEos = Literal["all", "turn", "last", "none"]


class UserDefinedPrompt(Section):
    """`type:` written as a mapping: an alpaca-like format over your own field names."""

    field_instruction: str | None = Field(None, description="Column holding the instruction.")
    field_input: str | None = Field(None, description="Column holding the optional input.")
    field_output: str | None = Field(None, description="Column holding the answer (trained).")
    field_system: str | None = Field(None, description="Column holding a per-row system prompt.")
    system_prompt: str | None = Field(None, description="System prompt used for every row.")
    system_format: str | None = Field(None, description="How to render the system prompt, e.g. `{system}\\n`.")
    format: str | None = Field(
        None, description="Prompt template with `{instruction}` and `{input}` placeholders, used when input is present.",
    )
    no_input_format: str | None = Field(None, description="Prompt template used when the input is empty.")
    field: str | None = Field(None, description="For completion-like formats: the text column.")
    # preference data (`rl:`), as Axolotl 0.21's user-defined DPO and KTO types name them
    field_prompt: str | None = Field(None, description="Preference data: column holding the prompt (default `prompt`).")
    field_chosen: str | None = Field(None, description="Preference data: column holding the chosen answer (default `chosen`).")
    field_rejected: str | None = Field(
        None, description="Preference data: column holding the rejected answer (default `rejected`).",
    )
    field_completion: str | None = Field(None, description="KTO data: column holding the completion (default `completion`).")
    field_label: str | None = Field(
        None, description="KTO data: column holding whether the completion is desirable, true/false (default `label`).",
    )
    prompt_format: str | None = Field(
        None, description="Preference data: how to write the prompt, with `{prompt}` and optionally `{system}`.",
    )
    chosen_format: str | None = Field(None, description="Preference data: how to write the chosen answer, with `{chosen}`.")
    rejected_format: str | None = Field(
        None, description="Preference data: how to write the rejected answer, with `{rejected}`.",
    )
    completion_format: str | None = Field(None, description="KTO data: how to write the completion, with `{completion}`.")


class DatasetConfig(Section):
    path: str = Field(description="Local file or directory, or a Hugging Face hub dataset id.")
    type: str | UserDefinedPrompt | None = Field(
        None,
        description="Prompt format: `alpaca`, `chat_template`, `completion`, `input_output`, … or a mapping "
        "(`field_instruction`, `field_output`, `format`, …). Blank for pre-tokenized rows.",
    )
    ds_type: Literal["json", "csv", "parquet", "arrow", "text"] | None = Field(
        None, description="File type when the extension does not say it.",
    )
    data_files: str | list[str] | None = Field(None, description="Which files of `path` to load.")
    split: str = Field("train", description="Split to read; slices such as `train[:500]` work.")
    name: str | None = Field(None, description="Hub dataset configuration name.")
    revision: str | None = Field(None, description="Hub dataset revision.")
    field: str | None = Field(None, description="Column with the text (completion) or the JSON field holding the rows.")
    field_pair: str | None = Field(
        None, description="`type: classification`: a second text column; each row is encoded as a text pair with "
        "`field` (`tokenizer(text, text_pair)`: `[CLS] A [SEP] B [SEP]` and token type ids for BERT).",
    )
    field_label: str | None = Field(
        None, description="`type: classification`: the column holding the label (default `label`): a class id, a "
        "class name, or a number with `problem_type: regression`.",
    )
    shards: int | None = Field(None, ge=1, description="Shuffle (with `seed`), split into this many shards and keep one.")
    shards_idx: int | None = Field(None, ge=0, description="Which shard to keep (default 0).")
    preprocess_shards: int | None = Field(None, ge=1, description="Prepare the dataset in this many shards.")
    trust_remote_code: bool = Field(False, description="Allow the dataset's loading script to run.")
    train_on_split: str | None = Field(None, description="Split to train on when a dataset has several.")
    # chat_template options
    chat_template: str | None = Field(
        None, description="Chat template for this dataset; overrides the top-level `chat_template`.",
    )
    chat_template_jinja: str | None = Field(None, description="Inline Jinja chat template (with `chat_template: jinja`).")
    field_messages: str = Field("messages", description="Column holding the list of messages.")
    field_chosen: str | None = Field(
        None, description="Preference data (`chat_template.*`): column holding the chosen answer (default `chosen`).",
    )
    field_rejected: str | None = Field(
        None, description="Preference data (`chat_template.*`): column holding the rejected answer (default `rejected`).",
    )
    field_system: str | None = Field(None, description="Column holding a system prompt to put first.")
    field_tools: str | None = Field(None, description="Column holding tool definitions passed to the template.")
    message_property_mappings: dict[str, str] | None = Field(
        None, description="Where each message's role and content are, e.g. `{role: from, content: value}`.",
    )
    roles: dict[str, list[str]] | None = Field(
        None,
        description="Map role names in the data to template roles, e.g. `{user: [human], assistant: [gpt]}`.",
    )
    roles_to_train: list[str] | None = Field(
        None, description="Roles whose content carries loss (default `[assistant]`).",
    )
    train_on_eos: TrainOnEos | None = Field(
        None, description="Which end-of-sequence tokens carry loss: all, turn (default), last or none.",
    )
    train_on_eot: TrainOnEos | None = Field(
        None, description="Which end-of-turn tokens carry loss; defaults to `train_on_eos`.",
    )
    drop_system_message: bool | None = Field(None, description="Remove system messages from the conversation.")
    message_field_training: str | None = Field(
        None, description="Per-message boolean field that switches loss on or off for that message.",
    )
    message_field_training_detail: str | None = Field(
        None, description="Per-message field with character spans to train.",
    )

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str | UserDefinedPrompt | None) -> str | UserDefinedPrompt | None:
        if isinstance(value, str):
            base = value.split(":", 1)[0].split(".", 1)[0]
            # preference/reward types: config/keys.py checks they come with `rl:` or `reward_model:`
            preference = value in PREFERENCE_DATASET_TYPES or value.startswith("bradley_terry.")
            if value not in DATASET_TYPES and base not in DATASET_TYPES and not preference:
                raise ValueError(
                    f"unknown dataset type {value!r}{did_you_mean(value, DATASET_TYPES)}; "
                    f"known types: {', '.join(sorted(DATASET_TYPES))}, or a mapping with "
                    "field_instruction/field_output/format"
                )
        return value

    @field_validator("chat_template")
    @classmethod
    def _known_template(cls, value: str | None) -> str | None:
        return check_chat_template_name(value)


def check_chat_template_name(value: str | None) -> str | None:
    """Accept a built-in chat template name, `tokenizer_default`, `jinja`, or a path to a .jinja file."""
    if value is None or is_chat_template_name(value) or value.endswith((".jinja", ".j2")):
        return value
    if value in AXOLOTL_ONLY_TEMPLATES:
        raise ValueError(
            f"Axolotl's {value!r} chat template is not bundled with axo yet; use `tokenizer_default` (the model's "
            "own template, usually the same) or give the template in `chat_template_jinja`"
        )
    raise ValueError(
        f"unknown chat template {value!r}{did_you_mean(value, CHAT_TEMPLATES)}; "
        f"use one of: {', '.join(sorted(CHAT_TEMPLATES))}, or a path to a .jinja file"
    )
