"""Generation for prompt-learning adapters (prompt tuning, prefix tuning, p-tuning), which add trained virtual
tokens in front of every input.

peft 0.21's generate path for them does not match their forward pass with transformers 5.17 or 5.25: with the KV
cache a prompt-tuned model's third token already differs from the greedy token of its own forward pass, and a
prefix-tuned one loses its prefix (even without the cache its third token differs); tests/models/
test_adapter_kinds.py compares every kind's generation with a greedy loop over the forward pass. axo therefore
hands the virtual tokens to the base model's own `generate` as the forward pass sees them: a KV cache pre-filled
with them (prefix tuning's trained keys and values as they are; prompt tuning's embeddings run through the base
once), and one placeholder id per virtual token in front of the prompt, whose positions the cache already holds.
Positions, attention and the cache then work as for any continued generation. Re-check when peft or
transformers move: the test above fails if peft's own path would have been right and this one is not.
"""

from __future__ import annotations

import inspect
from typing import Any


def generation_inputs(model: Any, batch: dict[str, Any], pad_token_id: int | None) -> tuple[Any, dict[str, Any]]:
    """(the model to call `generate` on, its inputs) for a tokenized, left-padded `batch`. For a prompt-learning
    adapter: the base model, and `input_ids`/`attention_mask` with one column per virtual token in front plus the
    pre-filled cache (generation must use the cache: it continues from it); else `model` and `batch` unchanged. Either way the new tokens of `generate`'s
    output start at column `inputs["input_ids"].shape[1]`."""
    config = getattr(model, "active_peft_config", None)
    if config is None or not config.is_prompt_learning:
        return model, dict(batch)
    import torch
    from peft import PeftType

    ids, mask = batch["input_ids"], batch["attention_mask"]
    rows, virtual = ids.shape[0], config.num_virtual_tokens
    base = model.get_base_model()
    with torch.no_grad():
        prompt = model.get_prompt(batch_size=rows)
        if config.peft_type == PeftType.PREFIX_TUNING:
            cache = prompt  # the trained keys and values of every layer
        else:  # the trained input embeddings, run through the base once
            embeds = prompt.to(base.get_input_embeddings().weight.dtype)
            cache = base(inputs_embeds=embeds, attention_mask=torch.ones(rows, virtual, dtype=mask.dtype,
                                                                          device=mask.device), use_cache=True).past_key_values
    placeholder = torch.full((rows, virtual), pad_token_id or 0, dtype=ids.dtype, device=ids.device)
    # transformers 5.25 renamed the argument `cache` (`past_key_values` still works there, with a warning)
    cache_argument = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
    return base, {"input_ids": torch.cat([placeholder, ids], dim=1),
                  "attention_mask": torch.cat([torch.ones_like(placeholder, dtype=mask.dtype), mask], dim=1),
                  cache_argument: cache}
