"""Load the base model a config names: dtype, attention kernel, config overrides, GGUF, 4/8-bit."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo.config.hardware import Hardware, detect_hardware
from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig
from axo.models import hub
from axo.models.weights import REDOWNLOAD, check_weight_files

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def _error(key: str, message: str, hint: str, kind: Kind = Kind.MISSING_RESOURCE) -> ConfigError:
    return ConfigError([Problem(Severity.ERROR, kind, key, message, hint)])


def refuse_pickle_only(folder: str | Path, name: str) -> None:
    """Raise a ConfigError when `folder` is a directory whose only weights are pickle (.bin) files: loading
    pickle can run code, so every command (train, inference, evaluate, serve) reads safetensors unless the
    config opts in with `load_pickle_weights`."""
    folder = Path(folder)
    if folder.is_dir() and not list(folder.glob("*.safetensors")) and list(folder.glob("*.bin")):
        raise _error("load_pickle_weights", f"{name!r} has only pickle (.bin) weights, which can run code when "
                     "loaded.", "Convert them to safetensors, or set `load_pickle_weights: true` if you trust the "
                     "files.") from None


def training_dtype(cfg: AxoConfig) -> torch.dtype:
    """bf16 / fp16 / fp32 as resolved by the config (`bf16: auto` is already a bool here)."""
    import torch

    if cfg.bf16:
        return torch.bfloat16
    if cfg.fp16:
        return torch.float16
    return torch.float32


def choose_attention(cfg: AxoConfig, hardware: Hardware) -> str:
    """The attention kernel to load with: the one asked for when it can run here, else the best that can.

    flash-attn is an optional package; without it `flash_attention_2` maps to SDPA, which dispatches to
    torch's own fused flash kernel on CUDA (and to the math kernel on CPU). Packed rows on a CUDA GPU in
    bf16/fp16 use torch's varlen flash kernel (models/attention.py) unless flash-attn, flex or eager was
    asked for: SDPA would need a dense block-diagonal mask, about 20x slower at 16k tokens. On CPU,
    transformers builds that mask from the restarting position_ids (correct, slower).
    """
    wanted = cfg.attn_implementation or "sdpa"
    packed = cfg.sample_packing or cfg.batch_flattening is True
    half = bool(cfg.bf16 or cfg.fp16)
    has_flash_attn = importlib.util.find_spec("flash_attn") is not None
    if packed and hardware.has_cuda and half and wanted in ("sdpa", "flash_attention_2", "flash_attention_3", "varlen"):
        if not (wanted.startswith("flash_attention") and has_flash_attn):
            from axo.models.attention import register_varlen_attention, varlen_available

            if varlen_available():
                return register_varlen_attention()
    if wanted in ("flash_attention_2", "flash_attention_3", "flash_attention_4"):
        return wanted if hardware.has_cuda and has_flash_attn else "sdpa"
    if wanted == "varlen":
        return "sdpa"
    from axo.models.attention import attention_backend

    return attention_backend(wanted)  # xformers and Hub kernels: the package is checked, the name registered


def _gguf_parts(base_model: str) -> tuple[str, str] | None:
    path = Path(base_model)
    if path.suffix.lower() == ".gguf":
        return str(path.parent), path.name
    return None


def model_source_kwargs(cfg: AxoConfig) -> tuple[str, dict[str, Any]]:
    """Where from_pretrained should look, and the kwargs that say how (GGUF file, revision, remote code)."""
    kwargs: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code}
    gguf = _gguf_parts(cfg.base_model)
    if gguf is not None:
        if importlib.util.find_spec("gguf") is None:
            raise _error("base_model", f"{cfg.base_model!r} is a GGUF file, which needs the `gguf` package.",
                         "pip install 'axo[gguf]' (or: pip install gguf)")
        kwargs["gguf_file"] = gguf[1]
        return gguf[0], kwargs
    if cfg.revision_of_model:
        kwargs["revision"] = cfg.revision_of_model
    return cfg.base_model, kwargs


def quantization_config(cfg: AxoConfig, hardware: Hardware, dtype: torch.dtype) -> Any | None:
    if not (cfg.load_in_4bit or cfg.load_in_8bit):
        return None
    bits = 4 if cfg.load_in_4bit else 8
    key = f"load_in_{bits}bit"
    if not hardware.has_cuda:
        raise _error(key, f"{bits}-bit loading (bitsandbytes) needs a CUDA GPU, and this machine has none; axo "
                     "does not silently fall back to full precision.",
                     f"Run on a GPU, or set `{key}: false` (with `adapter: lora`) to train LoRA on the unquantized base.",
                     Kind.CONFLICT)
    if importlib.util.find_spec("bitsandbytes") is None:
        raise _error(key, f"{bits}-bit loading needs the bitsandbytes package.", "pip install 'axo[bnb]'")
    import torch
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, **(cfg.bnb_config_kwargs or {}))
    compute = getattr(torch, cfg.bnb_4bit_compute_dtype) if cfg.bnb_4bit_compute_dtype else dtype
    options: dict[str, Any] = {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": cfg.bnb_4bit_quant_type,
        "bnb_4bit_use_double_quant": cfg.bnb_4bit_use_double_quant,
        "bnb_4bit_compute_dtype": compute,
    }
    if cfg.bnb_4bit_quant_storage:
        options["bnb_4bit_quant_storage"] = getattr(torch, cfg.bnb_4bit_quant_storage)
    return BitsAndBytesConfig(**{**options, **(cfg.bnb_config_kwargs or {})})


def _forget_gguf_quantization(model: PreTrainedModel) -> None:
    """A GGUF checkpoint is dequantized to ordinary tensors on load (transformers 5.x), but the model keeps
    a GGUF "quantizer" mark, which makes Trainer refuse to train it and `save_pretrained` refuse to save.
    The weights are plain torch tensors in the training dtype, so the mark is dropped."""
    model.hf_quantizer = None
    if getattr(model, "is_quantized", False):
        model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _model_class(cfg: AxoConfig, config: Any = None):
    """The class that loads the base: `model_type` as written, else the Auto class for the task (a sequence
    classifier with `num_labels`; the rules refuse a causal-LM `model_type` with it). Given the model's
    `config`, an architecture without a sequence-classification class is an error naming it."""
    import transformers

    automatic = cfg.model_type in (None, "AutoModelForSequenceClassification")
    if cfg.num_labels is not None and config is not None and automatic:
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

        architecture = getattr(config, "model_type", None)
        if architecture not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
            raise _error("num_labels", f"the architecture of {cfg.base_model!r} ({architecture}) has no "
                         "sequence-classification class in transformers.",
                         "Choose a base model whose architecture has one (BERT, RoBERTa, Llama, Qwen2, Mistral, …), "
                         "or remove `num_labels` to train a language model.", Kind.CONFLICT)
    name = cfg.model_type or ("AutoModelForSequenceClassification" if cfg.num_labels is not None
                              else "AutoModelForCausalLM")
    cls = getattr(transformers, name, None)
    # a model class (LlamaForCausalLM) or an Auto class for models (AutoModelForCausalLM); `AutoTokenizer`
    # also has from_pretrained, and would fail later with a confusing error
    model_class = isinstance(cls, type) and (issubclass(cls, transformers.PreTrainedModel)
                                             or (name.startswith("AutoModel") and hasattr(cls, "from_pretrained")))
    if not model_class:
        raise _error("model_type", f"{name!r} is not a transformers model class.",
                     "Use AutoModelForCausalLM (or a class such as LlamaForCausalLM).", Kind.TYPE)
    return cls


def load_model_config(cfg: AxoConfig) -> Any:
    """The base model's transformers config (`base_model_config` when given); a Hub id is read from the local
    Hugging Face cache when it is there (models/hub.py).

    Raises:
        ConfigError: when no config can be read from there, or it is a Hub id neither cached nor reachable.
    """
    from transformers import AutoConfig

    source, kwargs = model_source_kwargs(cfg)
    config_source = source if cfg.base_model_config in (None, cfg.base_model) else cfg.base_model_config
    ref = hub.model_config_ref(cfg)
    hub.require([ref])
    try:
        return AutoConfig.from_pretrained(config_source, **kwargs)
    except (OSError, ValueError) as exc:
        raise _error("base_model", f"cannot load a model config from {cfg.base_model!r}: {str(exc).splitlines()[0]}",
                     remote_code_hint(cfg, exc) or "Point `base_model` at a Hugging Face model folder, a .gguf "
                     "file, or a reachable hub id." + hub.cache_hint(ref)) from None


def load_model(cfg: AxoConfig, tokenizer: PreTrainedTokenizerBase,
               hardware: Hardware | None = None) -> tuple[PreTrainedModel, bool]:
    """The base model, in the training dtype, quantized if asked, with embeddings sized to the tokenizer,
    and whether the embeddings had to grow (new tokens).

    A Hub id is read from the local Hugging Face cache when it is there (models/hub.py).

    Raises:
        ConfigError: for a model that cannot be found or loaded (a Hub id neither cached nor reachable: at
            once, without retries), or quantization this machine cannot run.
    """
    from transformers.integrations import is_deepspeed_zero3_enabled

    hardware = hardware or detect_hardware()
    dtype = training_dtype(cfg)
    source, kwargs = model_source_kwargs(cfg)
    ref = hub.model_ref(cfg)
    hub.require([ref])
    config = load_model_config(cfg)
    for key, value in (cfg.overrides_of_model_config or {}).items():
        setattr(config, key, value)
    if cfg.num_labels is not None:
        config.num_labels = cfg.num_labels
        if cfg.problem_type is not None:
            config.problem_type = cfg.problem_type
    config.use_cache = False  # with a cache, transformers 5 stops detecting packed sequences
    quantization = quantization_config(cfg, hardware, dtype)
    load_kwargs = {**kwargs, "config": config, "dtype": dtype, "attn_implementation": choose_attention(cfg, hardware),
                   **(cfg.overrides_of_model_kwargs or {})}
    if "gguf_file" not in kwargs and not cfg.load_pickle_weights:
        load_kwargs["use_safetensors"] = True  # pickle can run code on load; it needs an explicit opt-in
    if quantization is not None:
        load_kwargs["quantization_config"] = quantization
        if not is_deepspeed_zero3_enabled():
            # each training process puts its copy on its own GPU (LOCAL_RANK, set by the launcher); under
            # ZeRO-3 transformers refuses a device_map and quantizes onto the process's current GPU itself
            load_kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))}
    model = _from_pretrained(cfg, source, load_kwargs, ref)
    if "gguf_file" in kwargs:
        _forget_gguf_quantization(model)
    if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    resized = len(tokenizer) > embedding_rows(model)
    if resized:
        model.resize_token_embeddings(len(tokenizer))
    return model, resized


def _from_pretrained(cfg: AxoConfig, source: str, load_kwargs: dict[str, Any], ref: hub.HubRef | None) -> PreTrainedModel:
    """`from_pretrained` with the failures a user causes turned into problems: damaged weight files, custom
    code without `trust_remote_code`, and `model_config` overrides that change the shape of the weights (an
    error) or leave weights out of the checkpoint (newly initialised, which would train a partly random
    model: also an error)."""
    from safetensors import SafetensorError

    if "gguf_file" not in load_kwargs:
        check_weight_files(Path(source), "base_model", "model weights", REDOWNLOAD)
    overrides = sorted(cfg.overrides_of_model_config or {})
    if overrides:
        # What was loaded is asked for only when an override may have changed it (the plain path stays as
        # is). Mismatched shapes are let through to be listed here: transformers' own error names none.
        load_kwargs = {"ignore_mismatched_sizes": True, **load_kwargs, "output_loading_info": True}
    if cfg.reinit_weights:  # pretraining from scratch: the architecture alone, freshly initialised
        return _from_config(cfg, load_kwargs)
    try:
        loaded = _model_class(cfg, load_kwargs.get("config")).from_pretrained(source, **load_kwargs)
        model, info = loaded if overrides else (loaded, {})
    except SafetensorError as exc:
        raise _error("base_model", f"a weights file of {cfg.base_model!r} is damaged: {str(exc).splitlines()[0]}.",
                     REDOWNLOAD) from None
    except (OSError, ValueError) as exc:
        refuse_pickle_only(source, cfg.base_model)
        raise _error("base_model", f"cannot load the model {cfg.base_model!r}: {str(exc).splitlines()[0]}",
                     remote_code_hint(cfg, exc) or "Check the path or hub id, and that the weights are safetensors "
                     "or GGUF." + hub.cache_hint(ref)) from None
    if overrides:
        wrong = sorted(info.get("mismatched_keys", ()), key=lambda item: item[0])
        missing = sorted(name for name in info.get("missing_keys", ()) if not name.startswith(_NEW_HEADS))
        if wrong:
            name, stored, needed = wrong[0]
            raise _overrides_do_not_fit(cfg, overrides, f"{name} is {list(stored)} in the checkpoint, the changed "
                                        f"config needs {list(needed)} ({len(wrong)} weights do not fit)")
        if missing:
            raise _overrides_do_not_fit(cfg, overrides, f"{missing[0]} is not in the checkpoint ({len(missing)} "
                                        "weights would start from random values)")
    return model


def _from_config(cfg: AxoConfig, load_kwargs: dict[str, Any]) -> PreTrainedModel:
    """`reinit_weights`: the model built from its config with the architecture's own random initialisation (as
    Axolotl's `_load_model_from_config`), in the training dtype, on the device the weights would have gone to."""
    import torch

    if load_kwargs.get("quantization_config") is not None:
        raise _error("reinit_weights", "a freshly initialised model cannot be loaded in 4/8 bits (there are no "
                     "trained weights to quantize).", "Remove `load_in_4bit`/`load_in_8bit`, or `reinit_weights`.")
    config = load_kwargs["config"]
    model = _model_class(cfg, config).from_config(config, dtype=load_kwargs.get("dtype"),
                                                  attn_implementation=load_kwargs.get("attn_implementation"),
                                                  trust_remote_code=cfg.trust_remote_code)
    device = (load_kwargs.get("device_map") or {}).get("")
    return model.to(f"cuda:{device}") if device is not None and torch.cuda.is_available() else model


_NEW_HEADS = ("score.", "classifier.")  # a classification head is new by design (num_labels)


def _overrides_do_not_fit(cfg: AxoConfig, overrides: list[str], detail: str) -> ConfigError:
    changed = ", ".join(f"{key}: {cfg.overrides_of_model_config[key]!r}" for key in overrides)
    return _error("model_config", f"the model_config overrides ({changed}) do not fit the weights of "
                  f"{cfg.base_model!r}: {detail}.", "model_config may change settings that leave the weights' "
                  "shapes alone (e.g. rope_theta, rope_scaling, max_position_embeddings); remove the override "
                  "that changes sizes or layer counts, or train from a checkpoint built with them.", Kind.CONFLICT)


def remote_code_hint(cfg: AxoConfig, exc: BaseException) -> str | None:
    """The fix for a model whose config needs its own Python code, when that is what went wrong."""
    if cfg.trust_remote_code or "trust_remote_code" not in str(exc):
        return None
    return ("This model ships its own Python code (`auto_map` in its config.json). If you trust its author, set "
            "`trust_remote_code: true`; otherwise choose a model that transformers supports natively.")


def embedding_rows(model: Any) -> int:
    """How many token rows the input embeddings hold. Under DeepSpeed ZeRO-3 the model is partitioned while
    it loads and each rank's `weight` is an empty slice: the full shape is DeepSpeed's `ds_shape`."""
    weight = model.get_input_embeddings().weight
    return int(getattr(weight, "ds_shape", weight.shape)[0])
