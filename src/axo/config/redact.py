"""Keep secrets out of printed configs, saved files and logs."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"
# Whole-word secrets (`*_api_key`, `*_secret`, `*_password`) and access tokens (`hf_token`, `wandb_token`,
# `token`). Token *names and counts* (`eos_token`, `pad_token`, `tokens`, `tokenizer_config`) are not secrets.
_SECRET_KEY = re.compile(
    r"(^|_)(api_?key|secret|password|passwd|credentials?)(_|$)"
    r"|^(hf|hub|auth|access|api|bearer|github|wandb|comet|mlflow)?_?token$",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """True for keys such as `hf_token`, `wandb_api_key` or `comet_api_key`; false for `eos_token`."""
    return bool(_SECRET_KEY.search(key))


def redact(value: Any, key: str = "") -> Any:
    """A copy of `value` with secret-looking keys replaced and credentials stripped from URLs."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(str(k)) and v not in (None, "") else redact(v, str(k)))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item, key) for item in value]
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", value)
    return value
