"""The typed axo config: one pydantic model assembled from one section per concern.

`AxoConfig` is the single source of truth for keys, types, defaults and descriptions. Build one through
:func:`axo.config.load_config` or :func:`axo.config.resolve_config`, which also apply Axolotl's
aliases, cross-key rules and derived values; constructing it directly skips those.
"""

from __future__ import annotations

from pydantic import Field

from axo.config.schema.adapter import AdapterSection
from axo.config.schema.adapter_kinds import AdapterKindsSection
from axo.config.schema.data import DataSection
from axo.config.schema.datasets import DatasetConfig, UserDefinedPrompt
from axo.config.schema.integrations import DistributedSection, LoggingSection
from axo.config.schema.kernels import KernelSection
from axo.config.schema.meta import MetaLearning, MetaLearningSection
from axo.config.schema.model import ModelSection, SpecialTokens
from axo.config.schema.preference import PreferenceSection
from axo.config.schema.pretraining import PretrainingSection
from axo.config.schema.quantization import QuantizationSection
from axo.config.schema.training import TrainingSection


# pydantic orders inherited fields from the last base to the first, so the bases are listed in reverse
# of the order a config reads in (model first).
class AxoConfig(
    MetaLearningSection,
    PretrainingSection,
    PreferenceSection,
    KernelSection,
    DistributedSection,
    LoggingSection,
    TrainingSection,
    DataSection,
    AdapterKindsSection,
    AdapterSection,
    QuantizationSection,
    ModelSection,
):
    """A complete, validated axo run configuration (Axolotl-compatible keys)."""

    strict: bool = Field(False, description="Treat unknown and unsupported keys as errors instead of warnings.")


__all__ = ["AxoConfig", "DatasetConfig", "MetaLearning", "SpecialTokens", "UserDefinedPrompt"]
