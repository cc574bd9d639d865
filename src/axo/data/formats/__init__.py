"""Prompt formats, one module each; importing this package registers all of them."""

from axo.data.formats import (  # noqa: F401  (each module registers its format)
    alpaca,
    chat_template,
    classification,
    completion,
    input_output,
    pretokenized,
)
from axo.data.formats.base import (
    PromptFormat,
    Sample,
    format_for,
    register_format,
    registered_formats,
)

__all__ = ["PromptFormat", "Sample", "format_for", "register_format", "registered_formats"]
