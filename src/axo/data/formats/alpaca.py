"""`type: alpaca` (styles `instruct`, `chat`, `chatml`, `phi`) and the user-defined `type:` mapping.

Token for token what Axolotl does (its AlpacaPrompter and InstructionPromptTokenizingStrategy): the
prompt and the output are tokenized separately and concatenated; the prompt keeps the tokenizer's BOS,
the output loses its BOS and gets EOS appended. With `train_on_inputs: false` the prompt is masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter

from axo.config.schema import UserDefinedPrompt
from axo.data.errors import data_error
from axo.data.formats.base import IGNORE_INDEX, PromptFormat, Sample, register_format
from axo.data.sources import Rows
from axo.data.tokens import encode_batch

SYSTEM_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                     "context. Write a response that appropriately completes the request.")
SYSTEM_NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately completes the request."


@dataclass(frozen=True)
class PromptStyle:
    """How one alpaca style lays out the system text, the instruction and the input."""

    system_format: str
    turn_format: str
    turn_no_input_format: str
    system_prompt: str = SYSTEM_WITH_INPUT
    system_no_input_prompt: str = SYSTEM_NO_INPUT

    def build(self, instruction: str, input_: str, system: str | None = None) -> str:
        if input_:
            head = system if system is not None else self.system_prompt
            turn = self.turn_format.format(instruction=instruction, input=input_)
        else:
            head = system if system is not None else self.system_no_input_prompt
            turn = self.turn_no_input_format.format(instruction=instruction)
        return (self.system_format.format(system=head) if head else "") + turn


STYLES: dict[str, PromptStyle] = {
    "instruct": PromptStyle("{system}\n\n", "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
                            "### Instruction:\n{instruction}\n\n### Response:\n"),
    "chat": PromptStyle("SYSTEM: {system}\n", "USER: {instruction}\n{input}\nASSISTANT:", "USER: {instruction}\nASSISTANT:"),
    "chatml": PromptStyle("<|im_start|>system\n{system}<|im_end|>\n",
                          "<|im_start|>user\n{instruction}\n{input}<|im_end|>\n<|im_start|>assistant\n",
                          "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n"),
    "phi": PromptStyle("<|system|>{system}\n", "<|user|>\n{instruction}<|end|>{input}<|assistant|>",
                       "<|user|>\n{instruction}<|end|><|assistant|>"),
}


def _placeholders(text: str, key: str, allowed: tuple[str, ...], path: str) -> set[str]:
    """The `{name}` placeholders of a user's format string; anything `str.format` would fail on (an unknown
    name, a positional `{}`, a lone brace) is a config error naming the key, not a KeyError at row 1."""
    try:
        names = {name for _, name, _, _ in Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise data_error(f"`{key}` is not a valid format string: {exc}.", origin=path, key=key,
                         hint="Write a literal brace as `{{` or `}}`.") from None
    unknown = sorted(names - set(allowed))
    if unknown:
        shown = ", ".join("{" + name + "}" for name in unknown)
        raise data_error(f"`{key}` uses {shown}, which is not one of its placeholders "
                         f"({', '.join('{' + name + '}' for name in allowed)}).", origin=path, key=key,
                         hint="Map your columns with `field_instruction` / `field_input` and use those placeholders; "
                              "write a literal brace as `{{` or `}}`.")
    return names


def _user_style(mapping: UserDefinedPrompt, path: str) -> PromptStyle:
    if not mapping.format:
        raise data_error("the `type:` mapping needs `format`, e.g. `format: \"[INST] {instruction} {input} [/INST]\"`.",
                         origin=path, key="type.format")
    for key, text in (("type.format", mapping.format), ("type.no_input_format", mapping.no_input_format)):
        if text is not None and "instruction" not in _placeholders(text, key, ("instruction", "input"), path):
            raise data_error(f"`{key}` has no {{instruction}} placeholder: every row's instruction would be read "
                             "and left out of the prompt.", origin=path, key=key,
                             hint="Put {instruction} where the instruction goes.")
    if mapping.system_format:
        _placeholders(mapping.system_format, "type.system_format", ("system",), path)
    return PromptStyle(system_format=mapping.system_format or "{system}", turn_format=mapping.format,
                       turn_no_input_format=mapping.no_input_format or mapping.format,
                       system_prompt=mapping.system_prompt or "", system_no_input_prompt=mapping.system_prompt or "")


def join_prompt_and_response(prompt: list[int], response: list[int], bos: int | None, eos: int | None,
                             train_on_inputs: bool) -> tuple[list[int], list[int]]:
    """Axolotl's concatenation: strip the response's BOS, end it with EOS, mask the prompt."""
    if response and bos is not None and response[0] == bos:
        response = response[1:]
    if eos is not None and (not response or response[-1] != eos):
        response = [*response, eos]
    labels = (list(prompt) if train_on_inputs else [IGNORE_INDEX] * len(prompt)) + response
    return prompt + response, labels


@register_format
class AlpacaFormat(PromptFormat):
    name = "alpaca"

    def _style(self) -> PromptStyle:
        if isinstance(self.entry.type, UserDefinedPrompt):
            return _user_style(self.entry.type, self.entry.path)
        style = self.style or "instruct"
        if style not in STYLES:
            raise data_error(f"unknown alpaca style {style!r}; use one of: {', '.join(STYLES)}.",
                             origin=self.entry.path, key="type")
        return STYLES[style]

    def tokenize(self, rows: Rows) -> list[Sample]:
        style = self._style()
        mapping = self.entry.type if isinstance(self.entry.type, UserDefinedPrompt) else UserDefinedPrompt()
        names = (mapping.field_instruction or "instruction", mapping.field_input or "input",
                 mapping.field_output or "output", mapping.field_system)
        drops_input = "input" not in {name for _, name, _, _ in Formatter().parse(style.turn_format)}
        prompts, responses = [], []
        for index in range(len(rows.rows)):
            instruction = self.text(rows, index, names[0])
            input_ = self.text(rows, index, names[1], required=False)
            if input_ and drops_input:
                origin, line = rows.where(index)
                raise data_error(f"row {line} has an {names[1]!r} but `type.format` has no {{input}} placeholder: "
                                 "it would be left out of the prompt.", origin=origin, line=line, key="type.format",
                                 hint="Put {input} in `format` (and give `no_input_format` for rows without one).")
            # An absent or null system field means "use the style's system prompt", not an empty one.
            has_system = names[3] is not None and rows.rows[index].get(names[3]) is not None
            system = self.text(rows, index, names[3]) if has_system else None
            prompts.append(style.build(instruction, input_, system))
            responses.append(self.text(rows, index, names[2]))
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id  # properties: read once, not per row
        train_on_inputs = self.cfg.train_on_inputs
        pairs = zip(encode_batch(self.tokenizer, prompts), encode_batch(self.tokenizer, responses))
        return [Sample(*join_prompt_and_response(prompt, response, bos, eos, train_on_inputs), index)
                for index, (prompt, response) in enumerate(pairs)]

    def masking(self) -> tuple[str, str]:
        mapping = self.entry.type if isinstance(self.entry.type, UserDefinedPrompt) else UserDefinedPrompt()
        output = mapping.field_output or "output"
        settings = (f"the alpaca format trains each row's {output!r} and the end-of-sequence token; "
                    f"train_on_inputs: {str(self.cfg.train_on_inputs).lower()}")
        return settings, f"Fill {output!r} with the answers to learn (or set `field_output` to the column that holds them)."
