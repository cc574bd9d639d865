"""Optimisation, precision, schedule, evaluation and checkpointing."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from axo.config.schema.base import Section
from axo.config.schema.names import (
    ATTN_IMPLEMENTATIONS,
    LR_SCHEDULERS,
    OPTIMIZERS,
    did_you_mean,
    is_hub_kernel,
)


def _one_of(value: str | None, allowed: frozenset[str], what: str) -> str | None:
    if value is None or value in allowed:
        return value
    raise ValueError(
        f"unknown {what} {value!r}{did_you_mean(value, allowed)}; allowed: {', '.join(sorted(allowed))}"
    )


SEED_MAX = 2**32 - 1


class TrainingSection(Section):
    micro_batch_size: int = Field(1, ge=1, description="Samples (or packed rows) per device per forward pass.")
    gradient_accumulation_steps: int | None = Field(
        None, ge=1, description="Micro-batches per optimizer step (derived from `batch_size` when that is set).",
    )
    batch_size: int | None = Field(
        None, ge=1, description="Samples per optimizer step per device; sets `gradient_accumulation_steps`.",
    )
    eval_batch_size: int | None = Field(None, ge=1, description="Micro-batch size for evaluation (default `micro_batch_size`).")
    num_epochs: float = Field(1.0, gt=0, description="Passes over the training data.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides `num_epochs`).")
    learning_rate: float = Field(description="Peak learning rate, e.g. 2e-4 for LoRA, 1e-5 for a full fine-tune.", gt=0)
    lr_scheduler: str = Field("cosine", description="Learning-rate schedule after warm-up.")
    lr_scheduler_kwargs: dict[str, Any] | None = Field(None, description="Extra arguments for the scheduler.")
    cosine_min_lr_ratio: float | None = Field(
        None, ge=0.0, le=1.0, description="With cosine: decay to this fraction of `learning_rate` instead of 0.",
    )
    warmup_steps: int | None = Field(None, ge=0, description="Linear warm-up steps (default, as Axolotl: 3% of all steps, at most 100).")
    warmup_ratio: float | None = Field(None, ge=0.0, le=1.0, description="Warm-up as a fraction of all steps.")
    optimizer: str = Field("adamw_torch_fused", description="Optimizer name, as in transformers or Axolotl "
                           "(`adamw_torch_fused`, `adamw_bnb_8bit`, `adamw_torch_8bit`, `muon`, …); a backing "
                           "package that is missing is named at train time.")
    optim_args: str | dict[str, Any] | None = Field(None, description="Extra optimizer arguments.")
    weight_decay: float = Field(0.0, ge=0.0, description="Decoupled weight decay.")
    adam_beta1: float | None = Field(None, gt=0.0, lt=1.0, description="AdamW beta1.")
    adam_beta2: float | None = Field(None, gt=0.0, lt=1.0, description="AdamW beta2.")
    adam_epsilon: float | None = Field(None, gt=0.0, description="AdamW epsilon.")
    max_grad_norm: float = Field(1.0, ge=0.0, description="Clip gradients to this global norm (0 = no clipping).")
    bf16: bool | Literal["auto"] = Field(
        "auto", description="Train in bfloat16; `auto` picks it where the GPU supports it.",
    )
    fp16: bool | None = Field(None, description="Train in float16 with loss scaling (older GPUs).")
    tf32: bool | Literal["auto"] = Field(
        "auto", description="Allow TF32 matmuls on Ampere+ GPUs; `auto` enables them where supported.",
    )
    attn_implementation: str | None = Field(
        None, description="Attention kernel: `sdpa`, `eager`, `flash_attention_2`, `flex_attention`, `xformers`, "
        "or a Hub kernel such as `kernels-community/flash-attn3` (needs the `kernels` package), …",
    )
    activation_offloading: bool | Literal["legacy", "disk", "hidden_states"] | None = Field(
        None, description="Keep the activations saved for backward in CPU memory (torch's `save_on_cpu`) instead "
        "of GPU memory: less GPU memory, more host traffic. Axolotl's modes `legacy`/`disk`/`hidden_states` all "
        "offload to CPU memory in axo.",
    )
    max_memory: dict[int | str, int | float | str] | None = Field(
        None, description="Axolotl's per-device memory map, e.g. `{0: 20GiB}`: axo reads the GPU's entry as this "
        "process's GPU memory cap — the recompute plan fits within it and torch is held to it.",
    )
    gpu_memory_limit: int | float | str | None = Field(
        None, description="GPU memory cap per process (GiB, or a size such as `20GiB`); as `max_memory`.",
    )
    torch_compile: bool | Literal["auto"] | None = Field(
        None, description="Compile the model with `torch.compile` (transformers' `torch_compile`); `auto` as true.",
    )
    torch_compile_backend: str | None = Field(None, description="`torch.compile` backend (default `inductor`).")
    torch_compile_mode: Literal["default", "reduce-overhead", "max-autotune"] | None = Field(
        None, description="`torch.compile` mode.",
    )
    unfrozen_parameters: list[str] | None = Field(
        None, description="Train only the parameters whose names match one of these regexes (Axolotl's rule: a "
        "`.` is a literal dot, matching starts at the name's start, an optional `[start:end]` suffix limits "
        "training to those rows); every other parameter is frozen.",
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop when the eval loss has not improved for this many evaluations in a row "
        "(transformers' EarlyStoppingCallback); the best checkpoint is loaded at the end.",
    )
    load_best_model_at_end: bool | None = Field(
        None, description="Load the checkpoint with the best `metric_for_best_model` at the end of training.",
    )
    metric_for_best_model: str | None = Field(None, description="Metric that picks the best checkpoint (default `eval_loss`).")
    greater_is_better: bool | None = Field(None, description="Whether a larger `metric_for_best_model` is better.")
    gradient_checkpointing: bool | Literal["offload"] = Field(
        False, description="Recompute activations in the backward pass to save memory; `offload` also keeps the "
        "layer inputs kept for the recomputation in CPU memory (torch's `save_on_cpu`, as `activation_offloading`).",
    )
    gradient_checkpointing_kwargs: dict[str, Any] | None = Field(
        None, description="Passed to transformers, e.g. `{use_reentrant: false}`.",
    )
    gradient_checkpointing_keep_layers: int | None = Field(
        None, ge=0, description="With gradient checkpointing, the number of decoder layers at the top of the stack "
        "that keep their activations instead of recomputing them (faster, more memory). Unset: on a GPU, as many "
        "as the memory budget allows (the device less 10 %, or `max_memory`) — every layer when all fit — "
        "chosen by axo's planner before the model loads; elsewhere 1. `0`: recompute every layer.",
    )
    neftune_noise_alpha: float | None = Field(None, gt=0.0, description="NEFTune embedding noise.")
    seed: int = Field(42, description="Random seed for data order, dropout and initialisation.")
    logging_steps: int | None = Field(
        None, ge=1, description="Log every N optimizer steps (default, as Axolotl: 0.5% of all steps, between 1 and 10).",
    )
    eval_strategy: Literal["no", "steps", "epoch"] | None = Field(None, description="When to evaluate.")
    eval_steps: float | None = Field(
        None, gt=0, description="Evaluate every N steps (or a fraction < 1 of all steps).",
    )
    evals_per_epoch: int | None = Field(None, ge=0, description="Evaluate this many times per epoch (0: never).")
    save_strategy: Literal["no", "steps", "epoch", "best"] | None = Field(None, description="When to save checkpoints (default `steps` with `save_steps`, else `epoch`).")
    save_steps: float | None = Field(None, gt=0, description="Save every N steps (or a fraction < 1 of all steps).")
    saves_per_epoch: int | None = Field(None, ge=1, description="Save this many times per epoch.")
    save_total_limit: int | None = Field(None, ge=1, description="Keep at most this many checkpoints (default 4, as Axolotl).")
    save_only_model: bool = Field(False, description="Save weights without optimizer state (cannot resume exactly).")
    output_dir: str = Field("./model-out", description="Where the adapter or model, checkpoints and run files go.")
    resume_from_checkpoint: str | None = Field(None, description="A `checkpoint-N` directory to resume from.")
    loss_watchdog_threshold: float | None = Field(
        None, gt=0, description="Stop when the loss stays above this for `loss_watchdog_patience` logs (NaN/inf always stops).",
    )
    loss_watchdog_patience: int = Field(3, ge=1, description="Consecutive logs above the threshold before stopping.")
    auto_resume_from_checkpoints: bool = Field(False, description="Resume from the newest valid checkpoint in `output_dir`.")

    @field_validator("eval_strategy", "save_strategy", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted `no` as false; `save_strategy: no` means the strategy "no".
        return "no" if value is False else value

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, value: str) -> str:
        return _one_of(value, OPTIMIZERS, "optimizer")

    @field_validator("lr_scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        return _one_of(value, LR_SCHEDULERS, "lr_scheduler")

    @field_validator("attn_implementation")
    @classmethod
    def _known_attention(cls, value: str | None) -> str | None:
        if value is not None and is_hub_kernel(value):
            return value
        return _one_of(value, ATTN_IMPLEMENTATIONS, "attn_implementation")

    @field_validator("unfrozen_parameters")
    @classmethod
    def _patterns_compile(cls, value: list[str] | None) -> list[str] | None:
        import re

        for pattern in value or []:
            try:
                re.compile(re.sub(r"\[[0-9]*(:[0-9]*)?\]$", "", pattern))
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression ({exc}); write one per parameter "
                                 "group, e.g. `^model.layers.1[0-9].mlp`") from None
        return value

    @field_validator("seed")
    @classmethod
    def _seed_in_range(cls, value: int) -> int:
        # numpy's legacy seeding (which transformers' set_seed calls) takes 0 .. 2**32 - 1 and raises outside it
        if not 0 <= value <= SEED_MAX:
            raise ValueError(f"must be between 0 and {SEED_MAX} (2**32 - 1, what numpy and torch accept), "
                             f"got {value}; pick any number in that range, e.g. 42")
        return value

    @field_validator("output_dir")
    @classmethod
    def _output_dir_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty, which would put the run's files into the working folder; name "
                             "a folder, e.g. `output_dir: ./outputs/my-run`, or delete the key for the default "
                             "./model-out")
        return value
