"""Values Axolotl derives from other values (its `normalize_config`), computed once, here.

After :func:`derive_values` the config holds concrete values: `bf16`/`tf32` are booleans, batch sizes
are filled in, per-epoch eval/save counts are step fractions, and each chat_template dataset knows its
template and masking rules. Values that need the dataset size (warm-up, logging interval) are computed
by the trainer.
"""

from __future__ import annotations

import os
from typing import Any

from axo.config.hardware import Hardware
from axo.config.meta_rules import meta_accumulation
from axo.config.problems import Kind, Severity
from axo.config.rules import Finding, check_machine
from axo.config.schema import AxoConfig, DatasetConfig

DEFAULT_DATASET_PREPARED_PATH = "last_run_prepared"  # Axolotl's name, so existing caches line up
DEFAULT_ROLES_TO_TRAIN = ["assistant"]
DEFAULT_TRAIN_ON_EOS = "turn"


def _note(key: str, message: str) -> Finding:
    return Finding(key, message, None, Severity.NOTE, Kind.DERIVED)


def _batch(cfg: AxoConfig, out: dict[str, Any], notes: list[Finding]) -> None:
    accumulation = cfg.gradient_accumulation_steps
    if accumulation is None:
        if (from_tasks := meta_accumulation(cfg)) is not None:
            accumulation = from_tasks
            notes.append(_note("gradient_accumulation_steps", f"= {accumulation} (meta_learning.tasks_per_step "
                               f"{cfg.meta_learning.tasks_per_step} / micro_batch_size {cfg.micro_batch_size})."))
        elif cfg.batch_size is not None:
            accumulation = max(1, cfg.batch_size // cfg.micro_batch_size)
            notes.append(_note("gradient_accumulation_steps", f"= {accumulation} (batch_size {cfg.batch_size} / "
                               f"micro_batch_size {cfg.micro_batch_size})."))
        else:
            accumulation = 1
    out["gradient_accumulation_steps"] = accumulation
    out["batch_size"] = cfg.batch_size or cfg.micro_batch_size * accumulation
    out["eval_batch_size"] = cfg.eval_batch_size or cfg.micro_batch_size
    if cfg.meta_learning is not None:  # tasks per meta-update: tasks per micro-batch × micro-batches
        out["meta_learning"] = cfg.meta_learning.model_copy(
            update={"tasks_per_step": cfg.meta_learning.tasks_per_step or cfg.micro_batch_size * accumulation})


def _precision(cfg: AxoConfig, hardware: Hardware, out: dict[str, Any], notes: list[Finding]) -> None:
    bf16, fp16 = cfg.bf16, cfg.fp16
    if bf16 == "auto":
        if fp16:
            bf16 = False
        elif hardware.bf16_supported:
            bf16 = True
        else:
            bf16 = False
            # Axolotl falls back to fp16 on GPUs without bf16; on CPU fp16 autocast is not a thing.
            if fp16 is None and hardware.has_cuda:
                fp16 = True
        chosen = "bf16" if bf16 else "fp16" if fp16 else "fp32"
        notes.append(_note("bf16", f"`auto` -> {str(bf16).lower()}: training in {chosen} ({hardware.describe()})."))
    out["bf16"] = bool(bf16)
    out["fp16"] = bool(fp16) and not bf16
    if cfg.tf32 == "auto":
        out["tf32"] = hardware.tf32_supported
        notes.append(_note("tf32", f"`auto` -> {str(out['tf32']).lower()} ({hardware.describe()})."))


def _per_epoch(cfg: AxoConfig, out: dict[str, Any], notes: list[Finding]) -> None:
    """evals/saves per epoch -> a fraction of all steps, as Axolotl does (HF reads < 1 as a ratio)."""
    has_eval = cfg.val_set_size > 0 or bool(cfg.test_datasets)
    for per_epoch_key, steps_key, enabled in (
        ("saves_per_epoch", "save_steps", True),
        ("evals_per_epoch", "eval_steps", has_eval),
    ):
        per_epoch = getattr(cfg, per_epoch_key)
        if not per_epoch or not enabled:
            continue
        fraction = 1.0 / (per_epoch * cfg.num_epochs)
        if fraction < 1.0:
            out[steps_key] = fraction
            notes.append(_note(steps_key, f"= {fraction:.4g} of all steps ({per_epoch_key} {per_epoch} × "
                               f"num_epochs {cfg.num_epochs:g})."))


def _dataset(entry: DatasetConfig, cfg: AxoConfig) -> DatasetConfig:
    if entry.type != "chat_template":
        return entry
    update: dict[str, Any] = {}
    if entry.chat_template is None:
        update["chat_template"] = cfg.chat_template or "tokenizer_default"
        if entry.chat_template_jinja is None and cfg.chat_template_jinja is not None:
            update["chat_template_jinja"] = cfg.chat_template_jinja
    if entry.roles_to_train is None:
        update["roles_to_train"] = list(DEFAULT_ROLES_TO_TRAIN)
    train_on_eos = entry.train_on_eos or cfg.train_on_eos or DEFAULT_TRAIN_ON_EOS
    update["train_on_eos"] = train_on_eos
    if entry.train_on_eot is None:
        update["train_on_eot"] = train_on_eos
    if entry.message_property_mappings is None:
        update["message_property_mappings"] = {"role": "role", "content": "content"}
    return entry.model_copy(update=update)


def derive_values(cfg: AxoConfig, hardware: Hardware) -> tuple[AxoConfig, list[Finding]]:
    """Return `cfg` with every derived value filled in for `hardware`, and a finding for each non-obvious one
    and for each setting `hardware` cannot run as written (rules.py `check_machine`; checked here, where the
    hardware is known, on the values as written)."""
    out: dict[str, Any] = {}
    notes: list[Finding] = check_machine(cfg, hardware)
    _batch(cfg, out, notes)
    _precision(cfg, hardware, out, notes)
    _per_epoch(cfg, out, notes)
    if cfg.eval_sample_packing is None:
        out["eval_sample_packing"] = cfg.sample_packing
    if cfg.pad_to_sequence_len is None and cfg.sample_packing:
        out["pad_to_sequence_len"] = True
    if cfg.gradient_checkpointing and cfg.gradient_checkpointing_kwargs is None:
        # Axolotl derives use_reentrant: true. axo derives false — torch's recommended mode, which stops a
        # layer's recomputation once its backward has what it needs (the fused LoRA path relies on that to
        # skip the last projection's GEMM) and needs no input-gradient hook for frozen embeddings.
        out["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if cfg.adapter is not None and cfg.lora_alpha is None:
        out["lora_alpha"] = cfg.lora_r
        notes.append(_note("lora_alpha", f"not set; using lora_r ({cfg.lora_r}), a LoRA scale of 1.0."))
    if cfg.chat_template_jinja is not None and cfg.chat_template is None:
        out["chat_template"] = "jinja"
    if cfg.reward_model and cfg.num_labels is None:  # a reward model is a sequence scorer with one output
        out["num_labels"] = 1
        notes.append(_note("num_labels", "1: `reward_model: true` trains a head that gives each sequence one score."))
    out["base_model_config"] = cfg.base_model_config or cfg.base_model
    out["tokenizer_config"] = cfg.tokenizer_config or out["base_model_config"]
    out["dataset_prepared_path"] = cfg.dataset_prepared_path or DEFAULT_DATASET_PREPARED_PATH
    out["dataset_num_proc"] = cfg.dataset_num_proc or os.cpu_count() or 1
    derived = cfg.model_copy(update=out)
    for section in ("datasets", "test_datasets"):
        entries = getattr(derived, section)
        if entries:
            derived = derived.model_copy(update={section: [_dataset(entry, derived) for entry in entries]})
    return derived, notes
