"""What every prompt format provides, and the registry that maps `type:` names to formats."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from axo.config.schema import AxoConfig, DatasetConfig
from axo.data.errors import data_error, describe
from axo.data.sources import Rows
from axo.registry import Registry

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100  # label of tokens that carry no loss (PyTorch's cross-entropy ignore_index)


@dataclass
class Sample:
    """One tokenized training sample; `row` is the index of the source row it came from."""

    input_ids: list[int]
    labels: list[int]
    row: int
    label: int | None = None  # the class, for sequence classification


class PromptFormat(ABC):
    """Turns rows of one dataset into token ids and labels.

    Subclasses set `name` (the `type:` they answer to), read `self.entry` for their options and
    implement :meth:`tokenize` for a whole dataset at once, so that tokenizers can batch.
    """

    name: ClassVar[str]

    def __init__(self, tokenizer: PreTrainedTokenizerBase, cfg: AxoConfig, entry: DatasetConfig, style: str | None):
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.entry = entry
        self.style = style

    @abstractmethod
    def tokenize(self, rows: Rows) -> list[Sample]:
        """Samples for `rows` (a row may give none or several). Raises DataError for malformed rows."""

    def field(self, rows: Rows, index: int, name: str, *, required: bool = True, default: Any = None) -> Any:
        """Row `index`'s value of `name`; a missing (or null) required field is an error naming file, row and
        field, and saying which of the two it is."""
        row = rows.rows[index]
        value = row.get(name, default)
        if value is None and required:
            origin, line = rows.where(index)
            if name in row:
                raise data_error(f"row {line}: {name!r} is null; the {self.name} format needs a value there.",
                                 origin=origin, line=line, key=name,
                                 hint='Write the value (an empty string "" if there is none), or remove the row.')
            present = ", ".join(sorted(map(str, row))) or "none"
            raise data_error(f"row {line} has no {name!r} field, which the {self.name} format needs "
                             f"(fields present: {present}).", origin=origin, line=line, key=name,
                             hint=self._missing_hint(name, origin))
        return value

    def text(self, rows: Rows, index: int, name: str, *, required: bool = True) -> str:
        """Row `index`'s field `name` as text. A list, object, number or boolean is an error naming the type
        found: `str()` would train its Python spelling (`['a', 'b']`, `1.0`, `True`), never what was meant.
        An optional field that is absent or null reads as ""."""
        value = self.field(rows, index, name, required=required)
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        origin, line = rows.where(index)
        if isinstance(value, (list, dict)):
            hint = ("Write it as one string (join the pieces yourself if that is what you mean)"
                    + ("; for conversations use `type: chat_template`." if isinstance(value, list) else "."))
        else:
            hint = f'Quote it, e.g. "{json.dumps(value)}": text fields hold strings.'
        raise data_error(f"row {line}: {name!r} is {describe(value)}, not a string; the {self.name} format "
                         "reads it as text.", origin=origin, line=line, key=name, hint=hint)

    def _missing_hint(self, name: str, origin: str) -> str:
        hint = self.field_hint(name)
        if origin.lower().endswith(".csv") or self.entry.ds_type == "csv":
            # csv.DictReader takes the first line as the header: without one, the first row's values are the names.
            hint += " A CSV file's first line must be the header naming its columns."
        return hint

    def field_hint(self, name: str) -> str:
        return f"Add {name!r} to every row, or point the format at your column name."

    def masking(self) -> tuple[str, str]:
        """(the settings that decide which tokens carry loss, how to get some trained) for the error raised
        when a dataset has no trained token; called after `tokenize`, so it may report what the rows held."""
        return (f"train_on_inputs: {str(self.cfg.train_on_inputs).lower()}",
                "Check that the rows hold the text to learn and that the format's masking keeps some of it.")


_FORMATS: Registry[type[PromptFormat]] = Registry("prompt format")


def register_format(cls: type[PromptFormat]) -> type[PromptFormat]:
    """Class decorator: make `cls` answer to `type: <cls.name>`. Names must be unique."""
    return _FORMATS.register(cls)


def registered_formats() -> dict[str, type[PromptFormat]]:
    return _FORMATS.all()


def format_for(tokenizer: PreTrainedTokenizerBase, cfg: AxoConfig, entry: DatasetConfig) -> PromptFormat:
    """The format object for a dataset entry (`type: alpaca:chat` -> the alpaca format, style `chat`)."""
    type_ = entry.type
    if type_ is None:
        name, style = "pretokenized", None
    elif isinstance(type_, str):
        name, _, style = type_.partition(":")
        name = name.split(".", 1)[0]  # Axolotl's `chat_template.default` spelling
        style = style or None
    else:
        name, style = "alpaca", None  # a `type:` mapping is an alpaca-like format over the user's fields
    cls = _FORMATS.get(name)
    if cls is None:
        raise data_error(f"unknown dataset type {name!r}; known types: {', '.join(sorted(_FORMATS.all()))}.",
                         origin=entry.path, key="type")
    return cls(tokenizer, cfg, entry, style)
