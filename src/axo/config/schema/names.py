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

# Chat templates axo bundles (src/axo/data/chat_templates/: Axolotl 0.21's names, each parity-tested against it
# by tests/data/test_chat_template_parity.py, which also checks this list). `tokenizer_default` uses the
# tokenizer's template, `jinja` takes `chat_template_jinja`, `mistral` is axo's name for `mistral_v1`.
CHAT_TEMPLATES: frozenset[str] = frozenset(
    {"tokenizer_default", "jinja", "alpaca", "chatml", "llama3", "mistral", "mistral_v1", "mistral_v2v3", "qwen_25",
     "phi_3", "gemma", "gemma3", "gemma3n", "qwen3", "qwen3_5", "llama4", "falcon_h1", "cohere", "deepseek_v2",
     "phi_35", "exaone", "metharme", "nemotron_h", "gemma4", "gemma4_unified", "aya", "llava", "qwen2_vl",
     "mistral_v3_tekken", "mistral_v7_tekken", "pixtral", "deepseek_v3", "exaone4", "llama3_2_vision", "jamba", "command_a", "command_a_tool_use",
     "command_a_rag"}
)

# Axolotl template names axo does not bundle yet: a clear error instead of "unknown" (none today; every name
# of Axolotl 0.21's ChatTemplate enum is bundled).
AXOLOTL_ONLY_TEMPLATES: frozenset[str] = frozenset()

# Optimizer names Axolotl 0.21 accepts. First transformers' `OptimizerNames` (5.24; tests/train/test_optimizers.py
# checks every installed value is here), run by transformers' own optimizer factory.
TRANSFORMERS_OPTIMIZERS: frozenset[str] = frozenset(
    {
        "adamw_torch", "adamw_torch_fused", "adamw_torch_xla", "adamw_torch_npu_fused", "adamw_anyprecision",
        "adamw_torch_4bit", "adamw_torch_8bit", "adafactor", "ademamix", "sgd", "adagrad", "rmsprop",
        "adamw_bnb_8bit", "adamw_8bit", "ademamix_8bit", "paged_adamw_8bit", "paged_adamw_32bit",
        "paged_ademamix_8bit", "paged_ademamix_32bit", "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit",
        "lion_8bit", "lion_32bit", "paged_lion_8bit", "paged_lion_32bit",
        "galore_adamw", "galore_adamw_8bit", "galore_adafactor", "galore_adamw_layerwise",
        "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise", "apollo_adamw", "apollo_adamw_layerwise",
        "lomo", "adalomo", "grokadamw", "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd",
        "stable_adamw",
    }
)
# Axolotl 0.21's own names (its `CustomSupportedOptimizers`): train/optimizers.py says which library runs each
# in axo and which are refused at train time (Axolotl-only implementations).
AXOLOTL_OPTIMIZERS: frozenset[str] = frozenset(
    {"optimi_adamw", "ao_adamw_4bit", "ao_adamw_8bit", "ao_adamw_fp8", "adopt_adamw", "adamc", "came_pytorch", "muon",
     "muon_8bit", "dion", "sinkgd", "polora", "flash_adamw", "flash_adam", "flash_sgd", "flash_sgdw", "flash_lion",
     "scao", "q_galore_adamw8bit"}
)
OPTIMIZERS: frozenset[str] = TRANSFORMERS_OPTIMIZERS | AXOLOTL_OPTIMIZERS

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

# Axolotl 0.21's canonical `attn_implementation` names axo runs (models/attention.py `attention_backend`);
# a Hub kernel (`kernels-community/flash-attn3`, anything with a `/`) is accepted too (`is_hub_kernel`).
ATTN_IMPLEMENTATIONS: frozenset[str] = frozenset(
    {"eager", "sdpa", "flash_attention_2", "flash_attention_3", "flash_attention_4", "flex_attention", "varlen",
     "xformers"}
)


def is_hub_kernel(value: str) -> bool:
    """`org/repo` (optionally `org/repo:function` or `@revision`): an attention kernel on the Hugging Face Hub,
    which transformers loads through the `kernels` package."""
    repo = value.split(":", 1)[0].split("@", 1)[0]
    return repo.count("/") == 1 and all(part.strip() for part in repo.split("/"))


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
