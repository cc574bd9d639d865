"""OpenAI content parts in chat `content`: text parts give exactly the tokens of the same conversation written
with string content; other parts are refused by row, message and part type (issue 16)."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError

PLAIN = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name a colour of the sky."},
    {"role": "assistant", "content": "Blue, on a clear day."},
]
PARTS = [
    {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
    {"role": "user", "content": [{"type": "text", "text": "Name a colour"}, {"type": "text", "text": " of the sky."}]},
    {"role": "assistant", "content": [{"type": "text", "text": "Blue,"}, {"type": "text", "text": ""},
                                      {"type": "text", "text": " on a clear day."}]},
]


def _samples(make_cfg, write_jsonl, tokenize, rows, name, template="chatml"):
    path = write_jsonl(rows, name)
    return tokenize(make_cfg(f"chat_template: {template}\ndatasets:\n  - path: {path}\n    type: chat_template\n"))


@pytest.mark.parametrize("template", ["chatml", "tokenizer_default"])
def test_text_parts_give_the_tokens_of_string_content(make_cfg, write_jsonl, tokenize, template):
    (plain,) = _samples(make_cfg, write_jsonl, tokenize, [{"messages": PLAIN}], "plain.jsonl", template)
    (parts,) = _samples(make_cfg, write_jsonl, tokenize, [{"messages": PARTS}], "parts.jsonl", template)
    assert parts.input_ids == plain.input_ids
    assert parts.labels == plain.labels
    assert any(label != -100 for label in parts.labels)  # the assistant turn is trained, as with strings


def test_parts_are_joined_without_separator(tok, make_cfg, write_jsonl, tokenize):
    (sample,) = _samples(make_cfg, write_jsonl, tokenize, [{"messages": PARTS}], "parts.jsonl")
    text = tok.decode(sample.input_ids)
    assert "Name a colour of the sky." in text and "Blue, on a clear day." in text
    assert "'type'" not in text and "[{" not in text  # never the list's repr


@pytest.mark.parametrize("part, found", [
    ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}, "of type 'image_url'"),
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "of type 'input_audio'"),
    ({"type": "text", "text": ["a"]}, "its 'text' is a list"),
    ({"text": "no type"}, "is an object (JSON dict)"),
    ("a bare string", "is a string 'a bare string'"),
])
def test_other_parts_are_refused_by_row_message_and_part(make_cfg, write_jsonl, tokenize, part, found):
    user = {"role": "user", "content": [{"type": "text", "text": "Look:"}, part]}
    rows = [{"messages": PLAIN}, {"messages": [user, PLAIN[2]]}]
    with pytest.raises(DataError) as caught:
        _samples(make_cfg, write_jsonl, tokenize, rows, "mixed.jsonl")
    (problem,) = caught.value.problems
    assert problem.line == 2 and problem.origin.endswith("mixed.jsonl")
    assert problem.key == "messages[0].content[1]"
    assert "row 2, message 0: content part 1" in problem.message and found in problem.message
