"""The pydantic base every config section derives from."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _number_types(annotation: Any) -> set[type]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_number_types(arg) for arg in typing.get_args(annotation)))
    return {annotation} if annotation in (int, float, bool) else set()


class Section(BaseModel):
    """A part of the config. Unknown keys are removed (and reported) before validation, so any that
    reach pydantic are a bug in axo's key walk, and ``extra="forbid"`` makes that bug loud."""

    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),  # Axolotl's keys start with model_ (model_type, model_config)
        populate_by_name=True,
        validate_assignment=False,
        use_attribute_docstrings=False,
        allow_inf_nan=False,  # `.inf` is never a sensible setting, and it is not valid JSON
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads `true` as 1 for a number; `learning_rate: true` (or a bare `--learning-rate`
        # flag with its value forgotten) is a mistake, not 1.0.
        if isinstance(value, bool) and info.field_name is not None:
            kinds = _number_types(cls.model_fields[info.field_name].annotation)
            if kinds and bool not in kinds:
                raise ValueError(f"expected a number, got {str(value).lower()} (a flag given without a value?)")
        return value
