"""What a run's model is made of, counted without loading a weight: the base is built on torch's meta device
from its config and the run's own adapter code (models/adapter.py) wraps it, so parameter counts, dtypes and
which weights train are exactly those of the real run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from axo.config.schema import AxoConfig

_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8, "int8": 1, "uint8": 1}


@dataclass(frozen=True)
class Tensors:
    """A group of parameters: how many elements, and their size in bytes as stored."""

    count: int = 0
    bytes: int = 0

    def __add__(self, other: Tensors) -> Tensors:
        return Tensors(self.count + other.count, self.bytes + other.bytes)


@dataclass(frozen=True)
class ModelShape:
    """The dimensions the memory and time model needs, and the run's parameters grouped by role."""

    model_type: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    dtype_bytes: int  # the training dtype's element size (activations, frozen weights)
    decoder_linear: int  # weights of the decoder's linear layers (not the head), trained or not
    frozen_linear: Tensors  # frozen weights of the decoder's linear layers: what 4/8-bit loading quantizes
    frozen_other: Tensors  # frozen embeddings, head, norms, biases (kept in their dtype)
    trainable: Tensors  # adapter weights, or every weight in a full fine-tune
    trainable_tensors: int  # how many trainable parameter tensors (the optimizer keeps a step count for each)
    lora_modules_per_layer: int  # adapted linear layers per decoder layer (each saves a rank-r product)
    lora_rank: int
    lora_in_features: int  # summed input width of one decoder layer's adapted linear layers

    @property
    def total_params(self) -> int:
        return self.frozen_linear.count + self.frozen_other.count + self.trainable.count

    @property
    def kv_hidden(self) -> int:
        return self.kv_heads * self.head_dim


def _config_value(config: Any, *names: str, default: Any = None) -> Any:
    text = getattr(config, "text_config", None) or config
    for name in names:
        value = getattr(text, name, None)
        if value is not None:
            return value
    return default


def meta_model(cfg: AxoConfig) -> Any:
    """The run's model (base, and adapter when the config has one) with every tensor on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM

    from axo.models.adapter import apply_adapter
    from axo.models.loader import load_model_config, training_dtype

    config = load_model_config(cfg)
    for key, value in (cfg.overrides_of_model_config or {}).items():
        setattr(config, key, value)
    config.use_cache = False
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=training_dtype(cfg))
    if cfg.adapter is None:
        return model
    # A saved adapter to continue from is not read (its tensors would land on the meta device): the config's
    # lora_* keys describe it.
    return apply_adapter(cfg.model_copy(update={"lora_model_dir": None}), model)


def _quantizable(name: str, module: Any, head_names: set[str]) -> bool:
    """A frozen linear layer that bitsandbytes would quantize: every `nn.Linear` but the output head."""
    import torch

    return isinstance(module, torch.nn.Linear) and name.split(".")[-1] not in head_names


def model_shape(cfg: AxoConfig, model: Any = None) -> ModelShape:
    """Count `model` (built from `cfg` on the meta device when not given) by role."""
    import torch

    model = model if model is not None else meta_model(cfg)
    config = model.config
    head_names = {"lm_head", "score", "embed_out", "output"}
    linear_weights = {id(m.weight): m.weight.numel() for n, m in model.named_modules()
                      if _quantizable(n, m, head_names) and "lora_" not in n and "modules_to_save" not in n}
    frozen_linear, frozen_other, trainable = Tensors(), Tensors(), Tensors()
    tensors = 0
    for parameter in model.parameters():
        size = Tensors(parameter.numel(), parameter.numel() * _BYTES[str(parameter.dtype).removeprefix("torch.")])
        if parameter.requires_grad:
            trainable, tensors = trainable + size, tensors + 1
        elif id(parameter) in linear_weights:
            frozen_linear = frozen_linear + size
        else:
            frozen_other = frozen_other + size
    hidden = _config_value(config, "hidden_size", "d_model", "n_embd")
    heads = _config_value(config, "num_attention_heads", "n_head")
    layers = _config_value(config, "num_hidden_layers", "n_layer")
    adapted = [m.base_layer for m in model.modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer")]
    adapted = [m for m in adapted if isinstance(m, torch.nn.Linear)]
    return ModelShape(
        model_type=config.model_type, layers=layers, hidden=hidden,
        intermediate=_config_value(config, "intermediate_size", "n_inner", default=4 * hidden),
        heads=heads, kv_heads=_config_value(config, "num_key_value_heads", default=heads),
        head_dim=_config_value(config, "head_dim", default=hidden // heads) or hidden // heads,
        vocab=_config_value(config, "vocab_size"), dtype_bytes=_BYTES[str(model.dtype).removeprefix("torch.")],
        frozen_linear=frozen_linear, frozen_other=frozen_other, trainable=trainable, trainable_tensors=tensors,
        decoder_linear=sum(linear_weights.values()), lora_modules_per_layer=round(len(adapted) / layers),
        lora_rank=cfg.lora_r if adapted else 0, lora_in_features=round(sum(m.in_features for m in adapted) / layers))
