"""Built-in chat templates (axo's own, one per Axolotl 0.21 name; see README.md here) and template resolution."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from axo.data.errors import data_error

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# `mistral` is axo's own name for mistral_v1. gemma4_unified is the same template as gemma4 in Axolotl 0.21.
# gemma3n and qwen3_5 differ from the named template only in how image, audio or video parts are marked;
# axo passes text-only contents (formats/chat_template.py `content_text`), so for axo they render the same
# (parity-tested).
# aya is Cohere's Command-R format (Aya Expanse model card).
ALIASES = {"mistral": "mistral_v1", "gemma3n": "gemma3", "qwen3_5": "qwen3", "gemma4_unified": "gemma4", "aya": "cohere"}
OWN_NAMES = {"mistral"}
# Names that are one template rendered with its `variant` variable set (what differs is in the template).
VARIANTS = {"command_a_tool_use": ("command_a", "tool_use"), "command_a_rag": ("command_a", "rag")}
FALLBACK_PREFIX = "tokenizer_default_fallback_"


def bundled_templates() -> list[str]:
    """The Axolotl template names axo bundles (a `NAME.jinja` file or an alias of one), sorted."""
    files = {entry.name[:-6] for entry in resources.files(__package__).iterdir() if entry.name.endswith(".jinja")}
    return sorted(files | (set(ALIASES) - OWN_NAMES) | set(VARIANTS))


def builtin_template(name: str) -> str:
    """The Jinja source of a bundled template."""
    name = ALIASES.get(name, name)
    name, variant = VARIANTS.get(name, (name, None))
    prelude = f"{{%- set variant = '{variant}' -%}}" if variant else ""
    try:
        return prelude + resources.files(__package__).joinpath(f"{name}.jinja").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise data_error(f"chat template {name!r} is not bundled with axo.", key="chat_template",
                         hint="Use `tokenizer_default` (the model's own template) or `chat_template_jinja`.") from None


def _jinja_text(value: str, config_dir: Path | None) -> str:
    candidate = Path(value).expanduser()
    if not candidate.is_absolute() and config_dir is not None and not candidate.exists():
        candidate = config_dir / candidate
    if value.endswith((".jinja", ".j2")) or (len(value) < 4096 and "\n" not in value and candidate.is_file()):
        if not candidate.is_file():
            raise data_error(f"chat template file {value!r} not found.", key="chat_template_jinja")
        return candidate.read_text(encoding="utf-8")
    return value


def resolve_chat_template(name: str, jinja: str | None, tokenizer: PreTrainedTokenizerBase,
                          config_dir: Path | None = None) -> str:
    """The Jinja source for `chat_template: name` (with `chat_template_jinja` for `jinja`)."""
    if name == "tokenizer_default" or name.startswith(FALLBACK_PREFIX):
        own = tokenizer.chat_template
        if isinstance(own, dict):  # several named templates: the default one
            own = own.get("default")
        if own:
            return own
        if name.startswith(FALLBACK_PREFIX):
            return builtin_template(name[len(FALLBACK_PREFIX):])
        raise data_error(f"the tokenizer {tokenizer.name_or_path!r} has no chat template.", key="chat_template",
                         hint="Set `chat_template:` to a built-in name (chatml, llama3, qwen_25, …) or give "
                              "`chat_template_jinja:`.")
    if name == "jinja":
        if not jinja:
            raise data_error("`chat_template: jinja` needs `chat_template_jinja`.", key="chat_template_jinja")
        return _jinja_text(jinja, config_dir)
    if name.endswith((".jinja", ".j2")):
        return _jinja_text(name, config_dir)
    return builtin_template(name)
