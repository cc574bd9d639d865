"""AdaLoRA: LoRA whose ranks are pruned towards a budget as training runs. PEFT's `update_and_allocate` must see
every optimizer step, so the kind brings a TrainerCallback that calls it; the same callback keeps the rank
allocator's state in each checkpoint, so a resumed run continues exactly."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.models.adapters.base import AdapterKind, register_adapter

STATE_FILE = "adalora_state.safetensors"
_SCORES = ("ipt", "exp_avg_ipt", "exp_avg_unc")  # the RankAllocator's per-parameter dicts (peft 0.21)


@register_adapter
class AdaLora(AdapterKind):
    name = "adalora"
    peft_config = "AdaLoraConfig"
    keys: ClassVar[dict[str, str]] = {
        "adalora_init_r": "init_r", "adalora_target_r": "target_r", "adalora_tinit": "tinit",
        "adalora_tfinal": "tfinal", "adalora_deltaT": "deltaT", "adalora_beta1": "beta1", "adalora_beta2": "beta2",
        "adalora_orth_reg_weight": "orth_reg_weight", "lora_dropout": "lora_dropout",
    }
    targets_key = "adalora_target_modules"
    on_4bit_base = True

    def extra_options(self, cfg: Any, model: Any, total_steps: int | None, options: dict[str, Any]) -> dict[str, Any]:
        # PEFT needs the run's length to schedule the budget; the warm-up and final phases must fit inside it
        steps = max(total_steps or 1, 3)
        extra = {"total_step": steps, "lora_alpha": cfg.lora_alpha or cfg.lora_r}
        tinit, tfinal = options.get("tinit"), options.get("tfinal")
        if tinit is None and tfinal is None:
            extra |= {"tinit": steps // 5, "tfinal": steps // 5}
        return extra

    def check_resume(self, checkpoint: Path) -> None:
        from axo.storage import safetensors_problem

        state = Path(checkpoint) / STATE_FILE
        if not state.is_file():
            problem = (f"{checkpoint} has no {STATE_FILE}: it was written without AdaLoRA's rank allocator state "
                       "(by an axo before 2026-12-04), so the run cannot continue exactly from it.")
        elif damaged := safetensors_problem(state):
            problem = f"{state} cannot be read ({damaged}), so the run cannot continue exactly from {checkpoint}."
        else:
            return
        raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "adapter", problem,
                                   "Resume from an earlier checkpoint (resume_from_checkpoint: <folder>), or start "
                                   "the run again (another output_dir, or without --resume).")])

    def callbacks(self, model: Any) -> list[Any]:
        from transformers import TrainerCallback

        from axo.train.checkpoints import CheckpointState

        class RankBudget(TrainerCallback, CheckpointState):
            """After each optimizer step, before the gradients are cleared: PEFT's rank re-allocation. Each
            checkpoint holds the adapter at full rank (pruned ranks as zeros in `lora_E`, their `lora_A`/`lora_B`
            rows as trained: a rank can be re-allocated later) plus the allocator's sensitivity averages and rank
            pattern; the run's final adapter is saved pruned, as peft saves AdaLoRA."""

            restored = False

            def on_train_begin(self, args, state, control, **kwargs):
                if state.global_step > 0 and not self.restored:  # resumed by a path that skipped `restore`
                    raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "adapter", "this AdaLoRA run resumed "
                                               f"at step {state.global_step} without its rank allocator's state "
                                               "(the engine loaded the checkpoint itself: DeepSpeed or FSDP), so it "
                                               "would not prune as the uninterrupted run.", "Resume AdaLoRA runs on "
                                               "one GPU without a sharding engine, or start the run again.")])

            def on_optimizer_step(self, args, state, control, **kwargs):
                model.base_model.update_and_allocate(state.global_step)

            @contextmanager
            def saving(self, folder: Path | None):
                config = model.peft_config[model.base_model.trainable_adapter_name]
                pattern, config.rank_pattern = config.rank_pattern, None  # peft saves full ranks without one
                try:
                    yield
                finally:
                    config.rank_pattern = pattern
                if folder is not None:
                    save_allocator(model, pattern, folder / STATE_FILE)

            def restore(self, folder: Path) -> None:
                load_allocator(model, folder / STATE_FILE)
                self.restored = True

        # peft 0.21 warns at save that zero-sized lora_A/lora_B tensors mean unsharded DeepSpeed/FSDP weights; for
        # AdaLoRA they are layers whose every rank was pruned, saved as peft means them to be.
        warnings.filterwarnings("ignore", message=r"Adapter '.*': \d+ LoRA tensor\(s\) have invalid shape")
        return [RankBudget()]


def save_allocator(model: Any, rank_pattern: dict | None, path: Path) -> None:
    """Write the rank allocator's sensitivity scores (tensors) and `rank_pattern` (JSON metadata) to `path`."""
    from safetensors.torch import save_file

    allocator = model.base_model.rankallocator
    tensors = {f"{kind}/{name}": tensor.detach().cpu().contiguous()
               for kind in _SCORES for name, tensor in getattr(allocator, kind).items()}
    save_file(tensors, str(path), metadata={"rank_pattern": json.dumps(rank_pattern)})


def load_allocator(model: Any, path: Path) -> None:
    """Put what `save_allocator` wrote back into `model`'s rank allocator and adapter config."""
    from safetensors import safe_open

    allocator = model.base_model.rankallocator
    device = next(p.device for p in model.parameters() if p.requires_grad)
    with safe_open(str(path), framework="pt", device=str(device)) as stored:
        scores: dict[str, dict] = {kind: {} for kind in _SCORES}
        for key in stored.keys():  # noqa: SIM118 - safe_open is not a dict
            kind, name = key.split("/", 1)
            scores[kind][name] = stored.get_tensor(key)
        pattern = json.loads(stored.metadata()["rank_pattern"])
    for kind, values in scores.items():
        setattr(allocator, kind, values)
    model.peft_config[model.base_model.trainable_adapter_name].rank_pattern = pattern
