"""Batched chat generation with the tokenizer's chat template (greedy by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def generate_chat(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, conversations: list[list[dict[str, Any]]],
                  *, max_new_tokens: int = 32, batch_size: int = 16, **generation: Any) -> list[str]:
    """The model's reply to each conversation (its chat template with a generation prompt, left-padded
    batches, greedy unless sampling options are given), decoded without special tokens."""
    import torch

    model.eval()
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    options = {"do_sample": False, **generation}
    if not options["do_sample"]:
        options.setdefault("temperature", None)
        options.setdefault("top_p", None)
        options.setdefault("top_k", None)
    replies: list[str] = []
    try:
        for start in range(0, len(conversations), batch_size):
            prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                       for c in conversations[start:start + batch_size]]
            batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            with torch.no_grad():
                output = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                        **options)
            new_tokens = output[:, batch["input_ids"].shape[1]:]
            replies += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = padding_side
    return replies
