"""Adapter kinds, one module each, registered by name (`adapter:` in the config); importing this package
registers all of them. `base.py` says what a kind provides; docs/TRAINING.md "Adapter kinds" lists them."""

from axo.models.adapters import adalora, lora, lycoris, orthogonal, prompts, scaling  # noqa: F401  (registration)
from axo.models.adapters.base import (
    ADAPTERS,
    AdapterKind,
    adapter_callbacks,
    adapter_kind,
    adapter_names,
    register_adapter,
)

__all__ = ["ADAPTERS", "AdapterKind", "adapter_callbacks", "adapter_kind", "adapter_names", "register_adapter"]
