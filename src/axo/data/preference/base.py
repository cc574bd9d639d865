"""What every preference-data strategy provides, and the registry that maps Axolotl's `type:` names to them.

Preference methods (DPO, IPO, ORPO, SimPO; KTO; reward models) read rows that are already text: a strategy
turns one dataset row into the strings TRL's trainers read, and TRL tokenizes them (as it does under Axolotl,
so the same strings give the same token ids).

- pair methods (`dpo`, `ipo`, `orpo`, `simpo`, `reward`): `{"prompt": str, "chosen": str, "rejected": str}`
- `kto`: `{"prompt": str, "completion": str, "label": bool}` (desirable or not)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from axo.config.schema import AxoConfig, DatasetConfig
from axo.data.errors import data_error
from axo.data.sources import Rows
from axo.registry import Registry

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PAIR_METHODS = frozenset({"dpo", "ipo", "orpo", "simpo", "reward"})
KTO_METHODS = frozenset({"kto"})
PAIR_COLUMNS = ("prompt", "chosen", "rejected")
KTO_COLUMNS = ("prompt", "completion", "label")


def columns_for(method: str) -> tuple[str, ...]:
    """The text columns a method's rows hold."""
    return KTO_COLUMNS if method in KTO_METHODS else PAIR_COLUMNS


class PreferenceFormat(ABC):
    """Turns the rows of one dataset entry into preference rows (see the module docstring for their shape).

    Subclasses set `name` (the full `type:` they answer to, e.g. `chatml.intel`) and `methods` (which of
    PAIR_METHODS / KTO_METHODS they produce rows for), and implement :meth:`transform`.
    """

    name: ClassVar[str]
    methods: ClassVar[frozenset[str]]

    def __init__(self, tokenizer: PreTrainedTokenizerBase, cfg: AxoConfig, entry: DatasetConfig, method: str):
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.entry = entry
        self.method = method

    @abstractmethod
    def transform(self, rows: Rows) -> list[dict[str, Any]]:
        """One preference row per input row, in order. Raises DataError naming file, row and field for a
        malformed row (a missing or non-text side)."""


_FORMATS: Registry[type[PreferenceFormat]] = Registry("preference format")


def register_preference_format(cls: type[PreferenceFormat]) -> type[PreferenceFormat]:
    """Class decorator: make `cls` answer to `type: <cls.name>` for its methods. Names must be unique."""
    return _FORMATS.register(cls)


def registered_preference_formats() -> dict[str, type[PreferenceFormat]]:
    return _FORMATS.all()


def type_name(entry: DatasetConfig) -> str:
    """The registered name an entry's `type:` answers to: a mapping is `user_defined.default`, and no type at
    all means rows already hold the method's columns (`passthrough.default`, as Axolotl reads them)."""
    if entry.type is None:
        return "passthrough.default"
    return entry.type if isinstance(entry.type, str) else "user_defined.default"


def preference_format_for(tokenizer: PreTrainedTokenizerBase, cfg: AxoConfig, entry: DatasetConfig,
                          method: str) -> PreferenceFormat:
    """The strategy object for a dataset entry under `method` (a mapping `type:` is `user_defined.default`)."""
    name = type_name(entry)
    cls = _FORMATS.get(name)
    if cls is None or method not in cls.methods:
        known = sorted(n for n, c in _FORMATS.all().items() if method in c.methods)
        setting = "reward_model: true" if method == "reward" else f"rl: {method}"
        raise data_error(f"dataset type {name!r} is not a {method} dataset type; known: {', '.join(known)}.",
                         origin=entry.path, key="type",
                         hint=f"Use one of these types under `{setting}` (SFT types such as alpaca or chat_template "
                              "train nothing here).")
    return cls(tokenizer, cfg, entry, method)
