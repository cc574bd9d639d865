"""Load a trained run for generation: base + adapter, the base alone, or a full fine-tune."""

from __future__ import annotations

from typing import Any

from axo.infer.run_dir import Run


def describe_model(run: Run, base_only: bool = False) -> str:
    """What `load_for_inference(run, base_only=...)` loads, in words, for the line printed before it."""
    if base_only or not run.is_adapter:
        return f"the base model {run.base_model}" if base_only else f"the fine-tuned model in {run.output_dir}"
    return f"{run.base_model} with the adapter in {run.output_dir}"


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
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer
