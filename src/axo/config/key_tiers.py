"""What a user loses when axo ignores a real Axolotl key, in tiers, and the training methods axo refuses.

One "unsupported" warning for every key hid the difference between "axo trains something else" and "a legacy
switch that does nothing": each Axolotl key axo lacks is put in a tier by the patterns below (first match wins),
and the warning says what ignoring it costs. `rl` values axo lacks (online RL) and `process_reward_model` are
errors: axo would train something else.
"""

from __future__ import annotations

from enum import Enum
from fnmatch import fnmatchcase
from typing import Any


class Tier(str, Enum):
    METHOD = "method"  # a whole training method: axo would train something else
    SPEED = "speed"  # speed or memory: same results, slower or more memory (or not runnable at that size)
    SIDE_EFFECT = "side-effect"  # logging, evaluation extras, export: the training itself is the same
    LEGACY = "legacy"  # no effect in Axolotl 0.21 either
    OTHER = "other"  # changes training in Axolotl; the result may differ


# Keys older Axolotl versions had and 0.21 no longer defines (old configs still carry them).
LEGACY_AXOLOTL_KEYS: frozenset[str] = frozenset({
    "flash_attn_fuse_qkv", "fsdp", "unsloth_cross_entropy_loss", "unsloth_lora_mlp", "unsloth_lora_o",
    "unsloth_lora_qkv", "unsloth_rms_norm", "unsloth_rope",
})

_TIERS: tuple[tuple[Tier, str, tuple[str, ...]], ...] = (
    (Tier.LEGACY, "a legacy switch", ("is_*_derived_model", "axolotl_config_path", "bfloat16", "float16", "float32",
                                      "hf_use_auth_token", "max_packed_sequence_len", *sorted(LEGACY_AXOLOTL_KEYS))),
    (Tier.METHOD, "online reinforcement learning (GRPO, EBFT, NeMo Gym; not in axo)", ("vllm", "nemo_gym_*", "ebft")),
    (Tier.LEGACY, "a preference-tuning switch TRL removed", ("dpo_norm_loss",)),
    (Tier.METHOD, "knowledge distillation (Axolotl's KD plugin)", ("kd_*",)),
    (Tier.METHOD, "diffusion language-model training", ("diffusion*",)),
    (Tier.METHOD, "multimodal training", ("processor_type", "processor_kwargs", "image_size",
                                          "image_resize_algorithm", "freeze_mm_modules")),
    (Tier.METHOD, ("another adapter or layer-selection method (ReLoRA, LISA, MoRA, MixLoRA, Spectrum, QAT, "
                   "Q-GaLore, LLM Compressor)"),
     ("relora*", "lisa_*", "mora", "mixlora_*", "spectrum_*", "qat", "qgalore_*", "llmcompressor", "dense_mixer")),
    (Tier.METHOD, "a different loss or context method (PoSE, DFT, EAFT)", ("use_pose", "pose_*", "use_dft",
                                                                          "use_eaft", "eaft_*")),
    (Tier.SPEED, "a speed or memory feature (compilation, fused or MoE kernels, parallelism, offloading)",
     ("torch_compile_*", "deepcompile", "unsloth_*", "flash_attn_*", "flash_optimum", "fused_attn_kernel",
      "sage_attention", "large_head_attention", "use_scattermoe", "use_sonicmoe", "expert_*",
      "experts_implementation", "moe_*", "dsv4_*", "gemma4_*", "use_dsv4_kernels", "use_glm_dsa_kernels",
      "use_kernels", "llama4_linearized_experts", "autotune_*", "liger_rms_norm_gated", "liger_kernel_impl",
      "chunked_cross_entropy*", "cut_cross_entropy_*", "tiled_mlp*", "context_parallel*", "tensor_parallel_size",
      "sequence_parallel_degree", "dp_shard_size", "dp_replicate_size", "ring_attn_func", "heads_k_stride",
      "layer_offloading", "ple_cpu_offload", "lora_embedding_kernel", "selective_checkpointing",
      "dynamic_checkpoint", "gc_steps", "gc_collect_steps", "torch_empty_cache_steps", "dataloader_*",
      "sample_packing_bin_size", "sample_packing_group_size", "sample_packing_mp_start_method",
      "multipack_real_batches", "fa_varlen_kwargs_in_collator", "sdpa_varlen", "experimental_skip_move_to_device",
      "qlora_sharded_model_loading", "use_ray", "ray_*", "resources_per_worker", "ddp", "ddp_*",
      "lora_on_cpu", "device_map", "device", "nf4_backend", "auto_find_batch_size",
      "fp8", "fp8_*", "quantize_moe_experts", "nonexpert_quantization", "nvfp4_*", "hatchery", "coreweave",
      "world_size", "local_rank", "dataset_keep_in_memory", "preprocess_iterable", "fp32_norm*")),
    (Tier.SIDE_EFFECT, "logging, extra evaluation, sample generation or export",
     ("comet_*", "use_comet", "swanlab_*", "use_swanlab", "trackio_*", "use_trackio", "otel_*", "use_otel_metrics",
      "lm_eval_*", "bench_*", "do_bench_eval", "do_causal_lm_eval", "eval_causal_lm_metrics", "eval_table_size",
      "eval_max_new_tokens", "generate_samples", "generation_*", "num_generation_samples", "gradio_*",
      "hf_mlflow_log_artifacts", "push_dataset_to_hub", "hub_strategy", "include_tkps", "include_tokens_per_second",
      "logging_nan_inf_filter", "save_first_step", "tokenizer_save_jinja_files", "export", "merge_lora",
      "merge_method", "profiler_steps*", "sync_profiler_*", "num_dataset_shards_to_save", "is_preprocess",
      "use_wandb", "total_num_tokens", "total_supervised_tokens", "save_safetensors")),
)

_MESSAGES = {
    Tier.METHOD: "configures {what}, a training method axo does not have; it is ignored, so axo would train "
                 "plain supervised fine-tuning instead.",
    Tier.SPEED: "is an Axolotl option for {what} that axo does not have; it is ignored: training gives the same "
                "results, but may be slower or need more memory than in Axolotl.",
    Tier.SIDE_EFFECT: "is an Axolotl option for {what} that axo does not have; it is ignored: training is the "
                      "same, but that does not happen.",
    Tier.LEGACY: "is {what} of older Axolotl versions with no effect in Axolotl 0.21; it is ignored, which "
                 "changes nothing.",
    Tier.OTHER: "is an Axolotl option that axo does not support; it is ignored, so the run may differ from "
                "Axolotl's.",
}


def tier_of(key: str) -> tuple[Tier, str]:
    """The tier of an Axolotl key axo lacks, and what it is for."""
    for tier, what, patterns in _TIERS:
        if any(fnmatchcase(key, pattern) for pattern in patterns):
            return tier, what
    return Tier.OTHER, ""


def unsupported_message(key: str) -> str:
    tier, what = tier_of(key)
    return _MESSAGES[tier].format(what=what)


# Keys that select a training method axo lacks: an error naming the method. `rl: dpo|ipo|orpo|kto|simpo` and
# `reward_model` are axo's own keys (config/schema/preference.py); these values and keys are not.
TRAINING_MODES: dict[str, str] = {
    "rl": "online reinforcement learning",
    "process_reward_model": "process-reward-model training (a score per reasoning step); axo trains outcome "
                            "reward models (`reward_model: true`), no issue plans these",
}
PREFERENCE_METHODS = {"dpo": "DPO", "ipo": "IPO", "kto": "KTO", "orpo": "ORPO", "simpo": "SimPO"}
_RL = {"grpo": "GRPO", "gdpo": "GDPO", "ebft": "EBFT"}  # online RL: no issue plans it yet


def training_mode(data: dict[str, Any]) -> tuple[str, str] | None:
    """(key, "what it asks for; where it is planned") when the config selects a method axo lacks; None otherwise
    (unset, false, or a method axo has)."""
    for key, what in TRAINING_MODES.items():
        value = data.get(key)
        if value in (None, False) or (isinstance(value, str) and value.lower() in ("", "false", "none", "no")):
            continue
        if key == "rl":
            name = str(value).lower()
            if name in PREFERENCE_METHODS:
                continue
            what = (f"{_RL[name]} reinforcement learning; no issue plans it yet" if name in _RL else
                    f"the `{value}` training method of Axolotl's `rl`; axo's are "
                    f"{', '.join(PREFERENCE_METHODS)}")
        return key, what
    return None
