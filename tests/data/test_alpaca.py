"""`type: alpaca` and the user-defined `type:` mapping, checked token for token."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError

M = -100
WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
              "Write a response that appropriately completes the request.\n\n"
              "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")


def _expected(tok, prompt: str, output: str, train_on_inputs: bool) -> tuple[list[int], list[int]]:
    prompt_ids = tok(prompt)["input_ids"]
    assert prompt_ids[0] == tok.bos_token_id
    output_ids = tok(output)["input_ids"]
    assert output_ids[0] == tok.bos_token_id
    response = output_ids[1:] + [tok.eos_token_id]
    labels = (list(prompt_ids) if train_on_inputs else [M] * len(prompt_ids)) + response
    return prompt_ids + response, labels


ROWS = [
    {"instruction": "Translate the sentence into French.", "input": "The quick brown fox.", "output": "Le renard."},
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat fruits."},
    {"instruction": "Write a short poem about the sea.", "output": "Waves 1 2 3"},
]


@pytest.mark.parametrize("train_on_inputs", [False, True])
def test_alpaca_exact_ids_and_labels(tok, make_cfg, write_jsonl, tokenize, train_on_inputs):
    path = write_jsonl(ROWS)
    cfg = make_cfg(f"train_on_inputs: {str(train_on_inputs).lower()}\n"
                   f"datasets:\n  - path: {path}\n    type: alpaca\n")
    samples = tokenize(cfg)
    assert [s.row for s in samples] == [0, 1, 2]
    prompts = [
        WITH_INPUT.format(instruction="Translate the sentence into French.", input="The quick brown fox."),
        NO_INPUT.format(instruction="Give three tips for staying healthy."),
        NO_INPUT.format(instruction="Write a short poem about the sea."),
    ]
    for sample, prompt, row in zip(samples, prompts, ROWS):
        ids, labels = _expected(tok, prompt, row["output"], train_on_inputs)
        assert sample.input_ids == ids
        assert sample.labels == labels
    first = samples[0]
    # hand check of the shape: BOS first, masked; EOS last, trained
    assert first.input_ids[0] == tok.bos_token_id and first.input_ids[-1] == tok.eos_token_id
    assert first.labels[-1] == tok.eos_token_id
    assert (first.labels[0] == M) is (not train_on_inputs)
    assert first.input_ids.count(tok.bos_token_id) == 1
    assert tok.decode(first.input_ids, skip_special_tokens=True) == prompts[0] + "Le renard."


def test_alpaca_prompt_masking_boundary(tok, make_cfg, write_jsonl, tokenize):
    path = write_jsonl([ROWS[1]])
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: alpaca\n")
    (sample,) = tokenize(cfg)
    n_prompt = len(tok(NO_INPUT.format(instruction=ROWS[1]["instruction"]))["input_ids"])
    trained = [label for label in sample.labels if label != M]
    assert sample.labels[:n_prompt] == [M] * n_prompt
    assert trained == sample.input_ids[n_prompt:]
    assert tok.decode(trained) == "Eat fruits.</s>"


@pytest.mark.parametrize("style, prompt", [
    ("chatml", "<|im_start|>system\nBelow is an instruction that describes a task, paired with an input that provides "
               "further context. Write a response that appropriately completes the request.<|im_end|>\n"
               "<|im_start|>user\nSay hi\nto Bob<|im_end|>\n<|im_start|>assistant\n"),
    ("chat", "SYSTEM: Below is an instruction that describes a task, paired with an input that provides further "
             "context. Write a response that appropriately completes the request.\nUSER: Say hi\nto Bob\nASSISTANT:"),
])
def test_alpaca_styles_prompt_text(tok, make_cfg, write_jsonl, tokenize, style, prompt):
    path = write_jsonl([{"instruction": "Say hi", "input": "to Bob", "output": "hi Bob"}])
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: alpaca:{style}\n")
    (sample,) = tokenize(cfg)
    ids, labels = _expected(tok, prompt, "hi Bob", False)
    assert sample.input_ids == ids
    assert sample.labels == labels


@pytest.mark.parametrize("style, prompt", [
    ("chatml", "<|im_start|>system\nBelow is an instruction that describes a task. Write a response that "
               "appropriately completes the request.<|im_end|>\n<|im_start|>user\nSay hi<|im_end|>\n"
               "<|im_start|>assistant\n"),
    ("chat", "SYSTEM: Below is an instruction that describes a task. Write a response that appropriately completes "
             "the request.\nUSER: Say hi\nASSISTANT:"),
])
def test_alpaca_styles_without_input(tok, make_cfg, write_jsonl, tokenize, style, prompt):
    path = write_jsonl([{"instruction": "Say hi", "output": "hi"}])
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: alpaca:{style}\n")
    (sample,) = tokenize(cfg)
    assert sample.input_ids == _expected(tok, prompt, "hi", False)[0]


def test_user_defined_type_mapping(tok, make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"q": "What is 2+2?", "ctx": "math", "a": "4"}, {"q": "Hello", "ctx": "", "a": "Hi"}])
    cfg = make_cfg(f"""\
        datasets:
          - path: {path}
            type:
              field_instruction: q
              field_input: ctx
              field_output: a
              system_prompt: "SYS. "
              format: "[INST] {{instruction}} | {{input}} [/INST]"
              no_input_format: "[INST] {{instruction}} [/INST]"
        """)
    samples = tokenize(cfg)
    expected = [("SYS. [INST] What is 2+2? | math [/INST]", "4"), ("SYS. [INST] Hello [/INST]", "Hi")]
    assert len(samples) == 2
    for sample, (prompt, output) in zip(samples, expected):
        ids, labels = _expected(tok, prompt, output, False)
        assert sample.input_ids == ids
        assert sample.labels == labels


def test_user_defined_mapping_without_system_prompt(tok, make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"instruction": "Name a color", "output": "red"}])
    cfg = make_cfg(f"""\
        datasets:
          - path: {path}
            type:
              field_output: output
              format: "Q: {{instruction}}\\nA: "
        """)
    (sample,) = tokenize(cfg)
    assert sample.input_ids == _expected(tok, "Q: Name a color\nA: ", "red", False)[0]


def test_missing_instruction_names_file_row_and_field(make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"instruction": "a", "output": "b"}, {"output": "no instruction here"}])
    # a blank line first shifts the second row to line 3
    path.write_text("\n" + path.read_text())
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: alpaca\n")
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    (problem,) = caught.value.problems
    assert problem.origin == str(path)
    assert problem.line == 3
    assert problem.key == "instruction"
    assert "instruction" in problem.message and "row 3" in problem.message
