"""Preference types rendered with a chat template (the entry's `chat_template`, else the config's, else the
tokenizer's own), as Axolotl 0.21 renders them:

- `chat_template.default` (DPO/IPO/SimPO): the conversation in `field_messages` (a list, or one string = a user
  turn) is the prompt, with the generation prompt; `field_chosen` / `field_rejected` hold the answers (a string,
  one message, or a list whose last message is the answer). An answer is the template's rendering of
  [placeholder user turn, answer] after the rendering of [placeholder user turn] + generation prompt, with
  trailing whitespace removed. `message_property_mappings` and `roles` map the data's keys and role names
  (Axolotl 0.21's DPO schema drops those two keys; axo honours them).
- `chat_template.argilla_chat` (DPO/IPO/SimPO): chosen/rejected are whole conversations; the prompt is all but
  the last message of chosen.
- `chat_template.argilla` (ORPO): system?, chosen/rejected as user/assistant conversations; the prompt is chosen
  without its last answer; chosen and rejected are what the full rendering adds after the prompt (not
  stripped).
"""

from __future__ import annotations

from typing import Any

from axo.data.chat_templates import resolve_chat_template
from axo.data.errors import DataError
from axo.data.preference.base import register_preference_format
from axo.data.preference.fixed import DPO_METHODS
from axo.data.preference.rows import Row, RowFormat

_PLACEHOLDER = {"role": "user", "content": "[[dummy_message]]"}
_DEFAULT_ROLES = {"user": ["user"], "assistant": ["assistant"], "system": ["system"], "tool": ["tool"]}


class TemplateFormat(RowFormat):
    """Shared: the template, the role and key mappings, and rendering with errors that name the row."""

    _template: str | None = None

    def template(self) -> str:
        if self._template is None:
            name = self.entry.chat_template or self.cfg.chat_template or "tokenizer_default"
            jinja = self.entry.chat_template_jinja or self.cfg.chat_template_jinja
            self._template = resolve_chat_template(name, jinja, self.tokenizer)
        return self._template

    def render(self, row: Row, messages: list[dict[str, Any]], generation: bool) -> str:
        try:
            return self.tokenizer.apply_chat_template(messages, chat_template=self.template(), tokenize=False,
                                                      add_generation_prompt=generation)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001  (jinja's raise_exception and template errors come in several types)
            raise row.error(f"the chat template refused the conversation: {exc}", self.entry.field_messages,
                            "Check the roles (some templates need user/assistant alternation) and the fields.") from None

    def mappings(self) -> dict[str, str]:
        return {"role": "role", "content": "content", **(self.entry.message_property_mappings or {})}

    def role_map(self) -> dict[str, str]:
        return {source: target for target, sources in (self.entry.roles or _DEFAULT_ROLES).items() for source in sources}

    def message(self, row: Row, raw: Any, key: str) -> dict[str, Any]:
        """One data message in the template's terms: mapped role and content, other mapped properties kept."""
        if not isinstance(raw, dict):
            raise row.error(f"a message in `{key}` is not an object: {raw!r:.60}.", key)
        props, roles = self.mappings(), self.role_map()
        role = raw.get(props["role"])
        if role not in roles:
            raise row.error(f"a message in `{key}` has role {role!r}, which `roles` does not map "
                            f"(known: {', '.join(sorted(roles))}).", key,
                            "Map the data's role names with `roles:` (e.g. `{user: [human], assistant: [gpt]}`), "
                            "or set `message_property_mappings: {role: <key>}`.")
        message = {"role": roles[role], "content": row.content(raw, key, props["content"])}
        for target, source in props.items():
            if target not in ("role", "content") and source in raw:
                message[target] = raw[source]
        return message

    def answer(self, row: Row, message: dict[str, Any]) -> str:
        """The rendering of one answer after a placeholder user turn, without trailing whitespace."""
        rendered = self.render(row, [_PLACEHOLDER, message], generation=False)
        prefix = self.render(row, [_PLACEHOLDER], generation=True)
        if prefix and rendered.startswith(prefix):
            return rendered[len(prefix):].rstrip()
        return rendered[rendered.find(message["content"]):].rstrip()


@register_preference_format
class ChatTemplateDefault(TemplateFormat):
    name = "chat_template.default"
    methods = DPO_METHODS

    def side(self, row: Row, key: str) -> dict[str, Any]:
        raw = row.value(key)
        if isinstance(raw, str):
            raw = {self.mappings()["role"]: "assistant", self.mappings()["content"]: raw}
        elif isinstance(raw, list):
            if not raw:
                raise row.error(f"`{key}` is an empty list.", key, "Give the answer as text or a message.")
            raw = raw[-1]
        return self.message(row, raw, key)

    def pair(self, row: Row) -> dict[str, str]:
        key = self.entry.field_messages
        conversation = row.value(key)
        if isinstance(conversation, str):
            conversation = [{self.mappings()["role"]: "user", self.mappings()["content"]: conversation}]
        else:
            conversation = row.messages(key)
        messages = [self.message(row, m, key) for m in conversation]
        return {"prompt": self.render(row, messages, generation=True),
                "chosen": self.answer(row, self.side(row, self.entry.field_chosen or "chosen")),
                "rejected": self.answer(row, self.side(row, self.entry.field_rejected or "rejected"))}


@register_preference_format
class ChatTemplateArgillaChat(TemplateFormat):
    name = "chat_template.argilla_chat"
    methods = DPO_METHODS

    def pair(self, row: Row) -> dict[str, str]:
        chosen_key, rejected_key = self.entry.field_chosen or "chosen", self.entry.field_rejected or "rejected"
        chosen = row.messages(chosen_key, at_least=2)
        rejected = row.messages(rejected_key)
        history = [self.message(row, m, chosen_key) for m in chosen[:-1]]
        return {"prompt": self.render(row, history, generation=True),
                "chosen": self.answer(row, self.message(row, chosen[-1], chosen_key)),
                "rejected": self.answer(row, self.message(row, rejected[-1], rejected_key))}


@register_preference_format
class ChatTemplateArgilla(TemplateFormat):
    """ORPO's type. Axolotl 0.21 renders it with the config's template only; axo also honours the entry's."""

    name = "chat_template.argilla"
    methods = frozenset({"orpo"})

    def _turn(self, row: Row, role: str, raw: dict[str, Any], key: str) -> dict[str, Any]:
        message = {"role": role, "content": row.content(raw, key)}
        if raw.get("reasoning_content") is not None:
            message["reasoning_content"] = raw["reasoning_content"]
        return message

    def _prompt(self, row: Row, chosen: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(chosen) % 2:
            raise row.error(f"`chosen` holds {len(chosen)} messages; it must alternate user and assistant and end "
                            "with the answer (an even number).", "chosen")
        messages = [{"role": "system", "content": row.text("system")}] if row.has("system") else []
        turns = len(chosen) // 2
        for i in range(turns):
            if "prompt" in row.data:  # Axolotl uses the `prompt` column for every user turn when there is one
                messages.append({"role": "user", "content": row.text("prompt")})
            else:
                messages.append({"role": "user", "content": row.content(chosen[2 * i], "chosen")})
            if i < turns - 1:
                messages.append({"role": "assistant", "content": row.content(chosen[2 * i + 1], "chosen")})
        return messages

    def pair(self, row: Row) -> dict[str, str]:
        chosen, rejected = row.messages("chosen", at_least=2), row.messages("rejected", at_least=2)
        context = self._prompt(row, chosen)
        prompt = self.render(row, context, generation=True)
        sides = {}
        for key, conversation in (("chosen", chosen), ("rejected", rejected)):
            full = self.render(row, context + [self._turn(row, "assistant", conversation[-1], key)], generation=False)
            sides[key] = full[len(prompt):]
        return {"prompt": prompt, **sides}
