"""`type: chat_template`: conversations rendered by a Jinja chat template, only chosen turns trained.

Each conversation is rendered once (plus once with placeholder contents, to find exactly where each
message's content lands in the text) and tokenized once with character offsets. A token carries loss
when it overlaps the content of a trainable turn; role headers and template markup stay masked. The
end-of-sequence / end-of-turn token after a turn follows Axolotl's `train_on_eos` / `train_on_eot`
rules (all | turn | last | none), looking at most 3 tokens past the content, as Axolotl does.
Axolotl finds each turn by re-rendering the conversation per turn; this is one render per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError

from axo.data.chat_templates import resolve_chat_template
from axo.data.errors import data_error, describe
from axo.data.formats.base import IGNORE_INDEX, PromptFormat, Sample, register_format
from axo.data.sources import Rows
from axo.data.tokens import encode_batch_with_offsets

DEFAULT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant",
                 "system": "system", "tool": "tool"}
TERMINATOR_WINDOW = 3  # Axolotl accepts an EOS/EOT at most this many tokens after the content
_SENTINEL = "\u0000AXO{}\u0000"


@dataclass
class Turn:
    role: str
    content: str
    trainable: bool
    detail: list[dict[str, Any]] | None = None


class _TemplateRenderError(Exception):
    pass


class _TemplateSyntaxError(Exception):
    def __init__(self, message: str, lineno: int | None):
        super().__init__(message)
        self.lineno = lineno


def _syntax_error(exc: _TemplateSyntaxError, name: str, jinja: str | None, template: str):
    """The DataError for a chat template that does not compile: it names where the template came from and
    its line, since no data row is at fault."""
    if name == "jinja":
        key, origin = "chat_template_jinja", (jinja if jinja and jinja.endswith((".jinja", ".j2")) else None)
        source = f"the template in `chat_template_jinja`{f' ({origin})' if origin else ''}"
    elif name.endswith((".jinja", ".j2")):
        key, origin, source = "chat_template", name, f"the chat template file {name}"
    else:
        key, origin, source = "chat_template", None, f"the chat template {name!r} (from the tokenizer or axo)"
    lines = template.splitlines()
    shown = f": `{lines[exc.lineno - 1].strip()[:120]}`" if exc.lineno and 0 < exc.lineno <= len(lines) else ""
    return data_error(f"{source} is not valid Jinja: {exc} (template line {exc.lineno}{shown}).", origin=origin,
                      line=exc.lineno, key=key,
                      hint="Fix the template's syntax (every `{%` closes with `%}`, every `{{` with `}}`, every "
                           "`{% if %}`/`{% for %}` with its `{% endif %}`/`{% endfor %}`).")


def _check_training_fields(flag: Any, flag_key: str, detail: Any, detail_key: str, where: str, origin: str,
                           line: int, key: str) -> None:
    """A message's per-message training switches have the types Axolotl defines: `training` a boolean (the
    string "false" would otherwise switch training on), `train_detail` a list of {begin_offset, end_offset,
    train} spans."""
    if flag is not None and not isinstance(flag, bool):
        raise data_error(f"{where}: {flag_key!r} is {describe(flag)}, not true or false.", origin=origin, line=line,
                         key=f"{key}.{flag_key}", hint="Write true or false without quotes.")
    if detail is None:
        return
    spans_ok = isinstance(detail, list) and all(
        isinstance(span, dict) and all(isinstance(span.get(name, 0), int) and not isinstance(span.get(name, 0), bool)
                                       for name in ("begin_offset", "end_offset")) for span in detail)
    if not spans_ok:
        raise data_error(f"{where}: {detail_key!r} is {describe(detail)}, not a list of character spans.",
                         origin=origin, line=line, key=f"{key}.{detail_key}",
                         hint='Write it as [{"begin_offset": 0, "end_offset": 9, "train": true}, ...].')


def content_text(value: Any, where: str, origin: str, line: int, key: str) -> str:
    """A message's content as text: a string as it is, null as "", and OpenAI content parts
    (`[{"type": "text", "text": "hi"}, ...]`) as their texts joined with no separator, which is what chat
    templates that accept parts render for text-only content (Qwen2-VL's, Llama 3.2's: one `text` after
    another). Any other part type (image_url, input_audio, file, ...) is an error: a text model cannot be
    trained on it, and its Python repr must never reach the template."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if not isinstance(value, list):
        raise data_error(f"{where}: the content is {describe(value)}, not text or a list of content parts.",
                         origin=origin, line=line, key=key,
                         hint='Write the content as a string, or as content parts [{"type": "text", "text": "..."}].')
    pieces = []
    for number, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            pieces.append(part["text"])
            continue
        if not isinstance(kind, str):
            problem = f"is {describe(part)}, not a content part such as {{\"type\": \"text\", \"text\": \"...\"}}"
            hint = 'Write each part as {"type": "text", "text": "..."}, or write the whole content as one string.'
        elif kind == "text":
            problem = f"has type 'text' but its 'text' is {describe(part.get('text'))}, not a string"
            hint = 'Write it as {"type": "text", "text": "..."}.'
        else:
            problem = f"is of type {kind!r}: only 'text' parts can be trained"
            hint = f"Remove the {kind} parts (or replace them with text); axo fine-tunes text-only models."
        raise data_error(f"{where}: content part {number} {problem}.", origin=origin, line=line,
                         key=f"{key}[{number}]", hint=hint)
    return "".join(pieces)


@register_format
class ChatTemplateFormat(PromptFormat):
    name = "chat_template"

    def _roles(self) -> dict[str, str]:
        roles = dict(DEFAULT_ROLES)
        for template_role, data_roles in (self.entry.roles or {}).items():
            for data_role in data_roles:
                roles[data_role] = template_role
        return roles

    def _eot_ids(self) -> set[int]:
        ids = set()
        for token in self.cfg.eot_tokens or [self.tokenizer.eos_token]:
            if token is None:
                continue
            encoded = self.tokenizer.encode(token, add_special_tokens=False)
            if len(encoded) != 1:
                raise data_error(f"eot token {token!r} is {len(encoded)} tokens, not one.", key="eot_tokens",
                                 hint="Add it to the vocabulary with `tokens:` (or `special_tokens`), or list a single token.")
            ids.add(encoded[0])
        return ids

    def _turns(self, rows: Rows, index: int, roles: dict[str, str]) -> tuple[list[Turn], Any]:
        entry = self.entry
        messages = self.field(rows, index, entry.field_messages)
        origin, line = rows.where(index)
        if not isinstance(messages, list):
            raise data_error(f"row {line}: `{entry.field_messages}` is {describe(messages)}, not a list of messages.",
                             origin=origin, line=line, key=entry.field_messages,
                             hint='Write it as [{"role": "user", "content": "..."}, ...] (a JSON array, not a string '
                                  "holding one).")
        mapping = entry.message_property_mappings or {"role": "role", "content": "content"}
        role_key, content_key = mapping.get("role", "role"), mapping.get("content", "content")
        train_roles = set(entry.roles_to_train or [])
        flag_key = entry.message_field_training or "training"
        detail_key = entry.message_field_training_detail or "train_detail"
        turns = []
        if entry.field_system and rows.rows[index].get(entry.field_system):
            turns.append(Turn("system", self.text(rows, index, entry.field_system), False))
        for number, message in enumerate(messages):
            where = f"row {line}, message {number}"
            if not isinstance(message, dict) or role_key not in message or content_key not in message:
                found = "" if isinstance(message, dict) else f" (it is {describe(message)})"
                raise data_error(f"{where} needs {role_key!r} and {content_key!r}{found}.", origin=origin,
                                 line=line, key=f"{entry.field_messages}[{number}]",
                                 hint="Map your keys with `message_property_mappings: {role: ..., content: ...}`.")
            if not isinstance(message[role_key], str):
                raise data_error(f"{where}: {role_key!r} is {describe(message[role_key])}, not a role name.",
                                 origin=origin, line=line, key=f"{entry.field_messages}[{number}].{role_key}",
                                 hint='Use a role such as "user", "assistant" or "system".')
            role = roles.get(message[role_key], message[role_key])
            self.roles_seen.add(role)
            if entry.drop_system_message and role == "system":
                continue
            detail = message.get(detail_key)
            flag = message.get(flag_key)
            _check_training_fields(flag, flag_key, detail, detail_key, where, origin, line,
                                   f"{entry.field_messages}[{number}]")
            if flag is not None:
                trainable = flag
            elif detail is not None:
                trainable = bool(detail)
            else:
                trainable = self.cfg.train_on_inputs or role in train_roles
            content = content_text(message[content_key], where, origin, line,
                                   f"{entry.field_messages}[{number}].{content_key}")
            turns.append(Turn(role, content, trainable, detail))
        tools = rows.rows[index].get(entry.field_tools or "tools")
        return turns, tools

    def _render(self, template: str, turns: list[Turn], contents: list[str], tools: Any) -> str:
        messages = [{"role": t.role, "content": c} for t, c in zip(turns, contents)]
        try:
            return self.tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                                      tools=tools or None)
        except TemplateSyntaxError as exc:  # the template itself does not compile: no row is to blame
            raise _TemplateSyntaxError(exc.message or str(exc), exc.lineno) from None
        except Exception as exc:  # jinja's raise_exception and template errors come in several types
            detail = str(exc) if type(exc) is TemplateError else f"{type(exc).__name__}: {exc}"
            raise _TemplateRenderError(detail) from None

    def _content_spans(self, template: str, turns: list[Turn], tools: Any) -> tuple[str, list[tuple[int, int] | None]]:
        """The rendered text and each turn's (start, end) character span in it."""
        text = self._render(template, turns, [t.content for t in turns], tools)
        skeleton = self._render(template, turns, [_SENTINEL.format(i) for i in range(len(turns))], tools)
        for transform in (lambda s: s, str.strip):
            rebuilt, spans, cursor = [], [], 0
            for number, turn in enumerate(turns):
                marker = _SENTINEL.format(number)
                at = skeleton.find(marker, cursor)
                if at < 0:  # the template dropped this message (e.g. phi_3 drops unknown roles)
                    spans.append(None)
                    continue
                rebuilt.append(skeleton[cursor:at])
                start = sum(map(len, rebuilt))
                content = transform(turn.content)
                rebuilt.append(content)
                spans.append((start, start + len(content)))
                cursor = at + len(marker)
            rebuilt.append(skeleton[cursor:])
            if "".join(rebuilt) == text:
                return text, spans
        # The template changes contents in another way: find each one in order in the real text.
        spans, cursor = [], 0
        for turn in turns:
            at = text.find(turn.content.strip(), cursor)
            spans.append(None if at < 0 else (at, at + len(turn.content.strip())))
            cursor = at + len(turn.content.strip()) if at >= 0 else cursor
        return text, spans

    def tokenize(self, rows: Rows) -> list[Sample]:
        entry = self.entry
        name = entry.chat_template or self.cfg.chat_template or "tokenizer_default"
        jinja = entry.chat_template_jinja or self.cfg.chat_template_jinja
        template = resolve_chat_template(name, jinja, self.tokenizer)
        roles = self._roles()
        self.roles_seen: set[str] = set()
        texts, layouts = [], []
        for index in range(len(rows.rows)):
            turns, tools = self._turns(rows, index, roles)
            try:
                text, spans = self._content_spans(template, turns, tools)
            except _TemplateSyntaxError as exc:
                raise _syntax_error(exc, name, jinja, template) from None
            except _TemplateRenderError as exc:
                origin, line = rows.where(index)
                raise data_error(f"row {line}: the chat template refused the conversation: {exc}", origin=origin,
                                 line=line, key=entry.field_messages,
                                 hint="Check the roles (some templates need user/assistant alternation and no "
                                      "system) and the fields the template reads.") from None
            texts.append(text)
            layouts.append((turns, spans))
        if not texts:
            return []
        all_ids, all_offsets = encode_batch_with_offsets(self.tokenizer, texts, add_special_tokens=False)
        eos, eot = self.tokenizer.eos_token_id, self._eot_ids()
        return [Sample(list(ids), self._labels(ids, offsets, turns, spans, eos, eot), index)
                for index, (ids, offsets, (turns, spans)) in enumerate(zip(all_ids, all_offsets, layouts))]

    def masking(self) -> tuple[str, str]:
        entry = self.entry
        trained = sorted(entry.roles_to_train or [])
        seen: set[str] = getattr(self, "roles_seen", set())
        flags = f", message_field_training: {entry.message_field_training}" if entry.message_field_training else ""
        settings = (f"roles_to_train: [{', '.join(trained)}], train_on_inputs: {str(self.cfg.train_on_inputs).lower()}"
                    f"{flags}; roles in the data (after `roles:` mapping): {', '.join(sorted(seen)) or 'none'}")
        if seen & set(trained):  # the roles are there: their turns are empty or switched off per message
            return settings, (f"Fill the {', '.join(sorted(seen & set(trained)))} turns (an empty message is not "
                              "trained), or check their per-message `training` flags.")
        others = sorted(seen - {"system", "user"}) or ["gpt"]
        return settings, (f"Map the data's role names to the template's with `roles:` (e.g. `roles: {{assistant: "
                          f"[{', '.join(others)}]}}`), or list the roles to train in `roles_to_train`.")

    def _labels(self, ids: list[int], offsets: list[tuple[int, int]], turns: list[Turn],
                spans: list[tuple[int, int] | None], eos: int | None, eot: set[int]) -> list[int]:
        labels = [IGNORE_INDEX] * len(ids)
        rules = {"eot": self.entry.train_on_eot or "turn", "eos": self.entry.train_on_eos or "turn"}
        if not self.entry.roles_to_train and rules["eos"] == "none" and rules["eot"] == "none" and not self.cfg.train_on_inputs:
            return self._legacy_labels(ids, offsets, spans)
        process_all = "all" in rules.values()
        last_found: dict[str, int] = {}
        for turn, span in zip(turns, spans):
            # An empty message is skipped entirely, as Axolotl's find_turn does (no terminator either).
            if span is None or span[0] == span[1] or (not turn.trainable and not process_all):
                continue
            start, end = span
            inside = [i for i, (a, b) in enumerate(offsets) if a < end and b > start and b > a]
            if turn.trainable:
                for i in inside:
                    if turn.detail is None or self._in_detail(offsets[i][0] - start, turn.detail):
                        labels[i] = ids[i]
            after = inside[-1] + 1 if inside else next((i for i, (a, _) in enumerate(offsets) if a >= end), len(ids))
            for kind, wanted in (("eot", eot), ("eos", {eos} if eos is not None else set())):
                found = next((i for i in range(after, min(after + TERMINATOR_WINDOW + 1, len(ids))) if ids[i] in wanted), None)
                if found is None:
                    continue
                last_found[kind] = found
                if rules[kind] == "all" or (rules[kind] == "turn" and turn.trainable):
                    labels[found] = ids[found]
        for kind, position in last_found.items():
            if rules[kind] == "last":
                labels[position] = ids[position]
        return labels

    @staticmethod
    def _in_detail(char: int, detail: list[dict[str, Any]]) -> bool:
        return any(span.get("train", True) and span.get("begin_offset", 0) <= char <= span.get("end_offset", -1)
                   for span in detail)

    @staticmethod
    def _legacy_labels(ids: list[int], offsets: list[tuple[int, int]], spans: list[tuple[int, int] | None]) -> list[int]:
        """Axolotl's path with no roles and no eos/eot training: train everything from the last message on."""
        last = next((span for span in reversed(spans) if span is not None), None)
        if last is None:
            return [IGNORE_INDEX] * len(ids)
        return [token if end > last[0] else IGNORE_INDEX for token, (_, end) in zip(ids, offsets)]
