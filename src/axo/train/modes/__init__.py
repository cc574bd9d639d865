"""Training modes, one module each; importing this package registers all of them (train/modes/base.py says what
a mode provides)."""

from axo.train.modes import classification, meta, preference, pretraining, sft  # noqa: F401  (each module registers its mode)
from axo.train.modes.base import (
    PreparedSplits,
    TrainerData,
    TrainerParts,
    TrainingMode,
    mode_for,
    register_mode,
    registered_modes,
)

__all__ = ["PreparedSplits", "TrainerData", "TrainerParts", "TrainingMode", "mode_for", "register_mode",
           "registered_modes"]
