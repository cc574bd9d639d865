"""`zephyr.nectar`: Nectar-style rows (prompt, answers ranked by `rank`): the two highest ranks become chosen
and rejected, under a Zephyr prompt with an empty system turn."""

from __future__ import annotations

from axo.data.preference.base import register_preference_format
from axo.data.preference.fixed import DPO_METHODS
from axo.data.preference.rows import Row, RowFormat


@register_preference_format
class ZephyrNectar(RowFormat):
    name = "zephyr.nectar"
    methods = DPO_METHODS

    def pair(self, row: Row) -> dict[str, str]:
        answers = row.messages("answers", at_least=2)
        for answer in answers:
            if not isinstance(answer.get("rank"), (int, float)) or isinstance(answer.get("rank"), bool):
                raise row.error(f"an answer in `answers` has no numeric `rank` ({answer!r:.80}).", "answers")
        ranked = sorted(answers, key=lambda a: a["rank"])  # stable, like Python's sort in Axolotl
        return {"prompt": f"<|system|>\n</s>\n<|user|>\n{row.text('prompt')}</s>\n<|assistant|>\n",
                "chosen": row.content(ranked[-1], "answers", "answer"),
                "rejected": row.content(ranked[-2], "answers", "answer")}
