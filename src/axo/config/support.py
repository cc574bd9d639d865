"""Which config keys axo validates but does not act on yet.

A user must never believe a setting took effect when it did not. Each key below is accepted by the
schema (so configs written for the finished feature validate today) and produces a warning naming the
feature that will honour it. When a feature lands, its group is deleted from this table in the same
commit, and the tests for that feature prove the keys work.
"""

from __future__ import annotations

from axo import __version__

_GROUPS: dict[str, tuple[str, ...]] = {
    "model loading and training (`axo train`)": (
        "base_model", "base_model_config", "revision_of_model", "model_type", "tokenizer_type",
        "tokenizer_config", "tokenizer_use_fast", "tokenizer_legacy", "trust_remote_code", "special_tokens",
        "tokens", "overrides_of_model_config", "overrides_of_model_kwargs", "num_labels", "low_cpu_mem_usage", "load_in_8bit",
        "load_in_4bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_compute_dtype",
        "bnb_4bit_quant_storage", "bnb_config_kwargs", "adapter", "lora_r", "lora_alpha", "lora_dropout",
        "lora_target_modules", "lora_target_linear", "lora_modules_to_save", "lora_fan_in_fan_out",
        "lora_model_dir", "peft_use_dora", "peft_use_rslora", "peft_layers_to_transform", "peft_init_lora_weights",
        "micro_batch_size", "gradient_accumulation_steps", "batch_size", "eval_batch_size", "num_epochs",
        "max_steps", "learning_rate", "lr_scheduler", "lr_scheduler_kwargs", "cosine_min_lr_ratio",
        "warmup_steps", "warmup_ratio", "optimizer", "optim_args", "weight_decay", "adam_beta1", "adam_beta2",
        "adam_epsilon", "max_grad_norm", "bf16", "fp16", "tf32", "attn_implementation", "gradient_checkpointing",
        "gradient_checkpointing_kwargs", "neftune_noise_alpha", "seed", "logging_steps", "eval_strategy",
        "eval_steps", "evals_per_epoch", "save_strategy", "save_steps", "saves_per_epoch", "save_total_limit",
        "save_only_model", "output_dir", "group_by_length",
    ),
    "experiment tracking (`axo train`)": (
        "wandb_project", "wandb_entity", "wandb_name", "wandb_run_name", "wandb_run_id", "wandb_mode",
        "wandb_watch", "wandb_log_model", "use_tensorboard", "use_mlflow", "mlflow_tracking_uri",
        "mlflow_experiment_name", "mlflow_run_name", "hub_model_id", "hf_token",
    ),
    "sample packing": (
        "sample_packing", "eval_sample_packing", "sample_packing_eff_est", "pad_to_sequence_len", "batch_flattening",
    ),
    "resuming runs": ("resume_from_checkpoint", "auto_resume_from_checkpoints"),
    "multi-GPU engines": ("deepspeed", "fsdp_version", "fsdp_config", "ddp_timeout", "ddp_find_unused_parameters"),
}

NOT_IMPLEMENTED: dict[str, str] = {key: feature for feature, keys in _GROUPS.items() for key in keys}


def not_implemented_message(key: str) -> str | None:
    """The warning text for a key whose feature has not landed, or None when the key is honoured."""
    feature = NOT_IMPLEMENTED.get(key)
    if feature is None:
        return None
    return f"is validated, but {feature} is not implemented in axo {__version__} yet; the setting has no effect."
