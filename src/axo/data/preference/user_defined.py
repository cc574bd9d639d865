"""`user_defined.default`: a `type:` mapping that names the columns and how to write each side.

Pairs (DPO/IPO/SimPO): `field_prompt` (default `prompt`), `field_system` (`system`), `field_chosen` (`chosen`),
`field_rejected` (`rejected`), `prompt_format` (`{prompt}`, may use `{system}`), `chosen_format` (`{chosen}`),
`rejected_format` (`{rejected}`). KTO: `field_prompt`, `field_system`, `field_completion` (`completion`),
`field_label` (`label`), `prompt_format`, `completion_format` (`{completion}`). Names as in Axolotl 0.21.
"""

from __future__ import annotations

from typing import Any

from axo.data.preference.base import KTO_METHODS, register_preference_format
from axo.data.preference.fixed import DPO_METHODS
from axo.data.preference.rows import Row, RowFormat


@register_preference_format
class UserDefined(RowFormat):
    name = "user_defined.default"
    methods = DPO_METHODS | KTO_METHODS

    def _setting(self, key: str, default: str) -> str:
        mapping = self.entry.type
        value = getattr(mapping, key, None) if mapping is not None and not isinstance(mapping, str) else None
        return value or default

    def _format(self, row: Row, key: str, **values: str) -> str:
        template = self._setting(key, "{" + next(iter(values)) + "}")
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError) as exc:
            raise row.error(f"`{key}: {template}` cannot be filled ({type(exc).__name__}: {exc}).", key,
                            f"Use only the placeholders {', '.join('{' + v + '}' for v in values)}.") from None

    def _prompt(self, row: Row) -> str:
        prompt = row.text(self._setting("field_prompt", "prompt"))
        template = self._setting("prompt_format", "{prompt}")
        field_system = self._setting("field_system", "system")
        if "{system}" not in template:
            return self._format(row, "prompt_format", prompt=prompt)
        system = row.text(field_system) if row.has(field_system) else ""
        if self.method in KTO_METHODS and not system:  # KTO formats without the system when the row has none
            return self._format(row, "prompt_format", prompt=prompt)
        return self._format(row, "prompt_format", prompt=prompt, system=system)

    def pair(self, row: Row) -> dict[str, str]:
        chosen = row.text(self._setting("field_chosen", "chosen"))
        rejected = row.text(self._setting("field_rejected", "rejected"))
        return {"prompt": self._prompt(row), "chosen": self._format(row, "chosen_format", chosen=chosen),
                "rejected": self._format(row, "rejected_format", rejected=rejected)}

    def kto(self, row: Row) -> dict[str, Any]:
        completion = row.text(self._setting("field_completion", "completion"))
        return {"prompt": self._prompt(row), "completion": self._format(row, "completion_format", completion=completion),
                "label": row.value(self._setting("field_label", "label"))}
