"""Named adapters of any kinds on one loaded base model, for the server (`axo serve --adapter NAME=PATH ...`).

peft keeps the adapters of one PeftModel to one kind (a LoRA and an IA3 adapter cannot be switched between on the
same module tree), and its mixed-kind model covers LoRA, LoHa, LoKr, AdaLoRA and OFT only. So the adapters are
grouped by kind and each kind gets its own module tree: a structural copy of the base whose parameters and buffers
ARE the base's tensors (not copies), into which peft injects that kind's adapters. The base's weights are held once
however many kinds are served; what each extra kind costs is its module objects and its adapter weights. The base
model itself stays untouched and is served as it is.
"""

from __future__ import annotations

import copy
from itertools import chain
from pathlib import Path
from typing import Any


def adapter_kinds(adapters: dict[str, Path]) -> dict[str, str]:
    """{name: peft kind (`LORA`, `IA3`, ...)} from each adapter's `adapter_config.json` (checked readable)."""
    from axo.infer.merge import adapter_config

    return {name: str(adapter_config(path).get("peft_type", "LORA")) for name, path in adapters.items()}


def sharing_weights(model: Any) -> Any:
    """A copy of `model`'s module tree whose parameters and buffers are `model`'s own tensors (nothing is
    duplicated on the device); injecting adapters into the copy leaves `model` as it was."""
    tensors = chain(model.parameters(), model.buffers())
    return copy.deepcopy(model, memo={id(tensor): tensor for tensor in tensors})


def attach_adapters(base: Any, adapters: dict[str, Path]) -> dict[str, Any]:
    """{adapter name: the eval-mode PeftModel that serves it}: one PeftModel per adapter kind, each on its own
    tree sharing `base`'s weights, holding that kind's adapters under their names (select one with
    `set_adapter(name)`). `base` itself is left without adapters."""
    from peft import PeftModel

    by_kind: dict[str, list[str]] = {}
    for name, kind in adapter_kinds(adapters).items():
        by_kind.setdefault(kind, []).append(name)
    served: dict[str, Any] = {}
    for names in by_kind.values():
        first, *rest = names
        model = PeftModel.from_pretrained(sharing_weights(base), adapters[first], adapter_name=first)
        for name in rest:
            model.load_adapter(adapters[name], adapter_name=name)
        model.eval()
        served.update(dict.fromkeys(names, model))
    return served
