"""Reading one dataset row for a preference strategy, and the checks every produced row passes.

`Row` gives a strategy the row's fields with errors that name the file, the line and the field; `RowFormat`
is a `PreferenceFormat` whose subclasses turn one row into one preference row (`pair` or `kto`), and whose
`transform` checks what they produce: text on every side, chosen and rejected not identical, a boolean label.
"""

from __future__ import annotations

from typing import Any

from axo.data.errors import DataError, data_error, describe
from axo.data.preference.base import KTO_METHODS, PreferenceFormat
from axo.data.sources import Rows


class Row:
    """One input row with where it came from; its accessors raise DataError naming file, line and field."""

    def __init__(self, data: dict[str, Any], origin: str, line: int, type_name: str):
        self.data, self.origin, self.line, self.type_name = data, origin, line, type_name

    def error(self, message: str, key: str, hint: str | None = None) -> DataError:
        return data_error(f"row {self.line}: {message}", origin=self.origin, line=self.line, key=key, hint=hint)

    def has(self, key: str) -> bool:
        """True when the row holds `key` with a value (Axolotl's `key in sample and sample[key]`)."""
        return bool(self.data.get(key))

    def value(self, key: str) -> Any:
        if key not in self.data:
            fields = ", ".join(sorted(self.data)) or "none"
            raise self.error(f"no `{key}` field, which `type: {self.type_name}` reads (the row has: {fields}).", key,
                             "Give every row this field, or pick the `type:` that matches the data's shape.")
        return self.data[key]

    def text(self, key: str) -> str:
        """The string in field `key`."""
        value = self.value(key)
        if not isinstance(value, str):
            raise self.error(f"`{key}` is {describe(value)}, not text.", key,
                             f"`type: {self.type_name}` reads `{key}` as a string.")
        return value

    def messages(self, key: str, at_least: int = 1) -> list[dict[str, Any]]:
        """The list of message objects in field `key` (at least `at_least` of them)."""
        value = self.value(key)
        if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
            raise self.error(f"`{key}` is {describe(value)}, not a list of messages.", key,
                             'Write it as [{"role": "user", "content": "..."}, ...].')
        if len(value) < at_least:
            raise self.error(f"`{key}` holds {len(value)} messages; `type: {self.type_name}` needs at least "
                             f"{at_least}.", key)
        return value

    def content(self, message: dict[str, Any], key: str, field: str = "content") -> str:
        """The text `field` of one message taken from field `key`."""
        value = message.get(field)
        if not isinstance(value, str):
            raise self.error(f"a message in `{key}` has {describe(value)} as its `{field}`, not text.", key)
        return value


class RowFormat(PreferenceFormat):
    """A strategy that maps each row on its own: subclasses implement `pair` (for pair methods) and/or `kto`."""

    def pair(self, row: Row) -> dict[str, str]:
        raise NotImplementedError

    def kto(self, row: Row) -> dict[str, Any]:
        raise NotImplementedError

    def transform(self, rows: Rows) -> list[dict[str, Any]]:
        name = self.name
        produced = []
        for index, data in enumerate(rows.rows):
            origin, line = rows.where(index)
            row = Row(data, origin, line, name)
            out = self.kto(row) if self.method in KTO_METHODS else self.pair(row)
            check(out, row, self.method)
            produced.append(out)
        return produced


def check(out: dict[str, Any], row: Row, method: str) -> None:
    """Refuse a produced row that cannot teach anything: a side that is not text or is empty, chosen identical
    to rejected, a KTO label that is not true/false."""
    sides = ("prompt", "completion") if method in KTO_METHODS else ("prompt", "chosen", "rejected")
    for side in sides:
        value = out.get(side)
        if not isinstance(value, str):
            raise row.error(f"its {side} is {describe(value)}, not text.", side,
                            f"Give every row a text {side}.")
        if not value:
            raise row.error(f"its {side} is empty.", side, f"Give every row a non-empty {side}.")
    if method in KTO_METHODS:
        if not isinstance(out.get("label"), bool):
            raise row.error(f"its label is {describe(out.get('label'))}, not true or false.", "label",
                            "KTO labels say whether the completion is desirable: write true or false.")
    elif out["chosen"] == out["rejected"]:
        raise row.error("chosen and rejected are identical, so the pair teaches nothing.", "rejected",
                        "Remove the row, or fix the rejected answer.")
