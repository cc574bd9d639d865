"""Rules that involve several keys: conflicts (errors that spell out the fix) and settings that would
otherwise be silently ignored (warnings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from axo.config import plugins
from axo.config.adapter_rules import adapter_findings
from axo.config.classification_rules import classification_findings
from axo.config.hardware import Hardware
from axo.config.memory_cap import memory_cap_gib
from axo.config.meta_rules import meta_findings
from axo.config.paths import looks_like_hub_id
from axo.config.preference_rules import preference_findings
from axo.config.pretraining_rules import pretraining_findings
from axo.config.problems import Kind, Severity
from axo.config.schema import AxoConfig


@dataclass(frozen=True)
class Finding:
    """A rule's verdict before it is located in the file."""

    key: str
    message: str
    hint: str | None = None
    severity: Severity = Severity.ERROR
    kind: Kind = Kind.CONFLICT


def _conflicts(cfg: AxoConfig, user_set: set[str]) -> list[Finding]:
    found: list[Finding] = []
    if cfg.warmup_steps is not None and cfg.warmup_ratio is not None:
        found.append(Finding("warmup_ratio", "cannot be combined with `warmup_steps`.",
                             "Keep one: `warmup_steps: N` (a step count) or `warmup_ratio: 0.03` (a fraction of all steps)."))
    if cfg.val_set_size > 0 and cfg.test_datasets:
        found.append(Finding("val_set_size", f"is {cfg.val_set_size:g} while `test_datasets` is set; "
                             "evaluation data must come from one place.",
                             "Remove `val_set_size` (or set it to 0) to evaluate on `test_datasets`, or remove `test_datasets`."))
    # The pairs below are each derived from the other; both may be written (a saved run config has both)
    # as long as they agree.
    if (cfg.batch_size is not None and cfg.gradient_accumulation_steps is not None
            and cfg.batch_size != cfg.micro_batch_size * cfg.gradient_accumulation_steps):
        found.append(Finding("batch_size", f"{cfg.batch_size} disagrees with `gradient_accumulation_steps` "
                             f"{cfg.gradient_accumulation_steps} × micro_batch_size {cfg.micro_batch_size}; each one "
                             "sets the other.",
                             "Keep `gradient_accumulation_steps` (steps per update), or keep `batch_size` "
                             "(= micro_batch_size × gradient_accumulation_steps)."))
    if cfg.batch_size is not None and cfg.batch_size % cfg.micro_batch_size:
        found.append(Finding("batch_size", f"{cfg.batch_size} is not a multiple of micro_batch_size {cfg.micro_batch_size}.",
                             "Pick a batch_size that micro_batch_size divides."))
    if cfg.adapter == "qlora" and cfg.load_in_8bit:
        found.append(Finding("load_in_8bit", "cannot be used with `adapter: qlora`, which trains on a 4-bit base.",
                             "Set `load_in_8bit: false` and `load_in_4bit: true`, or use `adapter: lora` for 8-bit LoRA."))
    elif cfg.adapter == "qlora" and not cfg.load_in_4bit:
        found.append(Finding("adapter", "is `qlora`, which needs a 4-bit base model, but `load_in_4bit` is not true.",
                             "Add `load_in_4bit: true`, or use `adapter: lora` to train on an unquantized base."))
    if cfg.load_in_4bit and cfg.load_in_8bit:
        found.append(Finding("load_in_4bit", "and `load_in_8bit` are both true.", "Pick one."))
    if (cfg.load_in_4bit or cfg.load_in_8bit) and cfg.adapter is None:
        bits = 4 if cfg.load_in_4bit else 8
        found.append(Finding(f"load_in_{bits}bit", f"a {bits}-bit model cannot be fine-tuned in full.",
                             "Add `adapter: qlora` (4-bit) or `adapter: lora`, or turn quantization off for a full fine-tune."))
    if cfg.bf16 is True and cfg.fp16:
        found.append(Finding("fp16", "and `bf16` are both true; training uses one precision.",
                             "Keep `bf16: true` on Ampere or newer GPUs, `fp16: true` on older ones."))
    for per_epoch, steps in (("evals_per_epoch", "eval_steps"), ("saves_per_epoch", "save_steps")):
        count, value = getattr(cfg, per_epoch), getattr(cfg, steps)
        # 0 per epoch is Axolotl's "unset" (no evaluation unless eval_steps asks for it)
        if count and value is not None and abs(value - 1.0 / (count * cfg.num_epochs)) > 1e-9:
            found.append(Finding(per_epoch, f"cannot be combined with `{steps}: {value:g}`.", "Keep one of them."))
    if cfg.deepspeed is not None and (cfg.fsdp_version is not None or cfg.fsdp_config is not None):
        found.append(Finding("deepspeed", "and FSDP (`fsdp_version`/`fsdp_config`) are both set; a run uses one engine.",
                             "Remove `deepspeed` or the fsdp keys."))
    if cfg.resume_from_checkpoint and cfg.auto_resume_from_checkpoints:
        found.append(Finding("auto_resume_from_checkpoints", "and `resume_from_checkpoint` are both set.",
                             "Keep `resume_from_checkpoint` for one checkpoint, or the automatic search alone."))
    if cfg.eval_steps is not None and cfg.eval_strategy not in (None, "steps", "no"):
        found.append(Finding("eval_strategy", f"is `{cfg.eval_strategy}` but `eval_steps` is set.",
                             "Set `eval_strategy: steps` or remove `eval_steps`."))
    if cfg.save_steps is not None and cfg.save_strategy not in (None, "steps", "no"):
        found.append(Finding("save_strategy", f"is `{cfg.save_strategy}` but `save_steps` is set.",
                             "Set `save_strategy: steps` or remove `save_steps`."))
    if cfg.chat_template == "jinja" and not cfg.chat_template_jinja:
        found.append(Finding("chat_template", "is `jinja` but `chat_template_jinja` is not set.",
                             "Add `chat_template_jinja:` with the template text or a path to a .jinja file."))
    for section in ("datasets", "test_datasets"):
        for index, entry in enumerate(getattr(cfg, section) or []):
            if entry.chat_template == "jinja" and not (entry.chat_template_jinja or cfg.chat_template_jinja):
                found.append(Finding(f"{section}[{index}].chat_template", "is `jinja` but no `chat_template_jinja` is set.",
                                     "Add `chat_template_jinja:` to the dataset entry or at the top level."))
    if cfg.sample_packing and cfg.batch_flattening is True:
        found.append(Finding("batch_flattening", "cannot be combined with `sample_packing`; packing already "
                             "flattens each micro-batch into one row.", "Keep `sample_packing: true` alone."))
    if cfg.sample_packing and cfg.num_labels is not None:
        found.append(Finding("sample_packing", "is for language modelling; sequence classification needs one "
                             "sample per row.", "Set `sample_packing: false`."))
    found.extend(_memory_cap(cfg))
    if (cfg.fsdp_version or cfg.fsdp_config) and cfg.liger_fused_linear_cross_entropy:
        found.append(Finding("liger_fused_linear_cross_entropy", "cannot run under FSDP: liger-kernel's fused "
                             "output-projection + cross-entropy reads the output head's weight while FSDP holds it "
                             "sharded (measured with liger-kernel 0.8.5 and FSDP2).",
                             "Remove it (keep the other liger_* keys), or train with DDP / DeepSpeed instead of FSDP."))
    liger_loss = _liger_loss_keys(cfg)
    if cfg.cut_cross_entropy and liger_loss and not _cce_from_plugin(cfg):
        found.append(Finding("cut_cross_entropy", f"and `{liger_loss[0]}` both replace the loss; only one "
                             "cross-entropy kernel can run (Axolotl refuses the pair too).",
                             f"Keep one: remove `{liger_loss[0]}` (the other liger_* keys can stay) or "
                             "`cut_cross_entropy`."))
    if _fsdp(cfg) and cfg.cut_cross_entropy and not _cce_from_plugin(cfg):
        found.append(Finding("cut_cross_entropy", "cannot run under FSDP: it reads the output head's weight "
                             "outside the head's forward, while FSDP holds it sharded (as Liger's fused loss does).",
                             "Remove it, or train with DDP / DeepSpeed ZeRO-1/2 instead of FSDP."))
    fsdp_checkpointing = any((cfg.fsdp_config or {}).get(k) for k in ("activation_checkpointing",
                                                                       "fsdp_activation_checkpointing"))
    if fsdp_checkpointing and cfg.gradient_checkpointing:
        found.append(Finding("gradient_checkpointing", "is on while `fsdp_config.activation_checkpointing` is true; "
                             "FSDP checkpoints its wrapped layers itself and the two cannot be combined.",
                             "Set `gradient_checkpointing: false` and keep FSDP's `activation_checkpointing: true`."))
    forced = [key for key in _LORA_KERNEL_KEYS if getattr(cfg, key) is True]
    if forced and cfg.peft_use_dora:
        found.append(Finding(forced[0], "cannot be used with `peft_use_dora: true`; the fused LoRA path computes "
                             "plain LoRA.", f"Remove `{forced[0]}` (DoRA runs through peft's own path)."))
    elif forced and cfg.load_in_8bit:
        found.append(Finding(forced[0], "cannot be used with an 8-bit base (`load_in_8bit`); the fused path handles "
                             "bf16/fp16/fp32 and 4-bit bases.", f"Remove `{forced[0]}`, or use `load_in_4bit` (QLoRA)."))
    if not cfg.datasets and not cfg.pretraining_dataset:
        found.append(Finding("datasets", "is missing: a training run needs at least one dataset.",
                             "Add `datasets:` with an entry such as `- path: data.jsonl` and `type: alpaca`."))
    return found


_LORA_KEYS = ("lora_alpha", "lora_dropout", "lora_target_modules", "lora_target_linear", "lora_modules_to_save",
              "lora_model_dir", "peft_use_dora", "peft_use_rslora", "lora_r", "lora_fan_in_fan_out",
              "lora_qkv_kernel", "lora_o_kernel", "lora_mlp_kernel")
_LORA_KERNEL_KEYS = ("lora_qkv_kernel", "lora_o_kernel", "lora_mlp_kernel")


def _memory_cap(cfg: AxoConfig) -> list[Finding]:
    """`max_memory` and `gpu_memory_limit` (Axolotl refuses both at once) must read as sizes."""
    if cfg.max_memory is not None and cfg.gpu_memory_limit is not None:
        return [Finding("gpu_memory_limit", "and `max_memory` both set the GPU memory cap.", "Keep one of them.")]
    key = "gpu_memory_limit" if cfg.gpu_memory_limit is not None else "max_memory"
    try:
        cap = memory_cap_gib(cfg)
    except ValueError:
        return [Finding(key, "is not a size.", "Write a number of GiB (20) or a size such as `20GiB` or `24GB`.")]
    if cap is not None and cap <= 0:
        return [Finding(key, f"must be more than 0 (got {cap:g} GiB).", "Write the GPU memory this run may use.")]
    return []


def _liger_loss_keys(cfg: AxoConfig) -> list[str]:
    return [key for key in ("liger_fused_linear_cross_entropy", "liger_cross_entropy") if getattr(cfg, key)]


def _fsdp(cfg: AxoConfig) -> bool:
    return bool(cfg.fsdp_version or cfg.fsdp_config)


def _cce_from_plugin(cfg: AxoConfig) -> bool:
    """Whether Axolotl's CCE plugin is listed: then `cut_cross_entropy` may be the plugin's default, which
    Axolotl's one-loss-kernel check (it reads the raw keys) does not see; a Liger loss key then wins."""
    return any(isinstance(name, str) and plugins.normalize(name) == plugins.CCE for name in cfg.plugins or [])


def _ignored(cfg: AxoConfig, user_set: set[str]) -> list[Finding]:
    """Keys that are valid but have no effect with the rest of the config."""
    found: list[Finding] = []

    def ignored(key: str, why: str, hint: str) -> None:
        found.append(Finding(key, f"has no effect: {why}.", hint, Severity.WARNING, Kind.CONFLICT))

    if cfg.adapter is None:
        for key in _LORA_KEYS:
            if key in user_set:
                ignored(key, "`adapter` is not set, so this is a full fine-tune", "Set `adapter: lora` to train LoRA.")
    if cfg.cut_cross_entropy and _liger_loss_keys(cfg) and _cce_from_plugin(cfg):
        ignored("cut_cross_entropy", f"`{_liger_loss_keys(cfg)[0]}` already replaces the loss and only one loss "
                "kernel can run, so Liger's runs (as in Axolotl, whose check ignores the CCE plugin's default)",
                f"Remove the Cut Cross Entropy plugin, or `{_liger_loss_keys(cfg)[0]}` to run CCE instead.")
    if cfg.cut_cross_entropy and _fsdp(cfg) and _cce_from_plugin(cfg) and not _liger_loss_keys(cfg):
        ignored("cut_cross_entropy", "the Cut Cross Entropy plugin reads the output head's weight outside the head's "
                "forward, while FSDP holds it sharded; the plain loss runs (same loss, the full logits in memory)",
                "Remove the plugin, or train with DDP / DeepSpeed ZeRO-1/2 to run CCE.")
    if "cosine_min_lr_ratio" in user_set and cfg.lr_scheduler != "cosine":
        ignored("cosine_min_lr_ratio", f"it applies to `lr_scheduler: cosine`, not `{cfg.lr_scheduler}`",
                "Remove it or switch the scheduler to cosine.")
    if cfg.save_strategy == "no" and ("save_steps" in user_set or "saves_per_epoch" in user_set):
        ignored("save_steps" if "save_steps" in user_set else "saves_per_epoch", "`save_strategy` is `no`",
                "Remove `save_strategy: no` to save checkpoints.")
    if cfg.eval_strategy == "no" and ("eval_steps" in user_set or "evals_per_epoch" in user_set):
        ignored("eval_steps" if "eval_steps" in user_set else "evals_per_epoch", "`eval_strategy` is `no`",
                "Remove `eval_strategy: no` to evaluate.")
    has_eval = cfg.val_set_size > 0 or bool(cfg.test_datasets)
    for key in ("eval_steps", "evals_per_epoch", "early_stopping_patience"):
        if key in user_set and not has_eval and getattr(cfg, key) != 0:
            ignored(key, "there is no evaluation data (`val_set_size` is 0 and no `test_datasets`)",
                    "Set `val_set_size: 0.05` or add `test_datasets` to evaluate.")
    if "embeddings_skip_upcast" in user_set and not (cfg.load_in_4bit or cfg.load_in_8bit):
        ignored("embeddings_skip_upcast", "only a 4/8-bit base has its unquantized weights upcast to float32",
                "Remove it, or load the base with `load_in_4bit: true`.")
    if "gradient_checkpointing_keep_layers" in user_set and not cfg.gradient_checkpointing:
        ignored("gradient_checkpointing_keep_layers", "`gradient_checkpointing` is off, so every layer keeps its "
                "activations", "Set `gradient_checkpointing: true`, or remove the key.")
    if "sample_packing_eff_est" in user_set:
        found.append(Finding("sample_packing_eff_est", "is not needed: axo packs before training starts and knows "
                             "the exact number of rows and steps.", None, Severity.NOTE, Kind.DERIVED))
    if cfg.max_steps is not None and "num_epochs" in user_set:
        found.append(Finding("num_epochs", f"is limited by `max_steps: {cfg.max_steps}`; training stops at whichever "
                             "ends first in steps, and the schedule follows max_steps.", None, Severity.NOTE, Kind.DERIVED))
    return found


def _remote_code(cfg: AxoConfig, user_set: set[str]) -> list[Finding]:
    """A warning for each `trust_remote_code: true`, naming what will run: it lets Python files from a model's
    (or a dataset's) repository run on this machine with the user's rights, so it must never pass unnoticed,
    e.g. in a config copied from someone else."""
    found: list[Finding] = []
    if cfg.trust_remote_code:
        sources = [cfg.base_model] + [s for s in (cfg.base_model_config, cfg.tokenizer_config)
                                      if s and s != cfg.base_model]
        named = " and ".join(repr(s) for s in dict.fromkeys(sources))
        pin = ("; pin `revision_of_model: <commit>` so that the code cannot change under you"
               if looks_like_hub_id(cfg.base_model) and not cfg.revision_of_model else "")
        found.append(Finding("trust_remote_code", f"is true: the Python code shipped with {named} will run on this "
                             "machine, with your permissions, when the model and tokenizer load.",
                             f"Keep it only for code you have read or whose author you trust{pin}. Most models "
                             "load without it (transformers has their architecture built in): remove it to check.",
                             Severity.WARNING, Kind.REMOTE_CODE))
    for section in ("datasets", "test_datasets"):
        for index, entry in enumerate(getattr(cfg, section) or []):
            if entry.trust_remote_code:
                found.append(Finding(f"{section}[{index}].trust_remote_code", f"is true: the loading script of "
                                     f"dataset {entry.path!r} will run on this machine, with your permissions.",
                                     "Keep it only for a script you have read or whose author you trust.",
                                     Severity.WARNING, Kind.REMOTE_CODE))
    return found


RULES: tuple[Callable[[AxoConfig, set[str]], list[Finding]], ...] = (_conflicts, _ignored, _remote_code,
                                                                     preference_findings, pretraining_findings,
                                                                     meta_findings, classification_findings,
                                                                     adapter_findings)


def check_rules(cfg: AxoConfig, user_set: set[str]) -> list[Finding]:
    """Every cross-key finding for `cfg`; `user_set` are the top-level keys the user wrote."""
    return [finding for rule in RULES for finding in rule(cfg, user_set)]


# The optimizers train/arguments.py refuses without CUDA (bitsandbytes kernels); tests/config keeps the two equal.
BNB_OPTIMIZERS = frozenset({"adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "ademamix_8bit",
                            "paged_ademamix_8bit", "paged_ademamix_32bit", "rmsprop_bnb", "rmsprop_bnb_8bit",
                            "rmsprop_bnb_32bit", "lion_8bit", "lion_32bit", "paged_lion_8bit", "paged_lion_32bit"})
_CUDA_ATTENTION = ("flash_attention_2", "flash_attention_3", "varlen")


def check_machine(cfg: AxoConfig, hardware: Hardware) -> list[Finding]:
    """A warning for each setting `hardware` cannot run as written, naming the machine and what `axo train`
    does with it there (refuses it, runs something else, ignores it), so `axo validate` and `axo train` agree.

    `cfg` is read before `auto` values are resolved: only what the config asks for explicitly is reported
    (`bf16: auto` picks what the machine can do). Each case mirrors the code that acts on it:
    models/loader.py `quantization_config` and `choose_attention`, train/arguments.py (bitsandbytes
    optimizers, tf32), models/kernels.py (Liger).
    """
    found: list[Finding] = []
    machine = f"this machine has {hardware.describe()}"

    def warn(key: str, needs: str, outcome: str, hint: str) -> None:
        found.append(Finding(key, f"{needs}; {machine} — `axo train` {outcome}.", hint, Severity.WARNING,
                             Kind.HARDWARE))

    if not hardware.tf32_supported and cfg.tf32 is True:
        warn("tf32", "TF32 matmuls need an Ampere or newer CUDA GPU", "will ignore it here", "Use `tf32: auto`.")
    if hardware.has_cuda:
        return found
    for bits in (4, 8):
        if getattr(cfg, f"load_in_{bits}bit"):
            warn(f"load_in_{bits}bit", f"{bits}-bit loading (bitsandbytes) needs a CUDA GPU", "will refuse it here",
                 f"Run on a GPU, or set `load_in_{bits}bit: false` (with `adapter: lora`) to train LoRA on the "
                 "unquantized base here.")
    if cfg.optimizer in BNB_OPTIMIZERS:
        warn("optimizer", f"`{cfg.optimizer}` is a bitsandbytes optimizer, which needs a CUDA GPU",
             "will refuse it here", "Use `optimizer: adamw_torch` to train here.")
    if cfg.bf16 is True:
        warn("bf16", "bfloat16 training is meant for a GPU", "will train in bfloat16 on the CPU here, many times "
             "slower than float32 on CPUs without bfloat16 instructions",
             "Use `bf16: auto` (float32 here, bfloat16 on a GPU that supports it).")
    if cfg.fp16:
        warn("fp16", "float16 training is meant for a GPU", "will train in float16 on the CPU here, many times "
             "slower than float32", "Remove `fp16: true` to train in float32 here.")
    if cfg.attn_implementation in _CUDA_ATTENTION:
        warn("attn_implementation", f"`{cfg.attn_implementation}` attention needs a CUDA GPU",
             "will run attention as SDPA here", "Nothing to change for a GPU run; `attn_implementation: sdpa` says "
             "what runs here.")
    if cfg.cut_cross_entropy:
        warn("cut_cross_entropy", "Cut Cross Entropy is a Triton kernel for CUDA GPUs", "will refuse it here",
             "Remove `cut_cross_entropy` (or pass --cut_cross_entropy false) to train here with the plain loss.")
    liger = [key for key in type(cfg).model_fields if key.startswith("liger_") and getattr(cfg, key) is True]
    if liger:
        warn(liger[0], "the Liger kernels are Triton kernels for CUDA GPUs", "cannot apply them here",
             "Remove the liger_* keys to train here.")
    return found
