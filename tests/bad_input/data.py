"""Bad input, round two (issue 16): data."""

from __future__ import annotations

from bad_input import Case

CASES: list[Case] = []
