"""Few-shot scoring (infer/few_shot.py): what counts as a model's answer."""

from __future__ import annotations

import pytest

from axo.infer.few_shot import answer_lines
from axo.infer.metrics import exact_match


@pytest.mark.parametrize(("generated", "expected", "answer"), [
    ("Europe\n\n### Instruction:\nAnswer", "Europe", "Europe"),  # a base model in context goes on with a turn
    (" Oceania", "Oceania", "Oceania"),                           # ended with EOS: unchanged
    ("line one\nline two\nmore", "a\nb", "line one\nline two"),   # as many lines as the expected answer
    ("", "Paris", ""),
])
def test_an_answer_is_read_up_to_the_expected_number_of_lines(generated, expected, answer):
    assert answer_lines(generated, expected) == answer


def test_a_continued_generation_no_longer_hides_a_right_answer():
    generated = "Europe\n\n### Instruction:"
    assert not exact_match(generated, "Europe") and exact_match(answer_lines(generated, "Europe"), "Europe")
