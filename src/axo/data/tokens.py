"""Batch encoding straight through the Rust tokenizer.

`tokenizer(texts)` on a fast tokenizer calls the Rust `encode_batch` and then spends about as long again
converting each encoding into Python dicts. We call `encode_batch` on the same backend object (same
normalizer, pre-tokenizer, model and post-processor, so the same ids, as the tests check) and read only
what we need. Slow (pure-Python) tokenizers go through their normal call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def _backend(tokenizer: PreTrainedTokenizerBase):
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    if backend.truncation is not None or backend.padding is not None:
        # transformers switches these off for an unpadded, untruncated call; do the same on a copy.
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(backend.to_str())
        backend.no_truncation()
        backend.no_padding()
    return backend


def encode_batch(tokenizer: PreTrainedTokenizerBase, texts: list[str], *, add_special_tokens: bool = True) -> list[list[int]]:
    """Token ids of each text, exactly as `tokenizer(texts, add_special_tokens=...)["input_ids"]`."""
    if not texts:
        return []
    backend = _backend(tokenizer)
    if backend is None:
        return tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
    return [encoding.ids for encoding in backend.encode_batch(texts, add_special_tokens=add_special_tokens)]


def encode_batch_with_offsets(tokenizer: PreTrainedTokenizerBase, texts: list[str], *,
                              add_special_tokens: bool = False) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Token ids and character offsets of each text (fast tokenizers only, as offsets need them)."""
    if not texts:
        return [], []
    backend = _backend(tokenizer)
    if backend is None:
        encoded = tokenizer(texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
        return encoded["input_ids"], encoded["offset_mapping"]
    encodings = backend.encode_batch(texts, add_special_tokens=add_special_tokens)
    return [e.ids for e in encodings], [e.offsets for e in encodings]
