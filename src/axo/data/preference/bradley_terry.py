"""`bradley_terry.chat_template` (reward models): rows with system?, input, chosen, rejected.

Axolotl 0.21 tokenizes this type itself: each side is the chat template's rendering of [system, user: input,
assistant: answer] (the system turn whenever the row has a `system` field, even an empty one) (no generation prompt), encoded without special tokens and cut to `sequence_len`. axo
produces the same rendering as text rows: `prompt` is the rendering of [system?, user] with the generation
prompt, and chosen/rejected are what each full rendering adds after it, so prompt + chosen is Axolotl's text.
`axolotl_ids` gives the ids Axolotl trains on. TRL's RewardTrainer tokenizing the text rows itself differs from
them by the tokenizer's BOS in front and the EOS it appends (when the text does not already end with it).
"""

from __future__ import annotations

from typing import Any

from axo.data.preference.base import register_preference_format
from axo.data.preference.chat_template import TemplateFormat
from axo.data.preference.rows import Row


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


@register_preference_format
class BradleyTerryChatTemplate(TemplateFormat):
    name = "bradley_terry.chat_template"
    methods = frozenset({"reward"})

    def pair(self, row: Row) -> dict[str, str]:
        # Axolotl's chat-template tokenizer puts a `system` column first even when it is empty
        context = [{"role": "system", "content": row.text("system") if row.has("system") else ""}] \
            if "system" in row.data else []
        context.append({"role": "user", "content": row.text("input")})
        full = {side: self.render(row, context + [{"role": "assistant", "content": row.text(side)}], generation=False)
                for side in ("chosen", "rejected")}
        prompt = self.render(row, context, generation=True)
        if not (full["chosen"].startswith(prompt) and full["rejected"].startswith(prompt)):
            # the template writes the prompt differently once an answer follows: split where the two differ
            prompt = _common_prefix(full["chosen"], full["rejected"])
        return {"prompt": prompt, "chosen": full["chosen"][len(prompt):], "rejected": full["rejected"][len(prompt):]}


def axolotl_ids(tokenizer: Any, row: dict[str, Any], sequence_len: int) -> dict[str, list[int]]:
    """The token ids Axolotl 0.21 trains a reward model on for one text row of this type (chosen_ids,
    rejected_ids): the full text without special tokens, cut to `sequence_len`."""
    return {f"{side}_ids": tokenizer(row["prompt"] + row[side], add_special_tokens=False)["input_ids"][:sequence_len]
            for side in ("chosen", "rejected")}
