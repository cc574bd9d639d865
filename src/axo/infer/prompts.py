"""Turn a request (chat messages, an alpaca row or raw text) into the prompt text the run was trained on."""

from __future__ import annotations

from typing import Any

from axo.config.schema import AxoConfig, UserDefinedPrompt
from axo.data.formats.alpaca import STYLES, _user_style


def training_format(cfg: AxoConfig) -> tuple[str, Any]:
    """(`chat`, None) for chat-template training, (`alpaca`, style) for alpaca, (`raw`, None) otherwise."""
    entry = (cfg.datasets or [None])[0]
    if entry is None:
        return "chat", None
    if isinstance(entry.type, UserDefinedPrompt):
        return "alpaca", _user_style(entry.type, entry.path)
    name, _, style = (entry.type or "").partition(":")
    if name == "alpaca":
        return "alpaca", STYLES[style or "instruct"]
    if entry.type is None or name in ("completion", "input_output", "pretokenized"):
        return "raw", None
    return "chat", None


def render_prompt(cfg: AxoConfig, tokenizer: Any, request: dict[str, Any]) -> str:
    """The prompt for one request. Accepts `messages` (chat), `instruction`/`input` (alpaca) or `prompt`
    (raw text used as is); chat requests use the tokenizer's chat template with a generation prompt."""
    if "prompt" in request:
        return str(request["prompt"])
    kind, style = training_format(cfg)
    if "messages" in request or kind == "chat":
        messages = request.get("messages") or [{"role": "user", "content": str(request.get("instruction", ""))}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if kind == "alpaca":
        bos = tokenizer.bos_token or ""
        return bos + style.build(str(request.get("instruction", "")), str(request.get("input") or ""))
    raise ValueError("this run trains raw text; send {'prompt': ...}")
