"""Generation metrics on outputs with known answers."""

from __future__ import annotations

import pytest

from axo.infer import metrics


def test_exact_and_normalized_match():
    assert metrics.exact_match(" Paris ", "Paris") and not metrics.exact_match("paris", "Paris")
    assert metrics.normalized_match("The Paris!", "paris") and not metrics.normalized_match("Lyon", "paris")
    assert metrics.exact_match("1", ["0", "1"])  # a list of acceptable answers


@pytest.mark.parametrize("text, valid", [('{"a": 1}', True), ('```json\n{"a": [1, 2]}\n```', True), ("[1, 2", False),
                                         ("Sure! {\"a\": 1}", False), ("null", True)])
def test_json_valid(text, valid):
    assert metrics.json_valid(text) is valid


def test_schema_valid():
    schema = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    assert metrics.schema_valid('{"name": "x"}', schema)
    assert not metrics.schema_valid('{"name": 3}', schema) and not metrics.schema_valid("nope", schema)


def test_regex_rates_with_a_dangerous_command_list():
    outputs = ["ls -la", "rm -rf /", "echo hi && rm -rf ~", "cat file"]
    rates = metrics.regex_rates(outputs, must_match=[r"^\w"], must_not_match=[r"rm\s+-rf\s+[/~]", r"mkfs"])
    assert rates == {"must_match_rate": 1.0, "must_not_match_violation_rate": 0.5}


def test_majority_vote_and_agreement():
    answer, share = metrics.majority(["Paris", "paris.", "Lyon", "PARIS"])
    assert metrics.normalize(answer) == "paris" and share == 0.75


@pytest.mark.parametrize("text, chosen", [
    ("billing", "billing"), ("This message is about Billing.", "billing"),
    ("either shipping or billing", "shipping"),  # the first one named
    ("The team is accounting.", None),  # whole words only: "accounting" is not "account"
    ("no idea", None),
])
def test_first_choice_is_the_first_label_named_as_a_whole_word(text, chosen):
    assert metrics.first_choice(text, ["billing", "shipping", "account", "technical"]) == chosen


def test_a_longer_label_wins_over_one_it_contains():
    assert metrics.first_choice("Technical support, please", ["technical", "technical support"]) == "technical support"


def test_choice_match_and_majority_baseline():
    assert metrics.choice_match("It is about Shipping!", "shipping", ["billing", "shipping"])
    assert not metrics.choice_match("billing", "shipping", ["billing", "shipping"])
    assert metrics.majority_baseline(["yes", "no", "yes", "Yes.", ["no", "nope"]]) == ("yes", 0.6)
