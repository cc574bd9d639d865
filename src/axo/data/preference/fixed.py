"""Preference shapes rendered with a fixed chat markup (`chatml.*`, `llama3.*`): the markup is written into
the text, whatever the tokenizer's own chat template is, as Axolotl 0.21 does.

Shapes (the dataset columns each type reads):

- `intel`: system?, question, chosen, rejected (KTO: system?, question, completion, label)
- `icr`: system?, input, chosen, rejected
- `prompt_pairs`, `ultra` (KTO): system?, prompt, chosen/rejected (KTO: completion, label)
- `ultra` (pairs): system?, prompt, chosen/rejected as [user, assistant] message lists (the answer is the second)
- `argilla_chat`: chosen/rejected as [user, assistant] lists (KTO: completion as a conversation, label)
- `argilla` (KTO only): system?, instruction, completion, label
- `default` (pairs only): the first of prompt/input/question/instruction; chosen or chosen_response, rejected or
  rejected_response
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from axo.data.preference.base import KTO_METHODS, register_preference_format
from axo.data.preference.rows import Row, RowFormat

DPO_METHODS = frozenset({"dpo", "ipo", "simpo"})  # Axolotl reads these types with its DPO loader for all three


@dataclass(frozen=True)
class Markup:
    """How one family writes a turn."""

    turn: str  # with {role} and {content}
    generation: str  # opens the assistant's turn
    end: str  # closes the answer

    def prompt(self, row: Row, key: str) -> str:
        """An optional system turn (when the row's `system` is set), the user turn from `key`, the assistant
        opening."""
        system = self.turn.format(role="system", content=row.text("system")) if row.has("system") else ""
        return system + self.turn.format(role="user", content=row.text(key)) + self.generation


CHATML = Markup("<|im_start|>{role}\n{content}<|im_end|>\n", "<|im_start|>assistant\n", "<|im_end|>")
LLAMA3 = Markup("<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>",
                "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>")


class FixedFormat(RowFormat):
    markup: ClassVar[Markup]


class _Flat(FixedFormat):
    """Prompt from one column; chosen/rejected (or completion) as text."""

    prompt_key: ClassVar[str]

    def pair(self, row: Row) -> dict[str, str]:
        m = self.markup
        return {"prompt": m.prompt(row, self.prompt_key), "chosen": row.text("chosen") + m.end,
                "rejected": row.text("rejected") + m.end}

    def kto(self, row: Row) -> dict[str, Any]:
        return {"prompt": self.markup.prompt(row, self.prompt_key),
                "completion": row.text("completion") + self.markup.end, "label": row.value("label")}


class _Default(FixedFormat):
    def pair(self, row: Row) -> dict[str, str]:
        prompt_key = next((k for k in ("prompt", "input", "question") if k in row.data), "instruction")
        chosen = "chosen" if "chosen" in row.data else "chosen_response"
        rejected = "rejected" if "rejected" in row.data else "rejected_response"
        m = self.markup
        return {"prompt": m.prompt(row, prompt_key), "chosen": row.text(chosen) + m.end,
                "rejected": row.text(rejected) + m.end}


def _answer(row: Row, key: str) -> str:
    """The content of the second message of the conversation in `key` (the assistant's answer)."""
    return row.content(row.messages(key, at_least=2)[1], key)


class _Ultra(_Flat):
    prompt_key = "prompt"

    def pair(self, row: Row) -> dict[str, str]:
        m = self.markup
        return {"prompt": m.prompt(row, "prompt"), "chosen": _answer(row, "chosen") + m.end,
                "rejected": _answer(row, "rejected") + m.end}


class _ArgillaChat(FixedFormat):
    def pair(self, row: Row) -> dict[str, str]:
        m = self.markup
        user = row.content(row.messages("chosen", at_least=2)[0], "chosen")
        return {"prompt": m.turn.format(role="user", content=user) + m.generation,
                "chosen": _answer(row, "chosen") + m.end, "rejected": _answer(row, "rejected") + m.end}

    def kto(self, row: Row) -> dict[str, Any]:
        m = self.markup
        *history, response = row.messages("completion")
        turns = "".join(m.turn.format(role=row.content(t, "completion", "role"), content=row.content(t, "completion"))
                        for t in history)
        return {"prompt": turns + m.generation, "completion": row.content(response, "completion") + m.end,
                "label": row.value("label")}


# shape -> (base class, prompt column, methods)
_SHAPES: dict[str, tuple[type[FixedFormat], str | None, frozenset[str]]] = {
    "intel": (_Flat, "question", DPO_METHODS | KTO_METHODS),
    "icr": (_Flat, "input", DPO_METHODS),
    "prompt_pairs": (_Flat, "prompt", DPO_METHODS | KTO_METHODS),
    "ultra": (_Ultra, "prompt", DPO_METHODS | KTO_METHODS),
    "argilla": (_Flat, "instruction", KTO_METHODS),
    "argilla_chat": (_ArgillaChat, None, DPO_METHODS | KTO_METHODS),
    "default": (_Default, None, DPO_METHODS),
}


def register_family(family: str, markup: Markup) -> None:
    """Register `<family>.<shape>` for every shape above, written with `markup`."""
    for shape, (base, prompt_key, methods) in _SHAPES.items():
        attributes = {"name": f"{family}.{shape}", "methods": methods, "markup": markup, "__module__": __name__}
        if prompt_key is not None:
            attributes["prompt_key"] = prompt_key
        register_preference_format(type(f"{family.title()}{shape.title().replace('_', '')}", (base,), attributes))
