"""What every training mode provides, and the registry that picks one for a config.

`train()` (train/run.py) is the same recipe for every mode — config -> data -> model and adapter -> trainer ->
fit -> save — and asks the mode for the parts that differ: how its data is prepared and cached, which
datasets and collator the trainer reads, which trainer class and arguments run, and what the run's files say
about the method. Model loading, kernels and the adapter are one shared call (models/setup.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from axo.config.schema import AxoConfig
from axo.registry import Registry

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, Trainer, TrainingArguments

    from axo.data.packing import PackingPlan


@dataclass
class PreparedSplits:
    """A mode's prepared data: what the trainer reads, where it is cached, and what preparation did."""

    train_rows: int
    eval_rows: int
    folder: Path
    fingerprint: str
    from_cache: bool
    meta: dict[str, Any]
    payload: Any = None  # the mode's own prepared object (e.g. PreparedData for SFT)


@dataclass
class TrainerData:
    """The datasets the trainer reads; `packing` when SFT packs samples into rows."""

    train: Any
    eval: Any
    packing: PackingPlan | None = None
    notes: list[str] = field(default_factory=list)  # lines for the run log


@dataclass
class TrainerParts:
    """What every mode's trainer is built from (the shared parts of the recipe)."""

    model: Any
    tokenizer: PreTrainedTokenizerBase
    arguments: TrainingArguments
    data: TrainerData
    callbacks: list[Any]
    optimizers: tuple[Any, Any]
    offload_activations: bool
    reference: Any = None  # a frozen copy of the base, for full fine-tunes of methods that need one


class TrainingMode(ABC):
    """One kind of training. Subclasses set `name` and implement the abstract methods; `register_mode` makes
    `mode_for` pick them for the configs `selects` accepts."""

    name: ClassVar[str]

    def __init__(self, cfg: AxoConfig):
        self.cfg = cfg

    @classmethod
    @abstractmethod
    def selects(cls, cfg: AxoConfig) -> bool:
        """Whether this mode trains `cfg` (exactly one registered mode may say yes)."""

    @abstractmethod
    def prepare(self, tokenizer: PreTrainedTokenizerBase, config_dir: Path | None, *,
                force: bool = False) -> PreparedSplits:
        """Read, check and cache the datasets (from the cache when nothing that matters changed, unless `force`).

        Raises:
            DataError: for unreadable or malformed data, naming the file, row and field.
        """

    @abstractmethod
    def trainer_data(self, prepared: PreparedSplits, tokenizer: PreTrainedTokenizerBase) -> TrainerData:
        """The train/eval datasets (and packing plan) the trainer reads."""

    @abstractmethod
    def show(self, console: Any, prepared: PreparedSplits, tokenizer: PreTrainedTokenizerBase, samples: int) -> None:
        """Print what preparation did (`axo preprocess`) and the first `samples` prepared examples."""

    def arguments_class(self) -> type[TrainingArguments]:
        """The TrainingArguments subclass this mode's trainer reads (a TRL config for TRL's trainers)."""
        from transformers import TrainingArguments

        return TrainingArguments

    def method_arguments(self) -> dict[str, Any]:
        """The mode's own trainer arguments (β, loss type, …), added to the shared ones."""
        return {}

    @abstractmethod
    def build_trainer(self, parts: TrainerParts) -> Trainer:
        """The trainer (axo's checkpointing and token counting mixed in: train/trainer.py)."""

    def needs_reference_copy(self) -> bool:
        """Whether the trainer needs a second, frozen copy of the base model (loaded by the recipe)."""
        return False

    def blocks_fused_lora(self) -> str | None:
        """Why this mode cannot take axo's fused LoRA path (its backward is not differentiable twice), or None."""
        return None

    loss_kernels: ClassVar[bool] = True  # False: the mode computes its own loss (no liger CE / CCE patches)
    # True: a step is one causal-LM forward and backward per micro-batch, which axo's memory planner (plan/)
    # models; the run then keeps as many layers' activations as fit (train/recompute.py)
    plans_memory: ClassVar[bool] = False

    def describe(self) -> dict[str, Any]:
        """What the run's provenance and model card say about the method (e.g. {"method": "DPO", "beta": 0.1})."""
        return {"method": self.name}


_MODES: Registry[type[TrainingMode]] = Registry("training mode")


def register_mode(cls: type[TrainingMode]) -> type[TrainingMode]:
    """Class decorator: register a training mode. Names must be unique."""
    return _MODES.register(cls)


def registered_modes() -> dict[str, type[TrainingMode]]:
    return _MODES.all()


def mode_for(cfg: AxoConfig) -> TrainingMode:
    """The one registered mode that trains `cfg`."""
    chosen = [cls for cls in _MODES.all().values() if cls.selects(cfg)]
    if len(chosen) != 1:  # a bug in the modes' `selects`, not a user mistake
        raise RuntimeError(f"{len(chosen)} training modes select this config: {[c.name for c in chosen]}")
    return chosen[0](cfg)


Say = Callable[[str], None]
