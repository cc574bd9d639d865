"""Cross-key rules of meta-learning (`meta_learning:`): what a meta-adapter run needs (an adapter, one process, a
task format), what it cannot combine with (another training method, kernels whose backward is not differentiable
under second-order MAML) and settings it does not read."""

from __future__ import annotations

from axo.config.problems import Kind, Severity
from axo.config.schema import AxoConfig

# Kernels whose backward passes are fused (not built from differentiable ops): second-order MAML would silently
# lose their second-order terms, so they are refused with `algorithm: maml`.
_FUSED_BACKWARD_KEYS = ("liger_rope", "liger_rms_norm", "liger_glu_activation", "liger_layer_norm",
                        "liger_cross_entropy", "liger_fused_linear_cross_entropy", "cut_cross_entropy")
_NOT_READ = ("sample_packing", "batch_flattening", "eval_sample_packing")
# Dataset formats whose rows are not prompt/answer pairs for a language model: no inner loop can train on them.
_NOT_TASK_FORMATS = ("classification", "pretokenized")


def meta_findings(cfg: AxoConfig, user_set: set[str]) -> list:
    """Findings (config/rules.py `Finding`) for the `meta_learning:` section of `cfg`."""
    from axo.config.rules import Finding

    meta = cfg.meta_learning
    if meta is None:
        return []
    found: list[Finding] = []
    other = ("rl" if cfg.rl else "reward_model" if cfg.reward_model else "num_labels" if cfg.num_labels is not None
             else "pretraining_dataset" if cfg.pretraining_dataset else None)
    if other:
        found.append(Finding("meta_learning", f"and `{other}` both choose the training method; a run trains one.",
                             f"Remove `{other}`, or `meta_learning:`."))
    if cfg.adapter is None:
        found.append(Finding("meta_learning", "adapts the adapter's weights per task; a full fine-tune has none.",
                             "Set `adapter: lora` (or `qlora` with `load_in_4bit: true`)."))
    if cfg.deepspeed or cfg.fsdp_config or cfg.fsdp_version:
        found.append(Finding("meta_learning", "runs in one process on one device in axo; DeepSpeed and FSDP are not "
                             "supported with it.", "Remove the deepspeed/fsdp keys."))
    if meta.algorithm == "maml":
        for key in _FUSED_BACKWARD_KEYS:
            if getattr(cfg, key, None):
                found.append(Finding(key, "cannot run with `meta_learning.algorithm: maml`: the kernel's backward is "
                                     "fused, so the second-order terms through it would be silently lost.",
                                     "Remove it, or use `algorithm: fomaml` or `reptile` (first-order)."))
        if cfg.attn_implementation not in (None, "eager", "sdpa"):
            found.append(Finding("attn_implementation", f"`{cfg.attn_implementation}` cannot run with "
                                 "`meta_learning.algorithm: maml`: its backward is a fused kernel with no second "
                                 "derivative (axo runs SDPA's math kernel for MAML).", "Remove it (SDPA), or use "
                                 "`algorithm: fomaml` or `reptile`."))
        if cfg.gradient_checkpointing and (cfg.gradient_checkpointing_kwargs or {}).get("use_reentrant"):
            found.append(Finding("gradient_checkpointing_kwargs", "use_reentrant: true cannot differentiate through "
                                 "the inner steps (reentrant checkpointing has no higher-order gradients).",
                                 "Use `{use_reentrant: false}` (axo's default)."))
    elif meta.first_order_after is not None:
        found.append(Finding("meta_learning.first_order_after", f"has no effect with `algorithm: {meta.algorithm}` "
                             "(already first-order).", "Remove it.", Severity.WARNING, Kind.CONFLICT))
    found += _batch_findings(cfg, user_set)
    for key in _NOT_READ:
        if key in user_set and getattr(cfg, key):
            found.append(Finding(key, "has no effect with `meta_learning`: each task's support and query rows are "
                                 "padded into batches of their own.", "Remove it.", Severity.WARNING, Kind.CONFLICT))
    for index, entry in enumerate(cfg.datasets or []):
        kind = meta.task_type or (entry.type if isinstance(entry.type, str) else "alpaca")
        if kind is None:
            found.append(Finding(f"datasets[{index}].type", "is not set: with `meta_learning` it names the prompt "
                                 "format of the rows inside each task.", "Set `type: alpaca` (or the rows' format), "
                                 "or `meta_learning.task_type`."))
        elif kind.split(":")[0].split(".")[0] in _NOT_TASK_FORMATS:
            found.append(Finding("meta_learning.task_type" if meta.task_type else f"datasets[{index}].type",
                                 f"`{kind}` rows cannot be a task's examples: the inner loop trains a language "
                                 "model on prompt/answer rows.", "Use alpaca, chat_template, completion, … rows."))
    return found


def _batch_findings(cfg: AxoConfig, user_set: set[str]) -> list:
    from axo.config.rules import Finding

    wanted = cfg.meta_learning.tasks_per_step if cfg.meta_learning else None
    if wanted is None:
        return []
    if wanted % cfg.micro_batch_size:
        return [Finding("meta_learning.tasks_per_step", f"{wanted} is not a multiple of micro_batch_size "
                        f"{cfg.micro_batch_size} (tasks per micro-batch).", "Make it a multiple, or change "
                        "micro_batch_size.")]
    accumulation = cfg.gradient_accumulation_steps
    if "gradient_accumulation_steps" in user_set and accumulation and accumulation * cfg.micro_batch_size != wanted:
        return [Finding("meta_learning.tasks_per_step", f"{wanted} disagrees with micro_batch_size "
                        f"{cfg.micro_batch_size} × gradient_accumulation_steps {accumulation}.",
                        "Remove one of them: each sets the tasks per meta-update.")]
    return []


def meta_accumulation(cfg: AxoConfig) -> int | None:
    """The gradient accumulation `meta_learning.tasks_per_step` implies, when it is what sets it."""
    meta = cfg.meta_learning
    if meta is None or meta.tasks_per_step is None or cfg.gradient_accumulation_steps is not None:
        return None
    return max(1, meta.tasks_per_step // cfg.micro_batch_size)
