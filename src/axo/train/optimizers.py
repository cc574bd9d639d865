"""Which library runs each optimizer name, what it needs, and the optimizers transformers does not build.

Every name Axolotl 0.21 accepts validates (`config/schema/names.py`); what a name needs (a package, a CUDA
GPU) is checked when training starts (`check_optimizer`, called by `arguments.training_arguments`, hence by
`run.preflight`), so a config written for a GPU machine still validates on a laptop. transformers' own
`OptimizerNames` go to `TrainingArguments(optim=…)`, whose factory imports the backing package. Axolotl's
names that transformers lacks are built here (`custom_optimizer`): Muon from torch's `torch.optim.Muon`
(torch ≥ 2.9), the rest from the package Axolotl uses (torch-optimi, came-pytorch, flashoptim, scao,
torchao). Axolotl's in-house optimizers (ADOPT, AdamC, dion, SinkGD, PoLoRA, 8-bit Muon, Q-GaLore) are refused
at train time with the nearest alternative.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from axo.config.hardware import Hardware
from axo.config.problems import ConfigError, Kind, Problem, Severity

if TYPE_CHECKING:
    from axo.config.schema import AxoConfig

BNB_OPTIMIZERS = frozenset({"adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "ademamix_8bit",
                            "paged_ademamix_8bit", "paged_ademamix_32bit", "rmsprop_bnb", "rmsprop_bnb_8bit",
                            "rmsprop_bnb_32bit", "lion_8bit", "lion_32bit", "paged_lion_8bit", "paged_lion_32bit"})

# name -> (module that must import, what to install). transformers' factory imports these itself; checking
# first turns its ImportError deep inside Trainer into a config error before any data or model work.
_PACKAGES: dict[str, tuple[str, str]] = {
    **{name: ("torchao", "torchao (`pip install torchao`)") for name in (
        "adamw_torch_4bit", "adamw_torch_8bit", "ao_adamw_4bit", "ao_adamw_8bit", "ao_adamw_fp8")},
    **{name: ("galore_torch", "galore-torch (`pip install galore-torch`)") for name in (
        "galore_adamw", "galore_adamw_8bit", "galore_adafactor", "galore_adamw_layerwise",
        "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise")},
    **{name: ("apollo_torch", "apollo-torch (`pip install apollo-torch`)") for name in (
        "apollo_adamw", "apollo_adamw_layerwise")},
    **{name: ("schedulefree", "schedulefree (`pip install schedulefree`)") for name in (
        "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd")},
    "lomo": ("lomo_optim", "lomo-optim (`pip install lomo-optim`)"),
    "adalomo": ("lomo_optim", "lomo-optim (`pip install lomo-optim`)"),
    "grokadamw": ("grokadamw", "grokadamw (`pip install grokadamw`)"),
    "stable_adamw": ("optimi", "torch-optimi (`pip install torch-optimi`)"),
    "optimi_adamw": ("optimi", "torch-optimi (`pip install torch-optimi`)"),
    "adamw_anyprecision": ("torchdistx", "torchdistx (https://github.com/pytorch/torchdistx)"),
    "adamw_torch_xla": ("torch_xla", "torch_xla (a TPU machine)"),
    "adamw_torch_npu_fused": ("torch_npu", "torch_npu (an Ascend NPU machine)"),
    "came_pytorch": ("came_pytorch", "came-pytorch (`pip install came-pytorch`)"),
    "scao": ("scao", "scao (`pip install scao`)"),
    **{name: ("flashoptim", "flashoptim (`pip install flashoptim`)") for name in (
        "flash_adamw", "flash_adam", "flash_sgd", "flash_sgdw", "flash_lion")},
}
# Axolotl's names for transformers' torchao optimizers (the same torchao classes).
_RENAMED = {"ao_adamw_4bit": "adamw_torch_4bit", "ao_adamw_8bit": "adamw_torch_8bit"}
# Package optimizers transformers lacks: name -> (module, class). Built with lr, weight decay, Adam betas/eps.
_PACKAGE_CLASSES = {"optimi_adamw": ("optimi", "AdamW"), "ao_adamw_fp8": ("torchao.optim", "AdamWFp8"),
                    "came_pytorch": ("came_pytorch", "CAME"), "scao": ("scao", "SCAO"),
                    "flash_adamw": ("flashoptim", "FlashAdamW"), "flash_adam": ("flashoptim", "FlashAdam"),
                    "flash_sgd": ("flashoptim", "FlashSGD"), "flash_sgdw": ("flashoptim", "FlashSGDW"),
                    "flash_lion": ("flashoptim", "FlashLion")}
_NO_ADAM_ARGS = frozenset({"flash_sgd", "flash_sgdw", "came_pytorch"})
# torchao's 4/8-bit AdamW run on CPU too (through torch.compile: ~30 s of compiling first), so only FP8 is here.
_CUDA_ONLY = BNB_OPTIMIZERS | {"ao_adamw_fp8", "flash_adamw", "flash_adam", "flash_sgd", "flash_sgdw", "flash_lion"}
# Axolotl's in-house optimizers: no library to stand on, so axo refuses them and names an alternative.
AXOLOTL_ONLY = {"adopt_adamw": "adamw_torch", "adamc": "adamw_torch", "dion": "muon", "sinkgd": "muon",
                "polora": "adamw_torch", "muon_8bit": "muon", "q_galore_adamw8bit": "galore_adamw_8bit"}


def _refuse(message: str, hint: str) -> ConfigError:
    return ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "optimizer", message, hint)])


def check_optimizer(cfg: AxoConfig, hardware: Hardware) -> str | None:
    """The `optim` name for transformers' TrainingArguments, or None when axo builds the optimizer itself
    (`custom_optimizer`). Raises `ConfigError` naming what to install when the backing package or device is
    missing here."""
    name = cfg.optimizer
    if name in AXOLOTL_ONLY:
        raise _refuse(f"`{name}` is implemented inside Axolotl itself, with no library axo can run it from.",
                      f"Use `optimizer: {AXOLOTL_ONLY[name]}` instead.")
    if name == "muon":
        import torch

        if not hasattr(torch.optim, "Muon"):
            raise _refuse(f"`muon` runs torch's own `torch.optim.Muon`, which torch {torch.__version__} lacks.",
                          "Install torch 2.9 or newer.")
        if cfg.deepspeed or cfg.fsdp_version or cfg.fsdp_config:
            raise _refuse("`muon` cannot run under DeepSpeed or FSDP (its update needs whole weight matrices; "
                          "Axolotl refuses the same).", "Use DDP (no deepspeed/fsdp keys) or another optimizer.")
        return None
    if name in BNB_OPTIMIZERS and (not hardware.has_cuda or importlib.util.find_spec("bitsandbytes") is None):
        raise _refuse(f"`{name}` is a bitsandbytes optimizer, which needs a CUDA GPU and the bitsandbytes package.",
                      "Use `optimizer: adamw_torch` here, or install axo[bnb] on a GPU machine.")
    if name in _CUDA_ONLY and not hardware.has_cuda:
        raise _refuse(f"`{name}` needs a CUDA GPU; this machine has {hardware.describe()}.",
                      "Use `optimizer: adamw_torch` to train here, or run on a GPU machine.")
    if name in _PACKAGES:
        module, install = _PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise _refuse(f"`{name}` needs the `{module}` package, which is not installed.", f"Install {install}.")
    if name in _PACKAGE_CLASSES:
        return None
    if name == "adamw_torch_fused" and not hardware.has_cuda:
        return "adamw_torch"  # the fused kernel is CUDA-only; identical maths on CPU
    return _RENAMED.get(name, name)


def _adam_kwargs(cfg: AxoConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if cfg.adam_beta1 is not None or cfg.adam_beta2 is not None:
        kwargs["betas"] = (cfg.adam_beta1 if cfg.adam_beta1 is not None else 0.9,
                           cfg.adam_beta2 if cfg.adam_beta2 is not None else 0.999)
    if cfg.adam_epsilon is not None:
        kwargs["eps"] = cfg.adam_epsilon
    return kwargs


def _optim_args(cfg: AxoConfig) -> dict[str, Any]:
    """`optim_args` as keyword arguments: a mapping, or Axolotl's `"a=1,b=2"` string (values parsed as numbers
    where they are numbers)."""
    if cfg.optim_args is None:
        return {}
    if isinstance(cfg.optim_args, dict):
        return dict(cfg.optim_args)
    parsed: dict[str, Any] = {}
    for item in cfg.optim_args.replace(" ", "").split(","):
        if not item:
            continue
        key, _, value = item.partition("=")
        try:
            parsed[key] = float(value) if any(c in value for c in ".e") else int(value)
        except ValueError:
            parsed[key] = {"true": True, "false": False}.get(value.lower(), value)
    return parsed


def custom_optimizer(cfg: AxoConfig, model: Any) -> Any:
    """The optimizer for names transformers does not build, over `model`'s trainable parameters; None for
    transformers' own names (TrainingArguments' `optim` builds those)."""
    if cfg.optimizer == "muon":
        return muon_with_adamw(cfg, model)
    if cfg.optimizer not in _PACKAGE_CLASSES:
        return None
    module, name = _PACKAGE_CLASSES[cfg.optimizer]
    optimizer_class = getattr(importlib.import_module(module), name)
    kwargs = {"lr": cfg.learning_rate, "weight_decay": cfg.weight_decay, **_optim_args(cfg)}
    if cfg.optimizer not in _NO_ADAM_ARGS:
        kwargs = {**_adam_kwargs(cfg), **kwargs}
    return optimizer_class([p for p in model.parameters() if p.requires_grad], **kwargs)


def muon_with_adamw(cfg: AxoConfig, model: Any) -> Any:
    """Muon for the hidden weight matrices, AdamW for everything else, in one optimizer.

    Muon orthogonalises 2-D updates; embeddings, the output head and 1-D weights (norms, biases) are not
    matrices it is meant for (Keller Jordan's and Moonlight's recipe, which Axolotl follows). The Muon
    learning rate is scaled to match AdamW's update size (`adjust_lr_fn="match_rms_adamw"`, Moonlight's rule),
    so the `learning_rate` tuned for AdamW works for both halves.
    """
    import torch

    muon, adamw_decay, adamw_plain = [], [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        head = any(part in name for part in ("embed", "lm_head", "wte", "score"))
        if parameter.ndim == 2 and not head:
            muon.append(parameter)
        elif parameter.ndim >= 2:
            adamw_decay.append(parameter)
        else:
            adamw_plain.append(parameter)  # norms and biases: no weight decay, as transformers' default grouping
    extra = _optim_args(cfg)
    muon_kwargs = {"lr": cfg.learning_rate, "weight_decay": cfg.weight_decay, "adjust_lr_fn": "match_rms_adamw",
                   **{k: v for k, v in extra.items() if k in ("momentum", "nesterov", "ns_steps", "eps")}}
    groups = [{"params": adamw_decay, "weight_decay": cfg.weight_decay}, {"params": adamw_plain, "weight_decay": 0.0}]
    return MuonWithAdamW(torch.optim.Muon(muon, **muon_kwargs) if muon else None,
                         torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.learning_rate,
                                           **_adam_kwargs(cfg)) if adamw_decay or adamw_plain else None)


@functools.cache
def _combined_class() -> type:
    import torch

    class _MuonWithAdamW(torch.optim.Optimizer):
        """Two torch optimizers stepped as one. The param-group dicts are shared with the inner optimizers, so
        the learning-rate scheduler (which writes `group["lr"]`) reaches both; state is saved per part."""

        def __init__(self, muon: Any, adamw: Any):
            self.parts = {"muon": muon, "adamw": adamw}
            groups = [group for part in self.parts.values() if part is not None for group in part.param_groups]
            super().__init__(groups, {})
            self.state = _MergedState(self.parts)

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            loss = closure() if closure is not None else None
            for part in self.parts.values():
                if part is not None:
                    part.step()
            return loss

        def zero_grad(self, set_to_none: bool = True) -> None:
            for part in self.parts.values():
                if part is not None:
                    part.zero_grad(set_to_none=set_to_none)

        def state_dict(self) -> dict[str, Any]:
            return {name: part.state_dict() for name, part in self.parts.items() if part is not None}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            for name, part in self.parts.items():
                if part is not None:
                    part.load_state_dict(state_dict[name])

    return _MuonWithAdamW


class _MergedState(Mapping):
    """`optimizer.state` read across both parts (what code that inspects optimizer state sees)."""

    def __init__(self, parts: dict[str, Any]):
        self.parts = parts

    def __getitem__(self, key: Any) -> Any:
        for part in self.parts.values():
            if part is not None and key in part.state:
                return part.state[key]
        raise KeyError(key)

    def __len__(self) -> int:
        return sum(len(part.state) for part in self.parts.values() if part is not None)

    def __iter__(self):
        return (key for part in self.parts.values() if part is not None for key in part.state)


def MuonWithAdamW(muon: Any, adamw: Any) -> Any:
    return _combined_class()(muon, adamw)
