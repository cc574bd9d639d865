"""`type: classification`: a text column (`text`, or `field:`), optionally a second text (`field_pair:`) encoded
with it as the tokenizer's text pair, and a label (column `label`, or `field_label:`) for sequence classification
with `num_labels`.

Labels are class ids (integers in [0, num_labels)) or class names (strings, numbered in sorted order; the names
reach the saved model's `id2label`), or numbers with `problem_type: regression`."""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any

from axo.data.errors import data_error, describe
from axo.data.formats.base import IGNORE_INDEX, PromptFormat, Sample, register_format
from axo.data.sources import Rows
from axo.data.tokens import encode_batch


@dataclass
class ClassifiedSample(Sample):
    """A classification sample whose text is a pair: `token_type_ids` mark the second text (BERT's segment ids)."""

    token_type_ids: list[int] | None = None


@register_format
class ClassificationFormat(PromptFormat):
    name = "classification"
    label_names: list[str] | None = None  # the class names, in id order, when the labels were names

    @property
    def label_column(self) -> str:
        return self.entry.field_label or "label"

    def tokenize(self, rows: Rows) -> list[Sample]:
        raw = [self.field(rows, index, self.label_column) for index in range(len(rows.rows))]
        labels = self._scores(rows, raw) if self.cfg.problem_type == "regression" else self._classes(rows, raw)
        samples = self.encode(rows)
        for sample, label in zip(samples, labels):
            sample.label = label
        return samples

    def encode(self, rows: Rows) -> list[Sample]:
        """The rows' texts (text pairs with `field_pair`) as samples without a label: what a trained classifier
        reads at inference."""
        column, pair = self.entry.field or "text", self.entry.field_pair
        count = len(rows.rows)
        texts = [self.text(rows, index, column) for index in range(count)]
        seconds = [self.text(rows, index, pair) for index in range(count)] if pair else None
        if not count:
            return []
        if seconds is None:
            encoded = encode_batch(self.tokenizer, texts)
            return [Sample(list(tokens), [IGNORE_INDEX] * len(tokens), index) for index, tokens in enumerate(encoded)]
        return self._pairs(texts, seconds)

    def _pairs(self, texts: list[str], seconds: list[str]) -> list[Sample]:
        """The tokenizer's own pair encoding (`tokenizer(text, text_pair)`); token type ids are kept when the
        model reads them (`token_type_ids` in the tokenizer's `model_input_names`, as for BERT)."""
        encoded = self.tokenizer(texts, seconds, add_special_tokens=True, return_token_type_ids=True,
                                 return_attention_mask=False, verbose=False)
        types = encoded.get("token_type_ids") if "token_type_ids" in self.tokenizer.model_input_names else None
        return [ClassifiedSample(list(tokens), [IGNORE_INDEX] * len(tokens), index, None,
                                 list(types[index]) if types is not None else None)
                for index, tokens in enumerate(encoded["input_ids"])]

    def _classes(self, rows: Rows, raw: list[Any]) -> list[int]:
        """Class ids: integers as written, or names numbered in sorted order (kept in `label_names`)."""
        key = self.label_column
        names = sorted({value for value in raw if isinstance(value, str)})
        if names and any(not isinstance(value, str) for value in raw):
            raise data_error("mixes integer and string labels.", origin=rows.source, key=key,
                             hint="Use one kind of label for every row.")
        self.label_names = names or None
        ids = [names.index(value) if isinstance(value, str) else value for value in raw]
        limit = self.cfg.num_labels
        for index, value in enumerate(ids):
            # bool is an int in Python: `label: true` must not quietly become class 1.
            outside = value < 0 or (limit is not None and value >= limit) if isinstance(value, int) else True
            if outside or isinstance(value, bool):
                origin, line = rows.where(index)
                raise data_error(f"row {line}: {key} {raw[index]!r} is not a class id in [0, {limit or '?'}).",
                                 origin=origin, line=line, key=key, hint="Set `num_labels` to the number of classes"
                                 + (" (the names are numbered in sorted order)." if names else ", or fix the label."))
        return ids

    def _scores(self, rows: Rows, raw: list[Any]) -> list[float]:
        """`problem_type: regression`: every label is a number (a string or a boolean is an error, never cast)."""
        key = self.label_column
        for index, value in enumerate(raw):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                origin, line = rows.where(index)
                raise data_error(f"row {line}: {key} is {describe(value)}, not a number; `problem_type: regression` "
                                 "learns a numeric score.", origin=origin, line=line, key=key,
                                 hint="Write the score as a JSON number (e.g. 7 or 0.5), or remove `problem_type: "
                                 "regression` to learn classes.")
        return [float(value) for value in raw]
