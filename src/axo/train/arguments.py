"""The HF `TrainingArguments` for a config, with Axolotl's rules for values that depend on the step count."""

from __future__ import annotations

from math import ceil
from typing import TYPE_CHECKING, Any

from axo.config.hardware import Hardware
from axo.config.schema import AxoConfig
from axo.data.packing import PackingPlan
from axo.train.optimizers import BNB_OPTIMIZERS, check_optimizer
from axo.train.trackers import report_to

if TYPE_CHECKING:
    from transformers import TrainingArguments

DEFAULT_SAVE_TOTAL_LIMIT = 4  # Axolotl's
__all__ = ["BNB_OPTIMIZERS", "checkpointing_enabled", "total_steps", "training_arguments"]


def total_steps(cfg: AxoConfig, train_rows: int, world_size: int = 1, packing: PackingPlan | None = None) -> int:
    """Optimizer steps in the run: `max_steps`, else epochs × micro-batches per epoch / accumulation.

    With packing, each packed row is a micro-batch and the rows of every epoch are known in advance.
    """
    if cfg.max_steps:
        return cfg.max_steps
    accumulation = cfg.gradient_accumulation_steps or 1
    if packing is not None:
        whole, fraction = int(cfg.num_epochs), cfg.num_epochs - int(cfg.num_epochs)
        rows = sum(packing.rows_per_epoch[:whole])
        if fraction:
            rows += fraction * packing.rows_per_epoch[whole]
        return max(1, ceil(rows / (accumulation * world_size)))
    per_epoch = ceil(train_rows / (cfg.micro_batch_size * world_size)) / accumulation
    return max(1, ceil(ceil(per_epoch) * cfg.num_epochs))


def _scheduler(cfg: AxoConfig) -> tuple[str, dict[str, Any]]:
    kwargs = dict(cfg.lr_scheduler_kwargs or {})
    name = cfg.lr_scheduler
    if name in ("one_cycle", "rex"):  # Axolotl's own schedules; not in transformers
        name = "cosine"
    if name == "cosine" and cfg.cosine_min_lr_ratio is not None:
        name = "cosine_with_min_lr"
        kwargs["min_lr_rate"] = cfg.cosine_min_lr_ratio
    return name, kwargs


def _checkpoint_prefix() -> str:
    """The name transformers' TrainingArguments give activation checkpointing: `activation_checkpointing` in
    newer transformers (5.24 warns that `gradient_checkpointing` goes in v6), `gradient_checkpointing` in
    older ones (5.17 has only that). Told by the dataclass's fields, not by a version number."""
    from dataclasses import fields

    from transformers import TrainingArguments

    names = {field.name for field in fields(TrainingArguments)}
    return "activation" if "activation_checkpointing" in names else "gradient"


def _checkpointing(cfg: AxoConfig) -> dict[str, Any]:
    """`gradient_checkpointing(_kwargs)` from the config, under the names the installed transformers reads."""
    prefix = _checkpoint_prefix()
    return {f"{prefix}_checkpointing": bool(cfg.gradient_checkpointing),
            f"{prefix}_checkpointing_kwargs": cfg.gradient_checkpointing_kwargs}


def offload_checkpoint_inputs(args: TrainingArguments) -> None:
    """Ask for torch's reentrant checkpointing, whose layer inputs are saved through autograd's saved-tensor
    hooks and so can wait in host memory (train/offload.py); the non-reentrant kind keeps them on the GPU.
    The gradients are the same."""
    name = f"{_checkpoint_prefix()}_checkpointing_kwargs"
    setattr(args, name, {**(getattr(args, name) or {}), "use_reentrant": True})


def checkpointing_enabled(args: TrainingArguments) -> bool:
    """Whether the Trainer turns activation checkpointing on, read under the installed transformers' name."""
    return bool(getattr(args, f"{_checkpoint_prefix()}_checkpointing"))


def training_arguments(cfg: AxoConfig, train_rows: int, has_eval: bool, hardware: Hardware,
                       packing: PackingPlan | None = None, *, world_size: int = 1,
                       engine: dict[str, Any] | None = None, arguments_class: type | None = None,
                       method: dict[str, Any] | None = None) -> TrainingArguments:
    """Everything the config says about the optimisation loop, as transformers' TrainingArguments.

    `world_size` processes each take micro-batches (the global batch is micro_batch_size ×
    gradient_accumulation_steps × world_size, as in Axolotl), so the step count divides by it. `engine`
    holds the DeepSpeed / FSDP / DDP entries (train/distributed.py).

    With `packing`, one packed row (micro_batch_size × sequence_len tokens) is the micro-batch, the rows
    of all epochs form one pass in the planned order, and the step count comes from the plan.

    `arguments_class` is the training mode's TrainingArguments subclass (a TRL config for preference
    methods) and `method` its own arguments (β, loss type, …).
    """
    from transformers import TrainingArguments

    arguments_class = arguments_class or TrainingArguments
    steps = total_steps(cfg, train_rows, world_size, packing=packing)
    warmup: dict[str, Any] = {}
    if cfg.warmup_steps is not None:
        warmup["warmup_steps"] = cfg.warmup_steps
    elif cfg.warmup_ratio is not None:
        warmup["warmup_steps"] = max(int(cfg.warmup_ratio * steps), 0)
    else:  # Axolotl: 3% of all steps, at most 100
        warmup["warmup_steps"] = min(int(0.03 * steps), 100)
    scheduler, scheduler_kwargs = _scheduler(cfg)
    # `evals_per_epoch: 0` with no `eval_steps`/`eval_strategy` means no evaluation (Axolotl then leaves
    # transformers' default, "no").
    evaluate = has_eval and cfg.eval_strategy != "no" and not (
        cfg.evals_per_epoch == 0 and cfg.eval_steps is None and cfg.eval_strategy is None)
    eval_strategy = cfg.eval_strategy or ("steps" if cfg.eval_steps else "epoch") if evaluate else "no"
    save_strategy = cfg.save_strategy or ("steps" if cfg.save_steps else "epoch")
    extra: dict[str, Any] = {}
    if cfg.adam_beta1 is not None:
        extra["adam_beta1"] = cfg.adam_beta1
    if cfg.adam_beta2 is not None:
        extra["adam_beta2"] = cfg.adam_beta2
    if cfg.adam_epsilon is not None:
        extra["adam_epsilon"] = cfg.adam_epsilon
    if cfg.optim_args is not None:
        extra["optim_args"] = cfg.optim_args if isinstance(cfg.optim_args, str) else ",".join(
            f"{k}={v}" for k, v in cfg.optim_args.items())
    # None: axo builds the optimizer itself (train/optimizers.py `custom_optimizer`); the Trainer's own
    # `optim` default then stands unused.
    optimizer = check_optimizer(cfg, hardware) or "adamw_torch"
    shape: dict[str, Any] = {
        "per_device_train_batch_size": cfg.micro_batch_size,
        "per_device_eval_batch_size": cfg.eval_batch_size or cfg.micro_batch_size,
        "num_train_epochs": cfg.num_epochs,
        "max_steps": cfg.max_steps or -1,
        "train_sampling_strategy": "group_by_length" if cfg.group_by_length else "random",
    }
    if packing is not None:
        shape.update(per_device_train_batch_size=1, num_train_epochs=1, max_steps=steps,
                     train_sampling_strategy="sequential")  # the plan already shuffled each epoch
        if cfg.eval_sample_packing:
            shape["per_device_eval_batch_size"] = 1
    if cfg.batch_flattening is True:
        shape["train_sampling_strategy"] = "random"
    extra.update(_best_model(cfg, evaluate, eval_strategy, save_strategy))
    extra.update(_compile(cfg))
    settings = dict(
        output_dir=cfg.output_dir,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps or 1,
        **shape,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=scheduler,
        lr_scheduler_kwargs=scheduler_kwargs,
        optim=optimizer,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        bf16=bool(cfg.bf16),
        fp16=bool(cfg.fp16),
        tf32=bool(cfg.tf32) if hardware.tf32_supported else None,
        **_checkpointing(cfg),
        logging_steps=cfg.logging_steps or max(min(int(0.005 * steps), 10), 1),
        eval_strategy=eval_strategy,
        eval_steps=cfg.eval_steps if eval_strategy == "steps" else None,
        save_strategy=save_strategy,
        save_steps=cfg.save_steps if save_strategy == "steps" else 500,
        save_total_limit=cfg.save_total_limit or DEFAULT_SAVE_TOTAL_LIMIT,
        save_only_model=cfg.save_only_model,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=report_to(cfg),
        run_name=cfg.wandb_name or cfg.wandb_run_name or cfg.mlflow_run_name,
        remove_unused_columns=False,
        use_cpu=not hardware.has_cuda,
        neftune_noise_alpha=cfg.neftune_noise_alpha,
        include_num_input_tokens_seen="non_padding",
        logging_nan_inf_filter=False,  # the default logs a NaN loss as 0.0; the loss watchdog must see it
        disable_tqdm=True,  # axo's own progress bar (train/callbacks.py)
        **warmup,
        **extra,
        **(engine or {}),
    )
    settings.update(method or {})  # the mode's word wins (e.g. KTO samples rows in order)
    return arguments_class(**settings)


def _best_model(cfg: AxoConfig, evaluate: bool, eval_strategy: str, save_strategy: str) -> dict[str, Any]:
    """Keep the best checkpoint (transformers' `load_best_model_at_end`), which `early_stopping_patience`
    needs, as Axolotl: on when asked or for early stopping, with evaluation data, and only when every
    evaluation has a checkpoint to load (same strategy; with steps, save_steps a multiple of eval_steps)."""
    if not (cfg.load_best_model_at_end or cfg.early_stopping_patience) or not evaluate:
        return {}
    aligned = eval_strategy == save_strategy and (
        eval_strategy != "steps" or (cfg.eval_steps and cfg.save_steps and cfg.save_steps % cfg.eval_steps == 0))
    out: dict[str, Any] = {"load_best_model_at_end": bool(aligned),
                           "metric_for_best_model": cfg.metric_for_best_model or "eval_loss"}
    if cfg.greater_is_better is not None:
        out["greater_is_better"] = cfg.greater_is_better
    return out


def _compile(cfg: AxoConfig) -> dict[str, Any]:
    """`torch_compile` (`auto` as true) with its backend and mode, as transformers' TrainingArguments take them:
    the Trainer wraps the model in `torch.compile` when training starts."""
    if not cfg.torch_compile:
        return {}
    out: dict[str, Any] = {"torch_compile": True}
    if cfg.torch_compile_backend:
        out["torch_compile_backend"] = cfg.torch_compile_backend
    if cfg.torch_compile_mode:
        out["torch_compile_mode"] = cfg.torch_compile_mode
    return out
