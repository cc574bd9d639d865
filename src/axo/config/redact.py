"""Keep secrets out of printed configs, saved files, messages and logs.

What counts as a secret:
- the value of a secret-looking key (`hf_token`, `wandb_api_key`, `*_password`), in config data (`redact`)
  and in `--key value` command-line arguments (`redact_argv`);
- credentials inside URLs: `scheme://user:pass@host` and query parameters such as `?token=…`, `&api_key=…`,
  `&X-Amz-Signature=…` (`redact_text`);
- wherever they occur in text (`redact_text`): the values of this process's secret environment variables
  (HF_TOKEN, WANDB_API_KEY, MLFLOW_TRACKING_PASSWORD, …), the secrets given on its command line, and strings
  shaped like Hugging Face access tokens (`hf_` and 30 or more letters and digits).

`install_redaction` applies `redact_text` to every log record and uncaught traceback of the process, so a
library that prints a URL with its password (MLflow does, in its connection errors) cannot leak it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

REDACTED = "***"
# Whole-word secrets (`*_api_key`, `*_secret`, `*_password`) and access tokens (`hf_token`, `wandb_token`,
# `token`). Token *names and counts* (`eos_token`, `pad_token`, `tokens`, `tokenizer_config`) are not secrets.
_SECRET_KEY = re.compile(
    r"(^|_)(api_?key|secret|password|passwd|credentials?)(_|$)"
    r"|^(hf|hub|auth|access|api|bearer|github|wandb|comet|mlflow)?_?token$",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@", re.IGNORECASE)
# A query parameter whose name says it carries a credential (`token`, `access_token`, `api_key`, `sig`,
# `X-Amz-Credential`, ...). Broad on purpose: hiding a harmless `?monkey=1` costs nothing.
_URL_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;][\w.-]*?(?:token|key|secret|passw(?:or)?d|pwd|sig(?:nature)?|credential|auth)[\w.-]*=)"
    r"(?P<value>[^&#\s'\"<>]+)",
    re.IGNORECASE,
)
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")
_MIN_SECRET_LENGTH = 8  # shorter values (`1`, `true`) would blank out ordinary words wherever they occur


def is_secret_key(key: str) -> bool:
    """True for keys such as `hf_token`, `wandb_api_key` or `comet_api_key`; false for `eos_token`."""
    return bool(_SECRET_KEY.search(key))


def _is_secret_variable(name: str) -> bool:
    """Environment variables holding credentials: secret-looking names and any `*_TOKEN`
    (MLFLOW_TRACKING_TOKEN, HUGGING_FACE_HUB_TOKEN)."""
    return is_secret_key(name) or name.upper().endswith("_TOKEN")


def _flag_key(flag: str) -> str:
    """The config key a `--a.b-c` flag sets, as `is_secret_key` reads it (`b_c`)."""
    return flag.lstrip("-").split("=", 1)[0].split(".")[-1].replace("-", "_")


def _argv_secrets(argv: list[str]) -> list[str]:
    """The values given to secret keys in `argv` (`--hf_token X`, `--hf-token=X`, `--x.wandb_api_key X`)."""
    found = []
    for index, arg in enumerate(argv):
        if not arg.startswith("--") or not is_secret_key(_flag_key(arg)):
            continue
        _, equals, inline = arg.partition("=")
        if equals:
            found.append(inline)
        elif index + 1 < len(argv) and not argv[index + 1].startswith("--"):
            found.append(argv[index + 1])
    return found


_secret_names: tuple[int, list[str]] = (-1, [])


def _secret_variables() -> list[str]:
    """The names of the secret environment variables. Reading the whole environment costs ~2 µs a variable and
    every message pays for it, so the names are re-read only when the number of variables changes (a variable
    set or removed); their values are always read fresh."""
    global _secret_names
    if _secret_names[0] != len(os.environ):
        _secret_names = (len(os.environ), [name for name in os.environ if _is_secret_variable(name)])
    return _secret_names[1]


def secret_values() -> list[str]:
    """The secrets this process knows as plain values (secret environment variables, secrets on its command
    line), longest first so that one containing another is hidden whole."""
    values = {os.environ.get(name, "") for name in _secret_variables()}
    values.update(_argv_secrets(sys.argv))
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def redact_text(text: str) -> str:
    """`text` with every secret this module recognises (see the module docstring) replaced by `***`."""
    if not text:
        return text
    for value in secret_values():
        text = text.replace(value, REDACTED)
    if "@" in text:  # the patterns only where they can match: every message passes through here
        text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    if "=" in text:
        text = _URL_SECRET_PARAM.sub(lambda m: f"{m.group('name')}{REDACTED}", text)
    return _HF_TOKEN.sub(REDACTED, text) if "hf_" in text else text


def redact(value: Any, key: str = "") -> Any:
    """A copy of `value` with secret-looking keys replaced and secrets removed from every string."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(str(k)) and v not in (None, "") else redact(v, str(k)))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item, key) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_argv(argv: list[str]) -> list[str]:
    """A copy of a command line with the value of each secret `--key value` / `--key=value` replaced and
    credentials removed from every other argument (what a tracker that records argv may see)."""
    shown = []
    hide_next = False
    for arg in argv:
        if hide_next and not arg.startswith("--"):
            shown.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        if arg.startswith("--") and is_secret_key(_flag_key(arg)):
            flag, equals, _ = arg.partition("=")
            shown.append(f"{flag}={REDACTED}" if equals else flag)
            hide_next = not equals
            continue
        shown.append(redact_text(arg))
    return shown


def _redacting_factory(make: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed logging call, which logging reports itself when emitted
            return record
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:  # formatted once here, redacted; handlers reuse it
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return record

    factory.axo_redacts = True  # type: ignore[attr-defined]
    return factory


def _redacting_excepthook() -> Any:
    def hook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        import traceback

        sys.stderr.write(redact_text("".join(traceback.format_exception(kind, exc, tb))))

    hook.axo_redacts = True  # type: ignore[attr-defined]
    return hook


def install_redaction() -> None:
    """From now on, redact (`redact_text`) every log record created in this process, whichever library's
    logger and handler, and the traceback of an uncaught exception (`axo --debug`). Calling it again does
    nothing."""
    if not getattr(logging.getLogRecordFactory(), "axo_redacts", False):
        logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
    if not getattr(sys.excepthook, "axo_redacts", False):
        sys.excepthook = _redacting_excepthook()
