"""Write a config as commented YAML: each key preceded by its description from the schema."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from axo.config.keys import section_of, user_keys
from axo.config.schema import AxoConfig
from axo.config.schema.adapter import AdapterSection
from axo.config.schema.adapter_kinds import AdapterKindsSection
from axo.config.schema.data import DataSection
from axo.config.schema.integrations import DistributedSection, LoggingSection
from axo.config.schema.kernels import KernelSection
from axo.config.schema.model import ModelSection
from axo.config.schema.quantization import QuantizationSection
from axo.config.schema.training import TrainingSection

SECTION_TITLES: tuple[tuple[type[BaseModel], str], ...] = (
    (ModelSection, "Model and tokenizer"),
    (QuantizationSection, "Quantization"),
    (AdapterSection, "Adapter (blank = full fine-tune)"),
    (AdapterKindsSection, "Other adapter kinds"),
    (DataSection, "Data"),
    (TrainingSection, "Training"),
    (LoggingSection, "Logging"),
    (DistributedSection, "Multi-GPU"),
    (KernelSection, "Speed"),
)


def _scalar(value: Any) -> str:
    # safe_dump ends a bare scalar document with "..."; inline values do not want it.
    return yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip().removesuffix("...").strip()


def _description(model: type[BaseModel], key: str) -> tuple[str | None, type[BaseModel] | None]:
    name = user_keys(model).get(key)
    if name is None:
        return None, None
    info = model.model_fields[name]
    return info.description, section_of(info.annotation)


def _render_mapping(model: type[BaseModel], values: dict[str, Any], indent: str, lines: list[str],
                    first_prefix: str | None = None) -> None:
    for position, (key, value) in enumerate(values.items()):
        description, nested = _description(model, key)
        opens_item = first_prefix is not None and position == 0
        prefix = first_prefix if opens_item else indent
        if description:
            # The comment sits where the `- ` of a list item starts, or level with the key.
            lines.append(f"{first_prefix.removesuffix('- ') if opens_item else indent}# {description}")
        if isinstance(value, list) and value and nested is not None and all(isinstance(v, dict) for v in value):
            lines.append(f"{prefix}{key}:")
            for item in value:
                _render_mapping(nested, item, indent + "    ", lines, first_prefix=indent + "  - ")
        elif isinstance(value, dict) and value:
            lines.append(f"{prefix}{key}:")
            if nested is not None:
                _render_mapping(nested, value, indent + "  ", lines)
            else:
                for sub_key, sub_value in value.items():
                    lines.append(f"{indent}  {sub_key}: {_scalar(sub_value)}")
        else:
            lines.append(f"{prefix}{key}: {_scalar(value)}")


def render_commented_config(values: dict[str, Any], header: list[str]) -> str:
    """YAML text for `values`, grouped by section, every key with its description as a comment."""
    lines = [f"# {line}" if line else "#" for line in header]
    for section, title in SECTION_TITLES:
        chunk = {key: value for key, value in values.items() if user_keys(section).get(key)}
        if not chunk:
            continue
        lines += ["", f"# ---- {title} ----"]
        _render_mapping(section, chunk, "", lines)
    leftover = {k: v for k, v in values.items() if not any(user_keys(s).get(k) for s, _ in SECTION_TITLES)}
    if leftover:
        lines.append("")
        _render_mapping(AxoConfig, leftover, "", lines)
    return "\n".join(lines) + "\n"
