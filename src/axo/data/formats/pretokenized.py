"""Rows that are already tokenized: `input_ids`, optional `labels` and `attention_mask` (no `type:`)."""

from __future__ import annotations

from axo.data.errors import data_error
from axo.data.formats.base import IGNORE_INDEX, PromptFormat, Sample, register_format
from axo.data.sources import Rows


@register_format
class PretokenizedFormat(PromptFormat):
    name = "pretokenized"

    def tokenize(self, rows: Rows) -> list[Sample]:
        vocab = len(self.tokenizer)
        samples = []
        for index in range(len(rows.rows)):
            origin, line = rows.where(index)
            ids = self.field(rows, index, "input_ids")
            labels = rows.rows[index].get("labels")
            mask = rows.rows[index].get("attention_mask")
            if not isinstance(ids, list) or not all(type(t) is int and 0 <= t < vocab for t in ids):  # not bools
                raise data_error(f"row {line}: `input_ids` must be a list of token ids in [0, {vocab}).",
                                 origin=origin, line=line, key="input_ids",
                                 hint="Were these ids made with a different tokenizer?")
            if labels is None:
                labels = list(ids)
            if not isinstance(labels, list) or len(labels) != len(ids):
                raise data_error(f"row {line}: `labels` must be a list as long as `input_ids` ({len(ids)}).",
                                 origin=origin, line=line, key="labels")
            if not all(type(t) is int and (t == IGNORE_INDEX or 0 <= t < vocab) for t in labels):
                raise data_error(f"row {line}: `labels` must hold token ids in [0, {vocab}) or {IGNORE_INDEX} "
                                 "(no loss).", origin=origin, line=line, key="labels",
                                 hint=f"Mask a position with {IGNORE_INDEX}; anything else is a token id to predict.")
            if mask is not None:
                if not isinstance(mask, list) or len(mask) != len(ids):
                    raise data_error(f"row {line}: `attention_mask` must be as long as `input_ids`.",
                                     origin=origin, line=line, key="attention_mask")
                labels = [label if keep else IGNORE_INDEX for label, keep in zip(labels, mask)]
            samples.append(Sample(list(ids), list(labels), index))
        return samples

    def field_hint(self, name: str) -> str:
        return "Rows without `type:` must be pre-tokenized; set `type:` (e.g. alpaca, chat_template) for text rows."

    def masking(self) -> tuple[str, str]:
        return (f"pre-tokenized rows train the positions whose `labels` are not {IGNORE_INDEX}",
                "Give some positions a real label (or leave `labels` out to train every token).")
