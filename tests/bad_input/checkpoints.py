"""Bad input, round two (issue 16): checkpoints."""

from __future__ import annotations

from bad_input import Case

CASES: list[Case] = []
