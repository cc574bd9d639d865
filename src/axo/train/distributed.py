"""Several processes, one run: which process this is, data prepared once, and the engine settings.

axo never runs its own distributed engine. Under `torchrun`, `accelerate launch` or `axo train --num-gpus`
every process runs the same recipe; transformers' Trainer (through accelerate) does DDP, DeepSpeed or
FSDP from the TrainingArguments built here. This module only answers what the recipe must do differently
with more than one process: write run files once (data is prepared once under the cache's file lock,
data/cache.py), place a quantized base on the
process's own GPU, and translate Axolotl's `deepspeed` / `fsdp_*` / `ddp_*` keys.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig

SHIPPED_DEEPSPEED = ("zero1", "zero2", "zero3", "zero3_bf16", "zero3_offload", "zero3_bf16_cpuoffload_all")


@dataclass(frozen=True)
class Processes:
    """This process's place in the run (from the launcher's environment variables)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Processes:
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                   int(os.environ.get("WORLD_SIZE", 1)))


def _error(key: str, message: str, hint: str) -> ConfigError:
    return ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, key, message, hint)])


def shipped_deepspeed(name: str) -> dict[str, Any]:
    """One of the DeepSpeed configs axo ships (train/deepspeed_configs/NAME.json)."""
    text = resources.files("axo.train").joinpath("deepspeed_configs", f"{name}.json").read_text()
    return json.loads(text)


def deepspeed_config(cfg: AxoConfig, config_dir: Path | None) -> dict[str, Any] | None:
    """The DeepSpeed config as a mapping: inline, a JSON file (relative to the config's folder), or — for
    an Axolotl path such as `deepspeed_configs/zero2.json` that does not exist here — axo's copy of it."""
    value = cfg.deepspeed
    if value is None or isinstance(value, dict):
        return value
    path = Path(value).expanduser()
    if not path.is_absolute() and config_dir is not None and (config_dir / path).exists():
        path = config_dir / path
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise _error("deepspeed", f"{value!r} is not a readable JSON file ({exc}).",
                         "Fix the JSON, or use one of axo's: " + ", ".join(SHIPPED_DEEPSPEED)) from None
        if not isinstance(loaded, dict):
            raise _error("deepspeed", f"{value!r} holds a JSON {type(loaded).__name__}, not an object.",
                         "A DeepSpeed config is a JSON object such as {\"zero_optimization\": {\"stage\": 2}}.")
        return loaded
    name = path.name.removesuffix(".json")
    if name in SHIPPED_DEEPSPEED:
        return shipped_deepspeed(name)
    raise _error("deepspeed", f"{value!r} was not found (a relative path is read from the config's folder).",
                 "Point it at a JSON file, or name one of axo's: " + ", ".join(f"{n}.json" for n in SHIPPED_DEEPSPEED)
                 + " (`axo init --deepspeed zero2` writes one next to your config).")


def zero_stage(deepspeed: dict[str, Any] | None) -> int:
    """The ZeRO stage a DeepSpeed config asks for (0 when there is none)."""
    if not deepspeed:
        return 0
    return int((deepspeed.get("zero_optimization") or {}).get("stage", 0))


# Axolotl's fsdp_config keys (prefix `fsdp_` optional) → transformers' fsdp_config keys.
_FSDP_KEYS = {"transformer_layer_cls_to_wrap": "transformer_layer_cls_to_wrap", "min_num_params": "min_num_params",
              "backward_prefetch": "backward_prefetch", "forward_prefetch": "forward_prefetch",
              "use_orig_params": "use_orig_params", "sync_module_states": "sync_module_states",
              "cpu_ram_efficient_loading": "cpu_ram_efficient_loading", "limit_all_gathers": "limit_all_gathers",
              "activation_checkpointing": "activation_checkpointing", "state_dict_type": "state_dict_type",
              "reshard_after_forward": "reshard_after_forward", "final_state_dict_type": "final_state_dict_type"}
_FSDP_HANDLED = {"offload_params", "auto_wrap_policy", "version"}


def fsdp_arguments(cfg: AxoConfig, layer_class: str | None) -> dict[str, Any]:
    """`fsdp` and `fsdp_config` for TrainingArguments from Axolotl's `fsdp_version` + `fsdp_config`.

    Wrapping defaults to one FSDP unit per decoder layer (`layer_class`, the model's own). Keys axo does not
    know are an error rather than silently dropped.
    """
    if cfg.fsdp_version is None and not cfg.fsdp_config:
        return {}
    given = {key.removeprefix("fsdp_"): value for key, value in (cfg.fsdp_config or {}).items()}
    unknown = sorted(set(given) - set(_FSDP_KEYS) - _FSDP_HANDLED)
    if unknown:
        raise ConfigError([Problem(Severity.ERROR, Kind.UNKNOWN_KEY, f"fsdp_config.{unknown[0]}",
                                   f"is not an FSDP option axo knows (unknown: {', '.join(unknown)}).",
                                   "Known: " + ", ".join(sorted(set(_FSDP_KEYS) | _FSDP_HANDLED)) + ".")])
    options = {_FSDP_KEYS[key]: value for key, value in given.items() if key in _FSDP_KEYS}
    options["version"] = int(cfg.fsdp_version or given.get("version") or 1)
    if given.get("auto_wrap_policy", "TRANSFORMER_BASED_WRAP") == "TRANSFORMER_BASED_WRAP":
        if "transformer_layer_cls_to_wrap" not in options and layer_class:
            options["transformer_layer_cls_to_wrap"] = [layer_class]
    elif given["auto_wrap_policy"] == "SIZE_BASED_WRAP":
        options.setdefault("min_num_params", int(1e8))
    wrap = ["full_shard", "auto_wrap"]
    if given.get("offload_params"):
        wrap.append("offload")
    return {"fsdp": " ".join(wrap), "fsdp_config": options}


def engine_arguments(cfg: AxoConfig, config_dir: Path | None, layer_class: str | None) -> dict[str, Any]:
    """TrainingArguments entries for the multi-process engine the config names (none: DDP, if launched
    with several processes)."""
    out: dict[str, Any] = {}
    deepspeed = deepspeed_config(cfg, config_dir)
    if deepspeed is not None:
        check_optimizer_offload(deepspeed)
        if importlib.util.find_spec("deepspeed") is None:
            raise _error("deepspeed", "is set, but the DeepSpeed package is not installed.",
                         "pip install 'axo[deepspeed]' (or remove `deepspeed` to train with DDP).")
        out["deepspeed"] = deepspeed
    out.update(fsdp_arguments(cfg, layer_class))
    sharded = "ZeRO-3" if zero_stage(deepspeed) == 3 else "FSDP" if "fsdp" in out else None
    dtype = "bfloat16" if cfg.bf16 else "float16" if cfg.fp16 else "float32"
    if sharded and cfg.load_in_4bit and cfg.bnb_4bit_quant_storage != dtype:
        # The engine flattens all parameters of a unit into one buffer: 4-bit weights must be stored in
        # the dtype of the others (transformers' QLoRA + ZeRO-3 / FSDP recipe).
        raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "bnb_4bit_quant_storage",
                                   f"{sharded} shards a 4-bit base only when its packed weights are stored as "
                                   f"{dtype}, the training dtype (now: {cfg.bnb_4bit_quant_storage or 'uint8'}).",
                                   f"Add `bnb_4bit_quant_storage: {dtype}`.")])
    if cfg.ddp_timeout is not None:
        out["ddp_timeout"] = cfg.ddp_timeout
    if cfg.ddp_find_unused_parameters is not None:
        out["ddp_find_unused_parameters"] = cfg.ddp_find_unused_parameters
    return out


def deepspeed_replacements(cfg: AxoConfig, deepspeed: dict[str, Any] | None) -> list[str]:
    """What a DeepSpeed config's own `optimizer` / `scheduler` sections replace in the axo config (transformers
    then builds DeepSpeed's instead of the one the keys name), as messages for the run's log."""
    out = []
    for section, key, value in (("optimizer", "optimizer", cfg.optimizer), ("scheduler", "lr_scheduler", cfg.lr_scheduler)):
        if deepspeed and isinstance(deepspeed.get(section), dict):
            kind = deepspeed[section].get("type", "?")
            out.append(f"the DeepSpeed config's {section} ({kind}) replaces `{key}: {value}`")
    return out


def fused_lora_blocked(cfg: AxoConfig, engine: dict[str, Any]) -> str | None:
    """Why the fused LoRA path cannot run under this engine (None: it can); peft's path runs instead."""
    if zero_stage(engine.get("deepspeed")) == 3:
        # ZeRO-3 gathers a layer's weights only when that layer's own forward runs
        return "DeepSpeed ZeRO-3 partitions the weights it reads"
    if "fsdp" in engine and cfg.load_in_4bit:
        # FSDP2 hands the layer its packed 4-bit weight as a plain tensor without bitsandbytes' quant state
        # (measured: 2 x H200, bitsandbytes 0.50.2); bitsandbytes' own forward restores it
        return "FSDP shards the 4-bit weights it reads"
    return None


def check_optimizer_offload(deepspeed: dict[str, Any]) -> None:
    """DeepSpeed refuses, at its first step, to offload a client optimizer (the Trainer's AdamW, built from
    `optimizer:`) unless the config allows it; say so before any model is loaded."""
    offload = (deepspeed.get("zero_optimization") or {}).get("offload_optimizer") or {}
    if offload.get("device") not in ("cpu", "nvme") or "optimizer" in deepspeed:
        return
    if deepspeed.get("zero_force_ds_cpu_optimizer", True) is not False:
        raise _error("deepspeed", "offloads the optimizer, but DeepSpeed only offloads its own optimizer unless "
                     "told otherwise: the one axo builds from `optimizer:` would be refused.",
                     'Add "zero_force_ds_cpu_optimizer": false and "zero_allow_untested_optimizer": true to the '
                     'JSON (as axo\'s zero3_offload.json does), or give it an "optimizer" section.')


def decoder_layer_class(model_config: Any) -> str | None:
    """The class name of the model's decoder layer (FSDP's wrap unit), from the architecture's modeling
    module, without building the model."""

    model_type = getattr(model_config, "model_type", None)
    if not model_type:
        return None
    try:
        module = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    except ImportError:
        return None
    names = [name for name in dir(module) if name.endswith("DecoderLayer")]
    return names[0] if len(names) == 1 else None


def end_processes(succeeded: bool) -> None:
    """Tear down the process group the Trainer started, so each process exits cleanly (without it a gloo
    or NCCL worker thread outlives the interpreter and the process aborts). After a successful run the
    processes first wait for each other (rank 0 writes the run files last); after a failure they do not,
    since the others may never arrive."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if succeeded:
            dist.barrier()
        dist.destroy_process_group()
