"""`type: classification`: a text column (`text`, or `field:`) and a `label` (an integer, or a string
name; string names are numbered in sorted order) for sequence classification with `num_labels`."""

from __future__ import annotations

from axo.data.errors import data_error
from axo.data.formats.base import IGNORE_INDEX, PromptFormat, Sample, register_format
from axo.data.sources import Rows
from axo.data.tokens import encode_batch


@register_format
class ClassificationFormat(PromptFormat):
    name = "classification"

    def tokenize(self, rows: Rows) -> list[Sample]:
        column = self.entry.field or "text"
        texts = [self.text(rows, index, column) for index in range(len(rows.rows))]
        raw = [self.field(rows, index, "label") for index in range(len(rows.rows))]
        names = sorted({value for value in raw if isinstance(value, str)})
        if names and any(not isinstance(value, str) for value in raw):
            raise data_error("mixes integer and string labels.", origin=rows.source, key="label",
                             hint="Use one kind of label for every row.")
        ids = [names.index(value) if isinstance(value, str) else value for value in raw]
        limit = self.cfg.num_labels
        for index, value in enumerate(ids):
            # bool is an int in Python: `label: true` must not quietly become class 1.
            if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (limit is not None and value >= limit):
                origin, line = rows.where(index)
                raise data_error(f"row {line}: label {raw[index]!r} is not a class id in [0, {limit or '?'}).",
                                 origin=origin, line=line, key="label", hint="Set `num_labels` to the number of classes.")
        encoded = encode_batch(self.tokenizer, texts) if texts else []
        return [Sample(list(tokens), [IGNORE_INDEX] * len(tokens), index, label=ids[index])
                for index, tokens in enumerate(encoded)]
