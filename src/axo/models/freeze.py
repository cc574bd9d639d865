"""`unfrozen_parameters`: train only the parameters whose names match, as Axolotl defines the patterns.

Axolotl's rules (its docs for `unfrozen_parameters`): each entry is a regular expression matched from the
start of the parameter name (Python's `re.match`); a `.` is a literal dot unless it is followed by `+`
(`layers.2[0-9]+` means "layers.2" then digits); an optional trailing `[i]`, `[start:end]`, `[:end]` or
`[start:]` limits training to those rows of the matched parameter (the other rows get a zero gradient, so
an optimizer without weight decay leaves them unchanged). Applied after the adapter, as Axolotl does: with
LoRA, the patterns must name the adapter's parameters too, or they are frozen.
"""

from __future__ import annotations

import re
from typing import Any

from axo.config.problems import ConfigError, Kind, Problem, Severity

_ROWS = re.compile(r"^(.+)\[([0-9]*)(?::([0-9]*))?\]$")


def parse_pattern(pattern: str) -> tuple[re.Pattern[str], tuple[int, int | None] | None]:
    """The name regex and the row range (end None: to the last row) of one `unfrozen_parameters` entry."""
    rows: tuple[int, int | None] | None = None
    found = _ROWS.match(pattern)
    if found:
        pattern, start, end = found.groups()
        if end is None:  # `[i]`: a single row (`[]` would be no range at all)
            rows = (int(start), int(start) + 1) if start else None
        else:
            rows = (int(start) if start else 0, int(end) if end else None)
    try:
        return re.compile(re.sub(r"\.(?!\+)", r"\\.", pattern)), rows
    except re.error as exc:
        raise ConfigError([Problem(Severity.ERROR, Kind.TYPE, "unfrozen_parameters",
                                   f"`{pattern}` is not a valid regular expression ({exc}).",
                                   "Write a Python regex, e.g. `^model.layers.1[0-9]+.mlp`.")]) from None


def _zero_outside(keep: list[tuple[int, int]]):
    """A gradient hook that zeroes every row outside `keep`."""
    def hook(grad):
        mask = grad.new_zeros(grad.shape[0], dtype=bool)
        for start, end in keep:
            mask[start:end] = True
        return grad * mask.view(-1, *([1] * (grad.dim() - 1)))
    return hook


def freeze_except(model: Any, patterns: list[str] | None) -> int:
    """Freeze every parameter of `model` that no pattern matches; return how many parameters train.

    Raises `ConfigError` when nothing matches: the run would train nothing.
    """
    if not patterns:
        return sum(1 for p in model.parameters() if p.requires_grad)
    parsed = [parse_pattern(pattern) for pattern in patterns]
    trained = 0
    for name, parameter in model.named_parameters():
        hits = [rows for regex, rows in parsed if regex.match(name)]
        parameter.requires_grad_(bool(hits))
        if not hits:
            continue
        trained += 1
        if all(rows is not None for rows in hits):  # a match without a range trains every row
            size = parameter.shape[0]
            parameter.register_hook(_zero_outside([(start, size if end is None else end) for start, end in hits]))
    if trained == 0:
        names = [name for name, _ in model.named_parameters()][:4]
        raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "unfrozen_parameters",
                                   f"matches none of the model's parameters, so nothing would train (names look "
                                   f"like {', '.join(names)}).",
                                   "Match the names from the start, e.g. `^model.layers.1.mlp` (with LoRA, the "
                                   "adapter's names start with `base_model.model.`).")])
    return trained
