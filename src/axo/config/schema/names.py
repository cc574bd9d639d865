"""Closed vocabularies of the config (dataset types, chat templates, optimizers, schedulers).

They are plain data so that `axo validate` never imports torch or transformers; tests check them against
the libraries that will consume them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Prompt formats axo prepares (issue 3 registers one module per name). `sharegpt` is accepted and
# translated to `chat_template`; Axolotl itself now rejects it.
DATASET_TYPES: frozenset[str] = frozenset(
    {
        "alpaca",
        "chat_template",
        "sharegpt",
        "completion",
        "input_output",
        "pretokenized",
        "classification",
    }
)

# Chat templates axo bundles (src/axo/data/chat_templates/, Axolotl's own, verbatim). `tokenizer_default`
# uses the tokenizer's template, `jinja` takes `chat_template_jinja`.
CHAT_TEMPLATES: frozenset[str] = frozenset(
    {"tokenizer_default", "jinja", "alpaca", "chatml", "llama3", "mistral", "mistral_v1", "mistral_v2v3", "qwen_25",
     "phi_3", "gemma"}
)

# Axolotl template names axo does not bundle: a clear error instead of "unknown".
AXOLOTL_ONLY_TEMPLATES: frozenset[str] = frozenset(
    {"llama3_2_vision", "llama4", "mistral_v3_tekken", "mistral_v7_tekken", "gemma3", "gemma3n", "gemma4", "phi_35",
     "phi_4", "qwen3", "qwen3_5", "qwen2_vl", "deepseek_v2", "deepseek_v3", "cohere", "falcon_h1", "metharme",
     "command_a", "command_a_tool_use", "command_a_rag", "exaone", "exaone4", "jamba", "aya", "nemotron_h",
     "pixtral", "llava"}
)

# Optimizer names: transformers' OptimizerNames values that make sense for fine-tuning.
OPTIMIZERS: frozenset[str] = frozenset(
    {
        "adamw_torch",
        "adamw_torch_fused",
        "adamw_torch_xla",
        "adamw_anyprecision",
        "adamw_bnb_8bit",
        "adamw_8bit",
        "paged_adamw_8bit",
        "paged_adamw_32bit",
        "ademamix",
        "ademamix_8bit",
        "paged_ademamix_8bit",
        "paged_ademamix_32bit",
        "adafactor",
        "sgd",
        "adagrad",
        "rmsprop",
        "rmsprop_bnb",
        "rmsprop_bnb_8bit",
        "rmsprop_bnb_32bit",
        "lion_8bit",
        "lion_32bit",
        "paged_lion_8bit",
        "paged_lion_32bit",
        "lomo",
        "adalomo",
        "grokadamw",
        "schedule_free_adamw",
        "schedule_free_sgd",
        "galore_adamw",
        "galore_adamw_8bit",
        "galore_adafactor",
        "apollo_adamw",
        "stable_adamw",
    }
)

# transformers' SchedulerType values plus Axolotl's own `one_cycle` and `rex`.
LR_SCHEDULERS: frozenset[str] = frozenset(
    {
        "linear",
        "cosine",
        "cosine_with_restarts",
        "polynomial",
        "constant",
        "constant_with_warmup",
        "inverse_sqrt",
        "reduce_lr_on_plateau",
        "cosine_with_min_lr",
        "cosine_warmup_with_min_lr",
        "warmup_stable_decay",
        "one_cycle",
        "rex",
    }
)

ATTN_IMPLEMENTATIONS: frozenset[str] = frozenset(
    {"eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention", "varlen"}
)


def is_chat_template_name(value: str) -> bool:
    """A built-in name, or `tokenizer_default_fallback_<name>` (Axolotl's "use the tokenizer's template,
    else this one")."""
    prefix = "tokenizer_default_fallback_"
    return value in CHAT_TEMPLATES or (value.startswith(prefix) and value[len(prefix):] in CHAT_TEMPLATES)


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    normalised = word.lower().replace("-", "_")
    matches = difflib.get_close_matches(normalised, list(candidates), n=1, cutoff=cutoff)
    return f" (did you mean {matches[0]!r}?)" if matches else ""
