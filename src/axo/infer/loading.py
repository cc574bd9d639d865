"""Load a trained run for generation: base + adapter, the base alone, or a full fine-tune."""

from __future__ import annotations

from typing import Any

from axo.infer.run_dir import Run


def half_precision_on_cpu(run: Run, device: str | None = None) -> str | None:
    """`bf16`/`fp16` when `run` trained in that precision and loads on a CPU (`device`, else this machine has no
    CUDA GPU): there it loads in float32 instead. CPUs without bf16/fp16 units run half-precision matmuls far slower
    (about 15x for SmolLM2-135M on the 2-core EPYC dev machine), and float32 holds every such weight exactly; a run
    trained on a GPU carries `bf16: true` (`bf16: auto` resolved there)."""
    half = "bf16" if run.cfg.bf16 else "fp16" if run.cfg.fp16 else None
    if half is None:
        return None
    if device is None:
        from axo.config.hardware import detect_hardware

        device = "cuda" if detect_hardware().has_cuda else "cpu"
    return half if device == "cpu" else None


def describe_model(run: Run, base_only: bool = False) -> str:
    """What `load_for_inference(run, base_only=...)` loads, in words, for the line printed before it."""
    if base_only or not run.is_adapter:
        what = f"the base model {run.base_model}" if base_only else f"the fine-tuned model in {run.output_dir}"
    else:
        what = f"{run.base_model} with the adapter in {run.output_dir}"
    half = half_precision_on_cpu(run)
    return what + (f" (in float32 on this CPU; the run trained in {half})" if half else "")


def load_for_inference(run: Run, *, base_only: bool = False, device: str | None = None,
                       trainable_adapter: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode. The tokenizer comes from the run directory when it has one (it
    carries the training's special tokens and chat template). `trainable_adapter` leaves the adapter's weights
    requiring gradients (few-shot evaluation adapts them).

    Raises:
        ConfigError: before anything loads, when the base model is a Hub id that is neither in the local
            Hugging Face cache nor loadable (offline mode, or the Hub does not answer); see models/hub.py.
    """
    from axo.models import hub

    cfg = run.cfg.model_copy(update={"base_model": run.base_model, "load_in_4bit": False, "load_in_8bit": False,
                                     "sample_packing": False, "tokenizer_config": None, "base_model_config": None})
    has_tokenizer = (run.output_dir / "tokenizer_config.json").is_file()
    full_model = not base_only and not run.is_adapter and (run.output_dir / "config.json").is_file()
    if run.is_adapter and not base_only:  # a damaged adapter is told before the base model loads
        from axo.models.adapter import check_adapter_folder

        check_adapter_folder(run.output_dir, "output_dir")
    needed = [] if full_model else [hub.model_ref(cfg)]
    if base_only or not has_tokenizer:
        needed.append(hub.tokenizer_ref(cfg))
    hub.require(needed)  # before torch's import: an offline mistake is told at once

    import torch
    from transformers import AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if half_precision_on_cpu(run, device):
        cfg = cfg.model_copy(update={"bf16": False, "fp16": False})

    from axo.models.loader import load_model
    from axo.models.tokenizer import load_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(run.output_dir) if has_tokenizer and not base_only else load_tokenizer(cfg)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if full_model:
        model, _ = load_model(cfg.model_copy(update={"base_model": str(run.output_dir)}), tokenizer)  # full fine-tune
    else:
        model, _ = load_model(cfg, tokenizer)
        if run.is_adapter and not base_only:
            from axo.models.adapter import load_adapter

            model = load_adapter(model, run.output_dir, "output_dir", is_trainable=trainable_adapter)
    # The loader switches the KV cache off for packed training; generation without it recomputes the whole
    # prefix for every new token (5x slower for 64 tokens on SmolLM2-135M).
    model.config.use_cache = True
    if getattr(model, "generation_config", None) is not None:  # sequence classifiers (reward models) have none
        model.generation_config.use_cache = True
    return model.to(device).eval(), tokenizer
