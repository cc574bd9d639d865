"""`type: alpaca` (styles `instruct`, `chat`, `chatml`, `phi`) and the user-defined `type:` mapping.

Token for token what Axolotl does (its AlpacaPrompter and InstructionPromptTokenizingStrategy): the
prompt and the output are tokenized separately and concatenated; the prompt keeps the tokenizer's BOS,
the output loses its BOS and gets EOS appended. With `train_on_inputs: false` the prompt is masked.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _user_style(mapping: UserDefinedPrompt, path: str) -> PromptStyle:
    if not mapping.format:
        raise data_error("the `type:` mapping needs `format`, e.g. `format: \"[INST] {instruction} {input} [/INST]\"`.",
                         origin=path, key="type.format")
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
        prompts, responses = [], []
        for index in range(len(rows.rows)):
            instruction = str(self.field(rows, index, names[0]))
            input_ = self.field(rows, index, names[1], required=False, default="")
            system = self.field(rows, index, names[3], required=False) if names[3] else None
            prompts.append(style.build(instruction, str(input_ or ""), None if system is None else str(system)))
            responses.append(str(self.field(rows, index, names[2])))
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id  # properties: read once, not per row
        train_on_inputs = self.cfg.train_on_inputs
        pairs = zip(encode_batch(self.tokenizer, prompts), encode_batch(self.tokenizer, responses))
        return [Sample(*join_prompt_and_response(prompt, response, bos, eos, train_on_inputs), index)
                for index, (prompt, response) in enumerate(pairs)]
