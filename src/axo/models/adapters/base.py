"""An adapter kind: how axo's config keys become a PEFT config, and what the kind can do. One module per kind
registers a subclass; `models/adapter.py` builds the adapter from whichever the config names."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.registry import Registry

if TYPE_CHECKING:
    from axo.config.schema import AxoConfig

ADAPTERS: Registry = Registry("adapter kind")
_MLP_NAMES = {"gate_proj", "up_proj", "down_proj", "fc1", "fc2", "w1", "w2", "w3", "c_fc", "dense_h_to_4h",
              "dense_4h_to_h"}


class AdapterKind:
    """Subclasses set the class attributes and, where PEFT needs more than the keys, override `extra_options`.

    `keys` maps axo's config keys (PEFT's parameter names under the kind's prefix) to PEFT's; unset keys keep
    PEFT's defaults. Layer-replacing kinds adapt `<prefix>target_modules`, else the LoRA keys' targets
    (`lora_target_modules` / `lora_target_linear`), so one template config can switch `adapter:`.
    """

    name: ClassVar[str]
    peft_config: ClassVar[str]  # the PEFT config class's name
    keys: ClassVar[dict[str, str]] = {}
    targets_key: ClassVar[str | None] = None  # None: the kind does not replace layers (prompt/prefix tuning)
    merges: ClassVar[bool] = True  # can be merged into the base weights
    on_4bit_base: ClassVar[bool] = False  # PEFT has a bitsandbytes 4-bit layer for it
    packs: ClassVar[bool] = True  # can train on packed rows (several samples in one row)
    fused_lora: ClassVar[bool] = False  # axo's fused LoRA path applies (models/fused_lora.py)

    def options(self, cfg: AxoConfig, model: Any, total_steps: int | None) -> dict[str, Any]:
        """The PEFT config's arguments for `cfg`."""
        from axo.models.adapter import lora_targets

        options = {peft: getattr(cfg, key) for key, peft in self.keys.items() if getattr(cfg, key) is not None}
        if self.targets_key is not None:
            own = getattr(cfg, self.targets_key)
            options["target_modules"] = own if own is not None else lora_targets(cfg, model)
            if cfg.lora_modules_to_save is not None:
                options["modules_to_save"] = cfg.lora_modules_to_save
            if cfg.peft_layers_to_transform is not None:
                options["layers_to_transform"] = cfg.peft_layers_to_transform
        return options | self.extra_options(cfg, model, total_steps, options)

    def extra_options(self, cfg: AxoConfig, model: Any, total_steps: int | None,
                      options: dict[str, Any]) -> dict[str, Any]:
        return {}

    def build(self, cfg: AxoConfig, model: Any, total_steps: int | None = None) -> Any:
        """The PEFT config object. Raises ConfigError for a key PEFT's class does not take."""
        import peft
        from peft import TaskType

        config_class = getattr(peft, self.peft_config)
        fields = {field.name for field in dataclasses.fields(config_class)}
        options = self.options(cfg, model, total_steps)
        unknown = sorted(set(options) - fields)
        if unknown:
            shared = {"layers_to_transform": "peft_layers_to_transform", "modules_to_save": "lora_modules_to_save",
                      "target_modules": self.targets_key or "lora_target_modules"}
            key = next((k for k, v in self.keys.items() if v == unknown[0]), shared.get(unknown[0], unknown[0]))
            raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, key, f"peft's {self.peft_config} has no "
                                       f"`{unknown[0]}`, so `adapter: {self.name}` cannot use it.",
                                       "Remove the key, or choose an adapter kind that has it.")])
        task = TaskType.SEQ_CLS if cfg.num_labels is not None else TaskType.CAUSAL_LM
        return config_class(task_type=task, **options)

    @classmethod
    def own_keys(cls) -> set[str]:
        """axo's config keys that belong to this kind (its `keys` and `targets_key`)."""
        return set(cls.keys) | ({cls.targets_key} if cls.targets_key else set())

    def callbacks(self, model: Any) -> list[Any]:
        """TrainerCallbacks the kind needs while training (AdaLoRA's rank budget)."""
        return []

    def check_resume(self, checkpoint: Path) -> None:
        """Raise ConfigError when a run cannot continue from `checkpoint` (before anything loads)."""


def mlp_modules(targets: Any) -> list[str] | None:
    """The MLP projections among `targets` (IA³ scales their inputs rather than their outputs)."""
    if not isinstance(targets, list):
        return None
    return [name for name in targets if name in _MLP_NAMES]


def register_adapter(cls: type[AdapterKind]) -> type[AdapterKind]:
    return ADAPTERS.register(cls)


def adapter_kind(name: str) -> AdapterKind:
    """The registered kind called `name`. Raises ConfigError naming the known kinds."""
    cls = ADAPTERS.get(name)
    if cls is None:
        raise ConfigError([Problem(Severity.ERROR, Kind.TYPE, "adapter", f"{name!r} is not an adapter kind axo "
                                   "knows.", f"Use one of: {', '.join(ADAPTERS.all())}; or leave it blank for a full "
                                   "fine-tune.")])
    return cls()


def adapter_callbacks(cfg: AxoConfig, model: Any) -> list[Any]:
    """The config's adapter kind's own TrainerCallbacks (AdaLoRA's rank budget follows the optimizer steps);
    none for a full fine-tune or an adapter continued from `lora_model_dir`."""
    if cfg.adapter is None or cfg.lora_model_dir:
        return []
    return adapter_kind(cfg.adapter).callbacks(model)


def adapter_names() -> list[str]:
    return list(ADAPTERS.all())
