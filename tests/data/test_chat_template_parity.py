"""Token parity of every bundled chat template (every name Axolotl 0.21.0 accepts) with Axolotl 0.21.0.

The expected input_ids and labels in tests/fixtures/chat_templates/<name>.json were produced once by
`axolotl preprocess` (Axolotl 0.21.0, its templates as shipped in that release; the command is in
tests/fixtures/chat_templates/make_fixtures.py) with the committed tiny tokenizer. Each fixture holds four
conversations: a system turn with two exchanges, two exchanges without a system turn, a system turn with
whitespace around a user content, and a system turn with tool definitions (the row's `tools`). Conversations
the Axolotl template refuses (gemma: no system role) are listed as refused, and axo must refuse them too.
The templates are axo's own, written from each model's documented format (see their headers); what they
match is Axolotl 0.21.0's template of the same name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jinja2 import TemplateError

from axo.data.chat_templates import bundled_templates
from axo.data.errors import DataError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "chat_templates"
TOKENIZER = FIXTURES / "tokenizer"
FIXTURED = sorted(path.stem for path in FIXTURES.glob("*.json") if path.stem != "renders")
# Also `tokenizer_default` (the tiny tokenizer's own ChatML template) and `jinja` (with `chat_template_jinja`
# naming tests/fixtures/chat_templates/custom.jinja).
OTHER_CHOICES = {"tokenizer_default", "jinja"}
PARITY = sorted(set(FIXTURED) & (set(bundled_templates()) | OTHER_CHOICES))
# Rows axo refuses on purpose although Axolotl renders them: axo's gemma4 renders text only and says so for
# tool definitions, rather than writing Gemma 4's tool-declaration syntax untested.
AXO_REFUSES_TOOLS = {"gemma4", "gemma4_unified"}


@pytest.fixture(scope="module")
def fixture_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TOKENIZER)


def _freeze_today(monkeypatch, made: str) -> None:
    """Some templates write today's date (transformers' `strftime_now`, e.g. mistral_v7_tekken's and
    llama3_2_vision's default system prompts): render on the day the fixture was made."""
    import datetime

    from transformers.utils import chat_template_utils

    day = datetime.datetime.fromisoformat(made)

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return day

    monkeypatch.setattr(chat_template_utils, "datetime", Frozen)


def _config(make_cfg, name: str, data: Path):
    jinja = f"chat_template_jinja: {FIXTURES / 'custom.jinja'}" if name == "jinja" else ""
    return make_cfg(f"""
        chat_template: {name}
        {jinja}
        datasets:
          - path: {data}
            type: chat_template
            field_messages: messages
        """)


@pytest.mark.parametrize("name", PARITY)
def test_same_tokens_and_labels_as_axolotl(name, make_cfg, write_jsonl, tokenize, fixture_tok, monkeypatch):
    record = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert record["axolotl"] == "0.21.0"
    assert len(record["rows"]) + len(record["refused"]) == 4, "fixture made before the tools row: regenerate it"
    rows = record["rows"]
    _freeze_today(monkeypatch, record["made"])
    refused = list(record["refused"])
    if name in AXO_REFUSES_TOOLS:
        refused += [row for row in rows if row.get("tools")]
        rows = [row for row in rows if not row.get("tools")]
    if rows:
        data = [{key: row[key] for key in ("messages", "tools") if key in row} for row in rows]
        cfg = _config(make_cfg, name, write_jsonl(data))
        samples = tokenize(cfg, tokenizer=fixture_tok)
        for row, sample in zip(rows, samples, strict=True):
            assert sample.input_ids == row["input_ids"], fixture_tok.decode(sample.input_ids)
            assert sample.labels == row["labels"]
    for row in refused:
        data = {key: row[key] for key in ("messages", "tools") if key in row}
        cfg = _config(make_cfg, name, write_jsonl([data], name="refused.jsonl"))
        with pytest.raises(DataError, match="refused the conversation"):
            tokenize(cfg, tokenizer=fixture_tok)


def test_every_bundled_template_has_a_parity_fixture():
    assert (set(bundled_templates()) | OTHER_CHOICES) - set(FIXTURED) == set()


def test_the_config_accepts_exactly_the_bundled_names():
    from axo.config.schema.names import AXOLOTL_ONLY_TEMPLATES, CHAT_TEMPLATES

    assert CHAT_TEMPLATES - {"tokenizer_default", "jinja", "mistral"} == set(bundled_templates())
    assert not AXOLOTL_ONLY_TEMPLATES & CHAT_TEMPLATES


# More shapes, checked as rendered text (tests/fixtures/chat_templates/renders.json: Axolotl 0.21.0's templates
# on its `cases`, None where the template refuses; `make_fixtures.py --renders`). axo refuses on purpose where Axolotl's template
# would write something axo has not verified or would drop messages without a word: gemma4's tools (cases 0,
# 1) and tool messages (6, dropped by Gemma 4's template without tool_calls), command_a's tool messages (6,
# dropped without tool-call ids).
AXO_REFUSES = {"gemma4": {0, 1, 6}, "gemma4_unified": {0, 1, 6}, "command_a": {6}, "command_a_tool_use": {6},
               "command_a_rag": {6}}
RENDERS = json.loads((FIXTURES / "renders.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(RENDERS["renders"]))
def test_renders_the_same_text_as_axolotl(name, fixture_tok, monkeypatch):
    from axo.data.chat_templates import builtin_template

    _freeze_today(monkeypatch, RENDERS["made"])
    template = builtin_template(name)
    for number, (case, expected) in enumerate(zip(RENDERS["cases"], RENDERS["renders"][name], strict=True)):
        try:
            got = fixture_tok.apply_chat_template(case["messages"], chat_template=template, tokenize=False,
                                                  tools=case.get("tools"),
                                                  add_generation_prompt=case.get("add_generation_prompt", False))
        except TemplateError:  # the template's raise_exception
            got = None
        wanted = None if number in AXO_REFUSES.get(name, set()) else expected
        assert got == wanted, f"case {number}"
