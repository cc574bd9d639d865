"""Deprecation warnings one library raises about another's call, silenced in this one place.

axo itself uses the new names where the installed transformers has them (`train/arguments.py`). What is
left comes from peft calling names that transformers 5.24 deprecated: axo cannot change those calls, and
the warning would ask the user to change code that is not theirs. Each filter matches one exact message
and names the versions it was written against; `tests/train/test_upstream_warnings.py` fails when upstream
stops emitting it, and then the filter goes.
"""

from __future__ import annotations

import re
import warnings

KNOWN_MESSAGES = (
    # peft 0.21.2 reads `model.is_gradient_checkpointing` in PeftModel.__init__ (every adapter run and
    # every adapter load); transformers 5.24 deprecated the property.
    "`is_gradient_checkpointing` is deprecated and will be removed in v6. Use `is_activation_checkpointing` "
    "instead.",
    # peft 0.21.2's prepare_model_for_kbit_training (QLoRA kept in float32) calls `gradient_checkpointing_enable`,
    # deprecated in transformers 5.24.
    "`gradient_checkpointing_enable` is deprecated and will be removed in v6. Use `activation_checkpointing_enable` "
    "instead.",
)


def silence_upstream_deprecations() -> None:
    """Ignore exactly the FutureWarnings in KNOWN_MESSAGES, process-wide; every other warning still shows.
    Calling it again adds nothing (the warnings module replaces an identical filter)."""
    for message in KNOWN_MESSAGES:
        warnings.filterwarnings("ignore", message=re.escape(message) + r"\Z", category=FutureWarning)
