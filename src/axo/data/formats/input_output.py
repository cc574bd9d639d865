"""`type: input_output`: rows of `segments: [{label: bool, text: str}]`, concatenated as written.

As in Axolotl, no BOS/EOS is added: the text carries whatever markup the model should see, and only
segments with `label: true` carry loss.
"""

from __future__ import annotations

from axo.data.errors import data_error, describe
from axo.data.formats.base import IGNORE_INDEX, PromptFormat, Sample, register_format
from axo.data.sources import Rows
from axo.data.tokens import encode_batch


@register_format
class InputOutputFormat(PromptFormat):
    name = "input_output"

    def tokenize(self, rows: Rows) -> list[Sample]:
        texts: list[str] = []
        owners: list[tuple[int, bool]] = []
        for index in range(len(rows.rows)):
            segments = self.field(rows, index, "segments")
            origin, line = rows.where(index)
            if not isinstance(segments, list):
                raise data_error(f"row {line}: `segments` is {describe(segments)}, not a list of {{label, text}} objects.",
                                 origin=origin, line=line, key="segments")
            for number, segment in enumerate(segments):
                if not isinstance(segment, dict) or not isinstance(segment.get("label"), bool) or "text" not in segment:
                    raise data_error(f"row {line}: segments[{number}] must be {{label: true|false, text: ...}}.",
                                     origin=origin, line=line, key=f"segments[{number}]")
                if not isinstance(segment["text"], str):
                    raise data_error(f"row {line}: segments[{number}].text is {describe(segment['text'])}, not a string.",
                                     origin=origin, line=line, key=f"segments[{number}].text",
                                     hint="Write each segment's text as a string.")
                texts.append(segment["text"])
                owners.append((index, segment["label"]))
        encoded = encode_batch(self.tokenizer, texts, add_special_tokens=False)
        by_row: dict[int, Sample] = {}
        for (index, trained), ids in zip(owners, encoded):
            sample = by_row.setdefault(index, Sample([], [], index))
            sample.input_ids += ids
            sample.labels += ids if trained else [IGNORE_INDEX] * len(ids)
        return list(by_row.values())

    def masking(self) -> tuple[str, str]:
        return ("input_output trains only the segments with `label: true`",
                "Mark the segments to learn with `label: true`.")
