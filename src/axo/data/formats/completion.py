"""`type: completion`: raw text (column `text`, or `field:`), BOS + text + EOS, every token trained,
split into consecutive `sequence_len` chunks (long documents become several samples)."""

from __future__ import annotations

from axo.data.formats.base import PromptFormat, Sample, register_format
from axo.data.sources import Rows
from axo.data.tokens import encode_batch


@register_format
class CompletionFormat(PromptFormat):
    name = "completion"

    def tokenize(self, rows: Rows) -> list[Sample]:
        column = self.entry.field or "text"
        texts = [self.text(rows, index, column) for index in range(len(rows.rows))]
        if not texts:
            return []
        eos = self.tokenizer.eos_token_id
        size = self.cfg.sequence_len
        samples = []
        for index, ids in enumerate(encode_batch(self.tokenizer, texts)):
            if eos is not None and (not ids or ids[-1] != eos):
                ids = [*ids, eos]
            for start in range(0, len(ids), size):
                chunk = ids[start:start + size]
                samples.append(Sample(chunk, list(chunk), index))
        return samples
