"""`passthrough.default` (and no `type:`): rows that already hold the method's columns as text."""

from __future__ import annotations

from typing import Any

from axo.data.preference.base import KTO_METHODS, register_preference_format
from axo.data.preference.fixed import DPO_METHODS
from axo.data.preference.rows import Row, RowFormat


@register_preference_format
class Passthrough(RowFormat):
    name = "passthrough.default"
    methods = DPO_METHODS | KTO_METHODS | {"orpo"}

    def pair(self, row: Row) -> dict[str, str]:
        return {key: row.text(key) for key in ("prompt", "chosen", "rejected")}

    def kto(self, row: Row) -> dict[str, Any]:
        return {"prompt": row.text("prompt"), "completion": row.text("completion"), "label": row.value("label")}
