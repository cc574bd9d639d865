"""The training recipe: config -> data -> model and adapter -> trainer -> fit -> save.

Each step is one call into its own package; this file reads as the run does.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axo.config.hardware import Hardware, detect_hardware
from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig
from axo.models.adapters import adapter_callbacks, adapter_kind
from axo.models.attention import check_attention
from axo.models.loader import load_model, load_model_config, quantization_config
from axo.models.setup import model_for_training
from axo.models.tokenizer import load_tokenizer
from axo.plan import configured_keep, offloads
from axo.train import checkpoints
from axo.train.arguments import total_steps, training_arguments
from axo.train.callbacks import ProgressBar, RunRecorder, early_stopping
from axo.train.distributed import (
    Processes,
    decoder_layer_class,
    deepspeed_replacements,
    engine_arguments,
    fused_lora_blocked,
    zero_stage,
)
from axo.train.guards import FaultInjector, LossWatchdog, StopOnSignal
from axo.train.modes import TrainerParts, mode_for
from axo.train.optimizers import custom_optimizer
from axo.train.outputs import (
    mark_run,
    now_iso,
    write_config,
    write_model_card,
    write_provenance,
)
from axo.train.recompute import KeepTopLayers, memory_plan, offload_layer_inputs, plan_record
from axo.train.trackers import tracker_env
from axo.train.upstream_warnings import silence_upstream_deprecations


def _local_path(value: str, config_dir: Path | None) -> str | None:
    """The absolute path of a local base model, so a run directory finds it again from anywhere."""
    from axo.config.paths import resolve_local_path

    found = resolve_local_path(value, config_dir)
    return str(found.resolve()) if found is not None else None


class TrainingInterrupted(ConfigError):
    """SIGINT/SIGTERM stopped the run after saving a checkpoint."""

    def __init__(self, signum: int, checkpoint: Path | None, step: int):
        self.signum, self.checkpoint, self.step = signum, checkpoint, step
        saved = f"checkpoint saved at {checkpoint}" if checkpoint else "no checkpoint could be saved"
        super().__init__([Problem(Severity.ERROR, Kind.CONFLICT, "", f"stopped by {signal.Signals(signum).name} "
                                  f"at step {step}; {saved}.", "Resume with `axo train CONFIG --resume`.")])


def _silent(*_: Any) -> None:
    """`print` for the processes other than rank 0."""


def _engine_name(engine: dict[str, Any], world_size: int) -> str:
    """The engine that trains, as the log, provenance and model card name it: "DeepSpeed ZeRO-N" or
    "FSDP1"/"FSDP2" when the config asks for one (DeepSpeed runs even in one process; transformers refuses
    FSDP there), else "DDP" for several processes and "single process" for one (CPU or one GPU)."""
    if "deepspeed" in engine:
        return f"DeepSpeed ZeRO-{zero_stage(engine['deepspeed'])}"
    if "fsdp" in engine:
        return f"FSDP{engine['fsdp_config']['version']}"
    return "DDP" if world_size > 1 else "single process"


def preflight(cfg: AxoConfig, hardware: Hardware, config_dir: Path | None = None) -> None:
    """Checks that need no data and no model, run first so a doomed run fails in a second, not after
    tokenizing: 4/8-bit and 8-bit optimizers need CUDA + bitsandbytes, trackers need their packages, a
    DeepSpeed config must exist and DeepSpeed be installed, and each Hub id the run loads (model, tokenizer,
    adapter) must be in the local Hugging Face cache or the Hub must answer (models/hub.py; one short probe,
    instead of ~50 s of retries offline). Hub datasets are checked when read: a prepared-data cache can make
    them unnecessary."""
    import torch

    from axo.models import hub

    quantization_config(cfg, hardware, torch.float32)
    engine_arguments(cfg, config_dir, None)
    training_arguments(cfg, 1, False, hardware)  # also checks the optimizer's package and device
    check_attention(cfg.attn_implementation)
    hub.require(hub.training_refs(cfg))
    if cfg.adapter and cfg.lora_model_dir:
        from axo.models.adapter import check_adapter_folder

        check_adapter_folder(cfg.lora_model_dir)


def _peak_gib() -> float | None:
    """This process's peak of allocated GPU memory so far (None without a GPU)."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def _out_of_memory(cfg: AxoConfig, exc: BaseException, memory: Any = None) -> ConfigError:
    """The OOM as a user-facing error, with what would fit: the planner's options predicted within its budget
    when it planned the run (`memory`, a RunPlan), else the usual levers; a lever already at its end (micro-batch 1)
    is not suggested."""
    import torch

    from axo.config.memory_cap import memory_cap_gib

    total = torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else 0
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0
    cap = memory_cap_gib(cfg)
    limit = f"under the {cap:g} GiB cap (gpu_memory_limit / max_memory)" if cap else f"of {total:.1f} GiB"
    levers = [f"sequence_len {cfg.sequence_len} -> smaller"]
    if cfg.micro_batch_size > 1:
        levers.insert(0, f"micro_batch_size {cfg.micro_batch_size} -> {cfg.micro_batch_size // 2} (raise "
                      "gradient_accumulation_steps to keep the batch)")
    if memory is None:
        tips = levers + ["gradient_checkpointing: true"] * (not cfg.gradient_checkpointing) \
            + ["QLoRA (adapter: qlora, load_in_4bit: true)"] * (cfg.adapter != "qlora")
    else:
        fitting = [o for o in memory.options
                   if o.memory.peak <= memory.budget and o.memory.peak < memory.chosen.memory.peak][:3]
        planned = [f"{o.label} (predicted {o.memory.gib():.1f} GiB)" for o in fitting] or [
            f"no choice the planner knows is predicted within {memory.budget / 2**30:.1f} GiB at this size"]
        tips = [*planned, *levers, "`axo plan CONFIG` lists every option"]
    return ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "micro_batch_size",
                                f"the GPU ran out of memory ({peak:.1f} GiB allocated at peak, {limit}; "
                                f"micro_batch_size {cfg.micro_batch_size} × sequence_len {cfg.sequence_len}).",
                                "Try: " + "; ".join(tips) + f". ({str(exc).splitlines()[0][:120]})")])


@dataclass
class TrainResult:
    output_dir: Path
    steps: int
    train_loss: float | None
    eval_loss: float | None
    metrics: list[dict[str, Any]]
    model: Any = None  # the trained model in memory (a peft model for adapters)


def train(cfg: AxoConfig, *, config_dir: Path | None = None, hardware: Hardware | None = None,
          progress: bool = True, tokenizer: Any = None, base_model: Any = None, resume: bool = False) -> TrainResult:
    """Fine-tune as `cfg` says and write the run into `cfg.output_dir`.

    `tokenizer` and `base_model` may be passed when the caller already loaded them with
    `load_tokenizer(cfg)` / `load_model(cfg, tokenizer)` (e.g. to evaluate the base model first).
    `resume` continues from the newest complete checkpoint in output_dir (as auto_resume_from_checkpoints).

    Raises:
        TrainingInterrupted: after SIGINT/SIGTERM, once a checkpoint is saved.
        TrainingDiverged: when the loss is NaN/inf or stays above the watchdog threshold.
        ConfigError: for input mistakes, out-of-memory (with suggestions) and checkpoints that cannot be written.
    """
    from transformers import set_seed
    from transformers.trainer_callback import PrinterCallback

    silence_upstream_deprecations()  # peft's calls of names transformers deprecated (train/upstream_warnings.py)
    started = now_iso()
    processes = Processes.from_env()
    say = print if processes.is_main else _silent  # run messages and files come from one process
    hardware = hardware or detect_hardware()
    set_seed(cfg.seed)
    output_dir = Path(cfg.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "output_dir", f"{output_dir} is a file.",
                                   "Point output_dir at a folder.")])
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / f".axo-write-test-{processes.rank}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "output_dir", f"{output_dir} is not writable: "
                                   f"{exc.strerror}.", "Choose a folder you can write to.")]) from None
    preflight(cfg, hardware, config_dir)
    if processes.is_main:
        for leftover in checkpoints.clean_partial(output_dir):
            say(f"removed a half-written checkpoint left by an interrupted run: {leftover}")
        write_config(cfg, output_dir)
        mark_run(output_dir, "training", started=started)  # until the final save: not a trained result
    resume_from = checkpoints.resume_point(output_dir, cfg.resume_from_checkpoint,
                                           resume or cfg.auto_resume_from_checkpoints,
                                           model_only=cfg.save_only_model, say=say)
    if resume_from is not None:
        if cfg.adapter:
            adapter_kind(cfg.adapter).check_resume(resume_from)
        say(f"resuming from {resume_from}")

    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg)
    mode = mode_for(cfg)
    prepared = mode.prepare(tokenizer, config_dir)
    data = mode.trainer_data(prepared, tokenizer)
    for note in data.notes:
        say(note)

    # Built before the model: with DeepSpeed ZeRO-3 the arguments tell from_pretrained to load it sharded.
    wrap_unit = decoder_layer_class(load_model_config(cfg)) if cfg.fsdp_version or cfg.fsdp_config else None
    engine = engine_arguments(cfg, config_dir, wrap_unit)
    arguments = training_arguments(cfg, len(data.train), data.eval is not None, hardware, data.packing,
                                   world_size=processes.world_size, engine=engine,
                                   arguments_class=mode.arguments_class(), method=mode.method_arguments())
    for replaced in deepspeed_replacements(cfg, engine.get("deepspeed")):
        say(replaced)
    if processes.world_size > 1:
        say(f"{processes.world_size} processes, {_engine_name(engine, processes.world_size)}; global batch "
            f"{cfg.micro_batch_size * (cfg.gradient_accumulation_steps or 1) * processes.world_size} rows")
    steps = total_steps(cfg, len(data.train), processes.world_size, data.packing)
    memory = memory_plan(cfg, hardware, data, steps, plans_memory=mode.plans_memory,
                         world_size=processes.world_size, say=say)
    model, resized = model_for_training(cfg, tokenizer, hardware, say=say, base_model=base_model,
                                        fused_lora_blocked=fused_lora_blocked(cfg, engine) or mode.blocks_fused_lora(),
                                        loss_kernels=mode.loss_kernels, total_steps=steps)
    reference = None
    if mode.needs_reference_copy():  # a full fine-tune of a method that compares with the starting model
        reference = load_model(cfg, tokenizer, hardware)[0]
        say("reference model: a frozen copy of the base (a full fine-tune compares against it; "
            "precompute_ref_log_probs: true would free it)")

    recorder = RunRecorder(output_dir)
    stopper = StopOnSignal()
    watchdog = LossWatchdog(cfg.loss_watchdog_threshold, cfg.loss_watchdog_patience)
    callbacks = [recorder, stopper, watchdog, *early_stopping(cfg, arguments),
                 *adapter_callbacks(cfg, model)]
    offload = offloads(cfg)
    if cfg.gradient_checkpointing:
        keep = configured_keep(cfg)
        if memory is not None:
            keep, offload = memory.chosen.recompute.kept, memory.chosen.recompute.offload
        callbacks.append(KeepTopLayers(keep))
        if offload and mode.plans_memory:  # (meta-learning differentiates through recompute: no reentrant)
            offload_layer_inputs(arguments, model, say)
    if progress and processes.is_main:
        callbacks.append(ProgressBar(recorder))
    if os.environ.get("AXO_FAULT"):
        callbacks.append(FaultInjector(os.environ["AXO_FAULT"]))
    with tracker_env(cfg):  # the trackers' callbacks read their settings from the environment
        trainer = mode.build_trainer(TrainerParts(
            model=model, tokenizer=tokenizer, arguments=arguments, data=data, callbacks=callbacks,
            optimizers=(custom_optimizer(cfg, model), None), offload_activations=offload,
            reference=reference))
        recorder.trainer = watchdog.trainer = trainer
        trainer.remove_callback(PrinterCallback)  # raw log dicts; metrics.jsonl and the progress bar replace them
        stopper.install()
        try:
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        except Exception as exc:
            if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
                raise _out_of_memory(cfg, exc, memory) from None
            raise
        finally:
            stopper.restore()
        if stopper.received is not None:
            raise TrainingInterrupted(stopper.received, trainer.last_checkpoint, trainer.state.global_step)
        # `evals_per_epoch: 0` (with no other eval setting) turns evaluation off, the final one included
        evaluates = data.eval is not None and not (cfg.evals_per_epoch == 0 and arguments.eval_strategy == "no")
        eval_loss = trainer.evaluate()["eval_loss"] if evaluates else None

    # Training needs the KV cache off (packed rows); what is saved is for generation, where it is on.
    model.config.use_cache = True
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.use_cache = True
    trainer.save_model(str(output_dir))  # every process: ZeRO-3 / FSDP gather the full weights for rank 0
    trained_tokens = trainer.trained_tokens  # every process (a collective with several)
    losses = [r["loss"] for r in recorder.records if "loss" in r]
    result = TrainResult(output_dir, trainer.state.global_step, losses[-1] if losses else None, eval_loss,
                         recorder.records, trainer.model)
    if not processes.is_main:
        return result
    tokenizer.save_pretrained(str(output_dir))
    # The Trainer's closing log (it alone has train_loss): whole-training averages, without the final
    # evaluation below (train/callbacks.py)
    closing = next((r for r in recorder.records if "train_loss" in r), {})
    summary = {**mode.describe(), "steps": trainer.state.global_step, "train_loss": result.train_loss, "eval_loss": eval_loss,
               "trained_tokens": trained_tokens, "tokens_seen": int(trainer.state.num_input_tokens_seen),
               "processes": processes.world_size, "engine": _engine_name(engine, processes.world_size),
               "base_model_path": _local_path(cfg.base_model, config_dir), "embeddings_resized": resized}
    write_provenance(output_dir, {
        **summary, "started": started, "finished": now_iso(), "config_fingerprint": prepared.fingerprint,
        "datasets": prepared.meta.get("datasets"), "train_rows": prepared.train_rows,
        "cwd": str(Path.cwd()), "eval_rows": prepared.eval_rows, "memory_plan": plan_record(memory, _peak_gib()),
        "trained_tokens_per_s": closing.get("trained_tokens_per_s"), "train_seconds": closing.get("elapsed_s"),
        "packing": None if data.packing is None else {"efficiency": data.packing.efficiency,
                                                      "capacity": data.packing.capacity,
                                                      "rows_per_epoch": data.packing.rows_per_epoch},
    })
    write_model_card(cfg, output_dir, summary)
    mark_run(output_dir, "finished", started=started, finished=now_iso(), steps=result.steps)  # last: the run is usable
    return result
