"""Wrap the base model in the config's adapter kind through peft (or leave it whole for a full fine-tune)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def _error(key: str, message: str, hint: str) -> ConfigError:
    return ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, key, message, hint)])


def linear_module_names(model: PreTrainedModel) -> list[str]:
    """Short names of every linear layer except the output head (what `lora_target_linear` adapts)."""
    import torch

    output = model.get_output_embeddings()
    names = set()
    for name, module in model.named_modules():
        if module is output:
            continue
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt"):
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names - {"score", "classifier"})


def lora_targets(cfg: AxoConfig, model: PreTrainedModel) -> list[str] | str | None:
    """The modules `lora_target_modules` / `lora_target_linear` name (None: peft's default for the
    architecture); other adapter kinds fall back to them too (models/adapters/base.py)."""
    listed = cfg.lora_target_modules
    if cfg.lora_target_linear:
        found = linear_module_names(model)
        return sorted(set(found) | set(listed if isinstance(listed, list) else []))
    return listed  # a list, a regex string, or None (peft's default for the architecture)


def _check_resized_embeddings(cfg: AxoConfig, model: PreTrainedModel, resized: bool) -> None:
    if not resized:
        return
    saved = set(cfg.lora_modules_to_save or [])
    needed = {"embed_tokens", "lm_head"}
    if not needed <= saved:
        raise _error("lora_modules_to_save", "new tokens were added (`tokens` / `special_tokens`), so the embeddings "
                     "grew, but an adapter does not train them unless listed in `lora_modules_to_save`.",
                     "Add `lora_modules_to_save: [embed_tokens, lm_head]`.")


def keeps_half_precision(cfg: AxoConfig) -> bool:
    """Whether a quantized base keeps its unquantized weights (embeddings, head, norms) in bf16/fp16."""
    half = bool(cfg.bf16 or cfg.fp16)
    return half if cfg.embeddings_skip_upcast is None else bool(cfg.embeddings_skip_upcast and half)


def _prepare_quantized_in_place(cfg: AxoConfig, model: PreTrainedModel) -> None:
    """peft's `prepare_model_for_kbit_training` without its float32 upcast of the unquantized weights.

    Those weights are frozen; float32 copies cost memory (2 GiB more for Llama-3-8B's embeddings and head)
    and make the residual stream float32, doubling what gradient checkpointing keeps — for no gain under
    bf16 autocast. peft has no switch for the upcast (Axolotl patches peft's code for
    `embeddings_skip_upcast`), so the two other steps are done here: freeze, and enable checkpointing.
    """
    for parameter in model.parameters():
        parameter.requires_grad = False
    if cfg.gradient_checkpointing:
        kwargs = dict(cfg.gradient_checkpointing_kwargs or {})
        if kwargs.get("use_reentrant", True):
            model.enable_input_require_grads()  # reentrant checkpoints need an input that requires grad
        # transformers 5.24 renamed it (the old name warns); 5.17, on the GPU machines, has only the old one
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable(kwargs)


def apply_adapter(cfg: AxoConfig, model: PreTrainedModel, *, embeddings_resized: bool = False,
                  total_steps: int | None = None) -> PreTrainedModel:
    """The model ready to train: a peft model of the config's adapter kind (models/adapters/), the model itself
    for a full fine-tune. `total_steps`: the run's optimizer steps (AdaLoRA schedules its rank budget by them)."""
    if cfg.adapter is None:
        return model
    from peft import get_peft_model, prepare_model_for_kbit_training

    from axo.models.adapters import adapter_kind

    kind = adapter_kind(cfg.adapter)
    _check_resized_embeddings(cfg, model, embeddings_resized)
    if cfg.load_in_4bit or cfg.load_in_8bit:
        if keeps_half_precision(cfg):
            _prepare_quantized_in_place(cfg, model)
        else:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=bool(cfg.gradient_checkpointing),
                                                    gradient_checkpointing_kwargs=cfg.gradient_checkpointing_kwargs)
    if cfg.lora_model_dir:
        return load_adapter(model, cfg.lora_model_dir, "lora_model_dir", is_trainable=True)
    try:
        return get_peft_model(model, kind.build(cfg, model, total_steps))
    except ValueError as exc:
        key = kind.targets_key or "adapter"
        raise _error(key, f"peft could not build the {cfg.adapter} adapter: {str(exc).splitlines()[0]}",
                     f"This model's linear layers are: {', '.join(linear_module_names(model))}.") from None


def load_adapter(model: PreTrainedModel, adapter: str | Path, key: str, *, is_trainable: bool = False) -> Any:
    """peft's `PeftModel.from_pretrained(model, adapter)`, with the mistakes a user makes reported against
    `key`: a local folder that does not exist or holds no adapter_config.json, a damaged adapter file, an
    adapter trained on a model of another shape.

    Raises:
        ConfigError: for each of those.
    """
    from peft import PeftModel
    from safetensors import SafetensorError

    check_adapter_folder(adapter, key)
    try:
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=is_trainable)
    except SafetensorError as exc:
        raise _error(key, f"the adapter in {str(adapter)!r} is damaged: {str(exc).splitlines()[0]}.",
                     "Train the adapter again, or copy an intact one.") from None
    except RuntimeError as exc:
        if "size mismatch" not in str(exc):
            raise
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), "")
        raise _error(key, f"the adapter in {str(adapter)!r} does not fit this base model ({detail}).",
                     "Use the base model the adapter was trained on (its adapter_config.json names it as "
                     "base_model_name_or_path).") from None


def check_adapter_folder(adapter: str | Path, key: str = "lora_model_dir") -> None:
    """Raise a ConfigError when the local adapter folder `adapter` does not exist, has no adapter_config.json
    or holds a damaged safetensors file. A Hub id passes (hub.require checks it). Cheap: run before any data
    or model work."""
    from axo.models import hub
    from axo.models.weights import check_weight_files

    folder = Path(adapter).expanduser()
    if hub.hub_repo(str(adapter)) is not None:
        return
    if not folder.exists():
        raise _error(key, f"the adapter folder {str(adapter)!r} does not exist (looked in {Path.cwd()}).",
                     f"Point {key} at the folder of a trained adapter (it holds adapter_config.json)"
                     + (", or remove it to train a new adapter." if key == "lora_model_dir" else "."))
    if not (folder / "adapter_config.json").is_file():
        raise _error(key, f"{str(adapter)!r} is not an adapter folder: it has no adapter_config.json.",
                     f"Point {key} at the output_dir of an adapter run (adapter_config.json and "
                     "adapter_model.safetensors).")
    check_weight_files(folder, key, "adapter", "Train the adapter again, or copy an intact adapter_model.safetensors "
                       "from where it was made.")
