"""The pydantic base every config section derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A part of the config. Unknown keys are removed (and reported) before validation, so any that
    reach pydantic are a bug in axo's key walk, and ``extra="forbid"`` makes that bug loud."""

    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),  # Axolotl's keys start with model_ (model_type, model_config)
        populate_by_name=True,
        validate_assignment=False,
        use_attribute_docstrings=False,
    )
