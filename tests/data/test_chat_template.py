"""`type: chat_template`: which tokens of a rendered conversation carry loss, checked token for token."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError
from axo.data.formats import format_for
from axo.data.sources import read_rows

M = -100
SYSTEM = "You are a helpful assistant."
CONVERSATION = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "Hello, how are you today?"},
    {"role": "assistant", "content": "I am fine, thank you."},
]


def chatml(tok, enc, turns, train_content=(), train_end=()):
    """Expected ids/labels for ChatML `<|im_start|>{role}\\n{content}<|im_end|>\\n` per turn, built from pieces.

    `train_content` / `train_end`: indices of turns whose content / `<|im_end|>` carry loss.
    """
    start, end = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    ids, labels = [], []
    for number, turn in enumerate(turns):
        header = [start] + enc(turn["role"] + "\n")
        content = enc(turn["content"])
        newline = enc("\n")
        ids += header + content + [end] + newline
        labels += [M] * len(header)
        labels += content if number in train_content else [M] * len(content)
        labels += [end] if number in train_end else [M]
        labels += [M] * len(newline)
    text = "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in turns)
    assert ids == enc(text)  # the pieces tokenize exactly as the whole text does
    return ids, labels


def _cfg(make_cfg, write_jsonl, options="", top="chat_template: chatml\n", rows=None):
    path = write_jsonl(rows or [{"messages": CONVERSATION}])
    body = top + f"datasets:\n  - path: {path}\n    type: chat_template\n"
    body += "".join(f"    {line}\n" for line in options.splitlines() if line)
    return make_cfg(body)


def _one(tokenize, cfg):
    (sample,) = tokenize(cfg)
    return sample


def test_eot_im_end_trains_assistant_content_and_its_im_end(tok, enc, make_cfg, write_jsonl, tokenize):
    cfg = _cfg(make_cfg, write_jsonl, top="chat_template: chatml\neot_tokens: ['<|im_end|>']\n")
    sample = _one(tokenize, cfg)
    ids, labels = chatml(tok, enc, CONVERSATION, train_content={2, 4}, train_end={2, 4})
    assert sample.input_ids == ids
    assert sample.labels == labels
    trained = [t for t in sample.labels if t != M]
    assert tok.decode(trained) == "The capital of France is Paris.<|im_end|>I am fine, thank you.<|im_end|>"


def test_default_eot_is_eos_which_chatml_never_emits(tok, enc, make_cfg, write_jsonl, tokenize):
    sample = _one(tokenize, _cfg(make_cfg, write_jsonl))
    ids, labels = chatml(tok, enc, CONVERSATION, train_content={2, 4})
    assert tok.eos_token_id not in sample.input_ids
    assert sample.input_ids == ids
    assert sample.labels == labels


def test_tokenizer_default_template_is_the_tokenizers_chatml(tok, enc, make_cfg, write_jsonl, tokenize):
    cfg = _cfg(make_cfg, write_jsonl, top="eot_tokens: ['<|im_end|>']\n")
    assert cfg.datasets[0].chat_template == "tokenizer_default"
    sample = _one(tokenize, cfg)
    assert (sample.input_ids, sample.labels) == chatml(tok, enc, CONVERSATION, {2, 4}, {2, 4})


@pytest.mark.parametrize("options, train_end", [
    ("train_on_eos: all", {0, 1, 2, 3, 4}),   # train_on_eot follows train_on_eos
    ("train_on_eot: all", {0, 1, 2, 3, 4}),
    ("train_on_eot: last", {4}),
    ("train_on_eot: none", set()),
    ("train_on_eot: turn", {2, 4}),
])
def test_train_on_eot_rules(tok, enc, make_cfg, write_jsonl, tokenize, options, train_end):
    cfg = _cfg(make_cfg, write_jsonl, options, top="chat_template: chatml\neot_tokens: ['<|im_end|>']\n")
    sample = _one(tokenize, cfg)
    ids, labels = chatml(tok, enc, CONVERSATION, train_content={2, 4}, train_end=train_end)
    assert sample.input_ids == ids
    assert sample.labels == labels


def test_top_level_train_on_eos_is_the_default(tok, enc, make_cfg, write_jsonl, tokenize):
    cfg = _cfg(make_cfg, write_jsonl, top="chat_template: chatml\neot_tokens: ['<|im_end|>']\ntrain_on_eos: last\n")
    sample = _one(tokenize, cfg)
    assert sample.labels == chatml(tok, enc, CONVERSATION, {2, 4}, {4})[1]


def test_roles_to_train_user_and_assistant(tok, enc, make_cfg, write_jsonl, tokenize):
    cfg = _cfg(make_cfg, write_jsonl, "roles_to_train: [user, assistant]",
               top="chat_template: chatml\neot_tokens: ['<|im_end|>']\n")
    sample = _one(tokenize, cfg)
    assert sample.labels == chatml(tok, enc, CONVERSATION, {1, 2, 3, 4}, {1, 2, 3, 4})[1]


def test_per_message_training_false(tok, enc, make_cfg, write_jsonl, tokenize):
    messages = [dict(m) for m in CONVERSATION]
    messages[2]["training"] = False
    cfg = _cfg(make_cfg, write_jsonl, top="chat_template: chatml\neot_tokens: ['<|im_end|>']\n",
               rows=[{"messages": messages}])
    sample = _one(tokenize, cfg)
    ids, labels = chatml(tok, enc, CONVERSATION, {4}, {4})
    assert (sample.input_ids, sample.labels) == (ids, labels)


def test_per_message_training_true_on_user(tok, enc, make_cfg, write_jsonl, tokenize):
    messages = [dict(m) for m in CONVERSATION]
    messages[1]["training"] = True
    cfg = _cfg(make_cfg, write_jsonl, top="chat_template: chatml\neot_tokens: ['<|im_end|>']\n",
               rows=[{"messages": messages}])
    assert _one(tokenize, cfg).labels == chatml(tok, enc, CONVERSATION, {1, 2, 4}, {1, 2, 4})[1]


def test_field_system_puts_the_rows_system_prompt_first(tok, enc, make_cfg, write_jsonl, tokenize):
    rows = [{"sys": "Be brief.", "messages": CONVERSATION[1:3]}]
    cfg = _cfg(make_cfg, write_jsonl, "field_system: sys", top="chat_template: chatml\neot_tokens: ['<|im_end|>']\n",
               rows=rows)
    sample = _one(tokenize, cfg)
    turns = [{"role": "system", "content": "Be brief."}, *CONVERSATION[1:3]]
    assert (sample.input_ids, sample.labels) == chatml(tok, enc, turns, {2}, {2})


def test_drop_system_message(tok, enc, make_cfg, write_jsonl, tokenize):
    cfg = _cfg(make_cfg, write_jsonl, "drop_system_message: true",
               top="chat_template: chatml\neot_tokens: ['<|im_end|>']\n")
    sample = _one(tokenize, cfg)
    assert (sample.input_ids, sample.labels) == chatml(tok, enc, CONVERSATION[1:], {1, 3}, {1, 3})
    assert enc(SYSTEM)[0] not in sample.input_ids[:3]


def test_sharegpt_rows(tok, enc, make_cfg, write_jsonl, tokenize):
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    rows = [{"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in CONVERSATION]}]
    path = write_jsonl(rows)
    cfg = make_cfg(f"chat_template: chatml\neot_tokens: ['<|im_end|>']\n"
                   f"datasets:\n  - path: {path}\n    type: sharegpt\n")
    entry = cfg.datasets[0]
    assert entry.type == "chat_template" and entry.field_messages == "conversations"
    sample = _one(tokenize, cfg)
    assert (sample.input_ids, sample.labels) == chatml(tok, enc, CONVERSATION, {2, 4}, {2, 4})


def test_several_rows_keep_their_row_index(tok, enc, make_cfg, write_jsonl, tokenize):
    rows = [{"messages": CONVERSATION[1:3]}, {"messages": CONVERSATION[3:5]}]
    cfg = _cfg(make_cfg, write_jsonl, top="chat_template: chatml\neot_tokens: ['<|im_end|>']\n", rows=rows)
    first, second = tokenize(cfg)
    assert (first.row, second.row) == (0, 1)
    assert (second.input_ids, second.labels) == chatml(tok, enc, CONVERSATION[3:5], {1}, {1})


def test_alpaca_builtin_template(tok, enc, make_cfg, write_jsonl, tokenize):
    messages = [{"role": "user", "content": "Name a color."}, {"role": "assistant", "content": "Red."}]
    cfg = _cfg(make_cfg, write_jsonl, top="chat_template: alpaca\n", rows=[{"messages": messages}])
    sample = _one(tokenize, cfg)
    head = [tok.bos_token_id] + enc("### Instruction:\nName a color.\n\n### Response:\n")
    answer = enc("Red.")
    assert sample.input_ids == head + answer + [tok.eos_token_id]
    # default eot is EOS, which this template emits after the answer: trained with it
    assert sample.labels == [M] * len(head) + answer + [tok.eos_token_id]


def test_llama3_builtin_template_renders(tok, make_cfg, write_jsonl, tokenize):
    cfg = _cfg(make_cfg, write_jsonl, top="chat_template: llama3\n")
    sample = _one(tokenize, cfg)
    text = tok.decode(sample.input_ids)
    for message in CONVERSATION:
        assert message["content"] in text
    assert "<|start_header_id|>assistant<|end_header_id|>" in text
    trained = tok.decode([t for t in sample.labels if t != M])
    assert trained == "The capital of France is Paris.I am fine, thank you."


def test_tokenizer_without_template_and_tokenizer_default(tiny_tokenizer_dir, make_cfg, write_jsonl):
    from transformers import AutoTokenizer

    bare = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    bare.chat_template = None
    cfg = _cfg(make_cfg, write_jsonl, top="chat_template: tokenizer_default\n")
    entry = cfg.datasets[0]
    with pytest.raises(DataError) as caught:
        format_for(bare, cfg, entry).tokenize(read_rows(entry))
    (problem,) = caught.value.problems
    assert problem.key == "chat_template" or "chat_template" in problem.message
    assert "chat_template" in str(caught.value)


def test_message_without_content_is_an_error_naming_the_row(make_cfg, write_jsonl, tokenize):
    rows = [{"messages": CONVERSATION[1:3]}, {"messages": [{"role": "user", "text": "hi"}]}]
    cfg = _cfg(make_cfg, write_jsonl, rows=rows)
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    (problem,) = caught.value.problems
    assert problem.line == 2 and problem.origin.endswith("data.jsonl")
    assert "content" in problem.message
