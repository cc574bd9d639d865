"""Which config keys axo validates but does not act on yet.

A user must never believe a setting took effect when it did not. Each key below is accepted by the
schema (so configs written for the finished feature validate today) and produces a warning naming the
feature that will honour it. When a feature lands, its group is deleted from this table in the same
commit, and the tests for that feature prove the keys work.
"""

from __future__ import annotations

from axo import __version__

_GROUPS: dict[str, tuple[str, ...]] = {
    # transformers 5 always loads with low memory use; the key is accepted for old configs.
    "the `low_cpu_mem_usage` switch (transformers 5 always loads that way)": ("low_cpu_mem_usage",),
    "pushing to the Hugging Face Hub": ("hub_model_id", "hf_token"),
}

NOT_IMPLEMENTED: dict[str, str] = {key: feature for feature, keys in _GROUPS.items() for key in keys}


def not_implemented_message(key: str) -> str | None:
    """The warning text for a key whose feature has not landed, or None when the key is honoured."""
    feature = NOT_IMPLEMENTED.get(key)
    if feature is None:
        return None
    return f"is validated, but {feature} is not implemented in axo {__version__} yet; the setting has no effect."
