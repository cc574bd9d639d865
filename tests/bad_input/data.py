"""Bad input, round two (issue 16): data that would train wrong — prompt fields of the wrong type, content
parts, no trained token, broken chat templates and format strings, files that cannot be read as written.

The comment above each group says how axo behaved before issue 16 (traceback / silent / misleading / clean)."""

from __future__ import annotations

from pathlib import Path

from bad_input import Case, raw

CHAT = "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: chat_template\n"
PLAIN = "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n"  # pre-tokenized rows
SEGMENTS = "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: input_output\n"
MAPPING = ("learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type:\n      field_instruction: instruction\n"
           "      field_output: output\n      format: '{fmt}'\n")


def _alpaca(**bad) -> tuple[dict, ...]:
    good = {"instruction": "Give a tip.", "input": "", "output": "Drink water."}
    return good, {**good, **bad}, good


def _chat(*messages: dict) -> tuple[dict, ...]:
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    return good, {"messages": list(messages)}


def _file(name: str, text: str | bytes):
    def setup(folder: Path, model: Path) -> None:
        target = folder / name
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
    return setup


def _mamba_base(folder: Path, model: Path) -> None:
    """The tiny model's files under `m/`, its config saying `mamba` (an architecture without a classifier class)."""
    import json
    import shutil

    shutil.copytree(model, folder / "m")
    (folder / "m" / "config.json").write_text(json.dumps({"model_type": "mamba", "vocab_size": 600}))


USER = {"role": "user", "content": "hi"}
BROKEN_JINJA = "{% for m in messages %}\n{{ m['role'] }}: {{ m['content'] }\n{% endfor %}\n"

CASES = [
    # ---- prompt fields that are not text (before: silent, trained as their Python repr / str()) ----
    Case("data-alpaca-list-output", "an alpaca output that is a JSON list", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n", (),
         ("data.jsonl:2", "'output' is a list (JSON array) ['a', 'b']", "not a string"), _alpaca(output=["a", "b"])),
    Case("data-alpaca-dict-instruction", "an alpaca instruction that is a JSON object", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n", (),
         ("data.jsonl:2", "'instruction' is an object (JSON dict)"), _alpaca(instruction={"text": "Give a tip."})),
    Case("data-alpaca-number-output", "an alpaca output that is a number", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n", (),
         ("data.jsonl:2", "'output' is a number 42", 'Quote it, e.g. "42"'), _alpaca(output=42)),
    Case("data-alpaca-bool-input", "an alpaca input that is true", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n", (),
         ("data.jsonl:2", "'input' is a boolean True"), _alpaca(input=True)),
    Case("data-alpaca-nan-output", "an alpaca output written as the bare JSON word NaN", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n", (),
         ("data.jsonl:1", "'output' is a number nan"), raw('{"instruction": "a", "output": NaN}\n')),
    Case("data-completion-list-text", "a completion text that is a list of strings", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: completion\n", (),
         ("data.jsonl:1", "'text' is a list"), ({"text": ["first part", "second part"]},)),
    Case("data-segment-number-text", "an input_output segment whose text is a number", "preprocess", SEGMENTS, (),
         ("data.jsonl:1", "segments[1].text is a number 7"),
         ({"segments": [{"label": False, "text": "Q: "}, {"label": True, "text": 7}]},)),
    # before: misleading ("has no 'output' field" for a field that is there)
    Case("data-alpaca-null-output", "an alpaca output that is null", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n", (),
         ("data.jsonl:2", "'output' is null"), _alpaca(output=None), absent=("has no 'output' field",)),
    # ---- chat content and messages (before: silent, content parts trained as their repr) ----
    Case("data-chat-image-part", "an OpenAI image_url content part in a chat message", "preprocess", CHAT, (),
         ("data.jsonl:2", "message 0", "content part 1 is of type 'image_url'", "text-only"),
         _chat({"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
               {"role": "assistant", "content": "A cat."})),
    Case("data-chat-part-without-type", "content parts without a type", "preprocess", CHAT, (),
         ("data.jsonl:2", "content part 0 is an object", '"type": "text"'),
         _chat({"role": "user", "content": [{"text": "hi"}]}, {"role": "assistant", "content": "hello"})),
    Case("data-chat-content-object", "a message content that is an object", "preprocess", CHAT, (),
         ("data.jsonl:2", "message 1: the content is an object"),
         _chat(USER, {"role": "assistant", "content": {"text": "hello"}})),
    Case("data-chat-role-null", "a message whose role is null", "preprocess", CHAT, (),
         ("data.jsonl:2", "message 1: 'role' is null, not a role name"),
         _chat(USER, {"role": None, "content": "hello"})),
    Case("data-chat-training-flag-string", 'a per-message training flag written as the string "false"', "preprocess",
         CHAT, (), ("data.jsonl:2", "message 1: 'training' is a string 'false', not true or false"),
         _chat(USER, {"role": "assistant", "content": "hello", "training": "false"})),
    # before: traceback (AttributeError: 'str' object has no attribute 'get')
    Case("data-chat-train-detail-string", "a train_detail that is a string", "preprocess", CHAT, (),
         ("data.jsonl:2", "message 1: 'train_detail' is a string", "begin_offset"),
         _chat(USER, {"role": "assistant", "content": "hello", "train_detail": "all"})),
    # before: clean, but without the type found
    Case("data-chat-messages-string", "messages double-encoded as a JSON string", "preprocess", CHAT, (),
         ("data.jsonl:1", "`messages` is a string", "not a string holding one"),
         ({"messages": '[{"role": "user", "content": "hi"}]'},)),
    # ---- nothing to learn (before: silent — "0 trained (0.0%)", exit 0, then a NaN loss in train) ----
    Case("data-zero-trained-roles", "chat roles the template does not know, so no turn is trained", "preprocess",
         CHAT, (), ("datasets[0]", "all 2 of its samples have no trained token", "roles_to_train: [assistant]", "bot",
                    "roles: {assistant: [bot]}"),
         ({"messages": [{"role": "human", "content": "hi"}, {"role": "bot", "content": "hello"}]},) * 2),
    Case("data-zero-trained-segments", "input_output rows with every segment label false", "preprocess", SEGMENTS,
         (), ("datasets[0]", "its only sample has no trained token", "label: true"),
         ({"segments": [{"label": False, "text": "Q: hi "}, {"label": False, "text": "A: hello"}]},)),
    # before: misleading (`axo train` trained it and blamed the NaN loss on the learning rate)
    Case("data-zero-trained-labels", "pre-tokenized rows whose labels are all -100", "train",
         PLAIN + "max_steps: 1\noutput_dir: out\n", (), ("all 2 of its samples have no trained token", "-100"),
         ({"input_ids": [1, 5, 6, 2], "labels": [-100] * 4},) * 2),
    # before: silent
    Case("data-chat-empty-answers", "chat conversations whose assistant turns are all empty", "preprocess", CHAT, (),
         ("all 2 of its samples have no trained token", "Fill the assistant turns"),
         ({"messages": [USER, {"role": "assistant", "content": ""}]},) * 2),
    Case("data-alpaca-empty-outputs", "alpaca rows whose outputs are all empty", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n", (),
         ("only special tokens", "every text to learn is empty", "'output'"),
         ({"instruction": "Give a tip.", "output": ""},) * 3),
    Case("data-val-split-took-trained", "val_set_size holds out the only samples with a trained token",
         "preprocess", PLAIN + "val_set_size: 1\nshuffle_merged_datasets: false\n", (),
         ("the train split holds 2 samples and none has a trained token", "val_set_size"),
         ({"input_ids": [1, 5, 2], "labels": [-100] * 3}, {"input_ids": [1, 6, 2], "labels": [-100] * 3},
          {"input_ids": [1, 7, 2]})),
    Case("data-truncate-cut-answers", "truncation at sequence_len cuts every answer away", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"
         "sequence_len: 16\nexcess_length_strategy: truncate\n", (),
         ("no sample kept has a trained token", "sequence_len 16", "truncate", "cut every trained token off")),
    # before: misleading ("lower learning_rate" for a batch with no trained token)
    Case("data-nan-untrained-batch", "a training step whose batch has no trained token", "train",
         PLAIN + "max_steps: 1\nmicro_batch_size: 1\nlogging_steps: 1\nshuffle_merged_datasets: false\noutput_dir: out\n",
         (), ("the loss became nan at step 1", "no token of the batches of step 1 carried loss", "not the learning rate"),
         ({"input_ids": [1, 5, 6, 2], "labels": [-100] * 4},) * 7 + ({"input_ids": [1, 7, 8, 2]},)),
    # ---- chat templates (before: misleading, a syntax error blamed on data row 1) ----
    Case("data-template-syntax", "a Jinja syntax error in chat_template_jinja", "preprocess",
         CHAT + "chat_template: jinja\nchat_template_jinja: \"{% for m in messages %}{{ m['content'] }{% endfor %}\"\n",
         (), ("chat_template_jinja", "is not valid Jinja", "template line 1"), _chat(USER), absent=("row 1",)),
    Case("data-template-file-syntax", "a Jinja syntax error on line 2 of a template file", "preprocess",
         CHAT + "chat_template: jinja\nchat_template_jinja: broken.jinja\n", (),
         ("broken.jinja:2", "is not valid Jinja", "template line 2", "{{ m['content'] }"), _chat(USER),
         _file("broken.jinja", BROKEN_JINJA), absent=("row 1",)),
    # ---- `type:` format strings (before: traceback — KeyError / ValueError from str.format) ----
    Case("data-format-unknown-placeholder", "a type mapping whose format names a column", "preprocess",
         MAPPING.format(fmt="Q: {question} A:"), (), ("type.format", "uses {question}", "{instruction}")),
    Case("data-format-lone-brace", "a type mapping whose format has a lone brace", "preprocess",
         MAPPING.format(fmt="{instruction} } ->"), (), ("type.format", "not a valid format string", "{{")),
    # before: silent (the instruction / input read and left out of every prompt)
    Case("data-format-no-instruction", "a type mapping whose format leaves out {instruction}", "preprocess",
         MAPPING.format(fmt="Answer:"), (), ("type.format", "has no {instruction} placeholder")),
    Case("data-format-drops-input", "a type mapping without {input} over rows that have an input", "preprocess",
         MAPPING.format(fmt="Q: {instruction} A:"), (), ("data.jsonl:1", "has no {input} placeholder"),
         ({"instruction": "Translate.", "input": "Bonjour", "output": "Hello"},)),
    # ---- files that cannot be read as written ----
    # before: clean, but no line number
    Case("data-jsonl-latin1", "a .jsonl line saved as Latin-1, not UTF-8", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: rows.jsonl\n    type: alpaca\n", (),
         ("rows.jsonl:2", "line 2 is not UTF-8", "0xe9"),
         setup=_file("rows.jsonl", b'{"instruction": "a", "output": "b"}\n{"instruction": "caf\xe9", "output": "b"}\n')),
    # before: traceback (RecursionError)
    Case("data-jsonl-deep-nesting", "a .jsonl line nested 100,000 levels deep", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n", (),
         ("data.jsonl:1", "nests arrays or objects too deeply"), raw("[" * 100_000 + "]" * 100_000 + "\n")),
    # before: traceback (the tokenizer's TypeError "TextEncodeInput must be Union[...]")
    Case("data-jsonl-lone-surrogate", "a .jsonl string with half of a UTF-16 surrogate pair", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n", (),
         ("data.jsonl:2", "unpaired UTF-16 surrogate escape"),
         raw('{"instruction": "a", "output": "b"}\n{"instruction": "smile \\ud83d", "output": "b"}\n')),
    # before: clean, but "a JSON NoneType"
    Case("data-json-null-row", "a .json list with a null row", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: rows.json\n    type: alpaca\n", (),
         ("rows.json:2", "row 2 is null, not a JSON object"),
         setup=_file("rows.json", '[{"instruction": "a", "output": "b"}, null]')),
    # before: misleading (the first row's values taken as the header: "no 'instruction' field (fields present: a, b)")
    Case("data-csv-no-header", "a CSV file without a header line", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: rows.csv\n    type: alpaca\n", (),
         ("rows.csv:2", "has no 'instruction' field", "first line must be the header"),
         setup=_file("rows.csv", "Give a tip.,Drink water.\nSay hi.,Hi.\n")),
    # before: misleading (the short row's missing column reported as a missing field)
    Case("data-csv-short-row", "a CSV row with fewer columns than the header", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: rows.csv\n    type: alpaca\n", (),
         ("rows.csv:3", "fewer columns than the header"),
         setup=_file("rows.csv", "instruction,input,output\na,,b\nc,d\n")),
    Case("data-parquet-not-parquet", "a .parquet file that is JSON inside", "preprocess",
         "learning_rate: 2e-4\ndatasets:\n  - path: rows.parquet\n    type: alpaca\n", (),
         ("rows.parquet", "cannot be read as parquet"), setup=_file("rows.parquet", '{"instruction": "a"}\n')),
    # ---- labels ----
    # before: traceback (pyarrow's ArrowTypeError while caching `true` as a class id)
    Case("data-classification-bool-label", "a classification label that is true", "preprocess",
         "learning_rate: 2e-4\nnum_labels: 2\ndatasets:\n  - path: data.jsonl\n    type: classification\n", (),
         ("data.jsonl:1", "label True is not a class id"), ({"text": "good", "label": True},)),
    # before: trained as SFT on the text column, ignoring the labels (issue 19)
    Case("data-classification-without-num-labels", "a `type: classification` dataset without `num_labels`",
         "validate", "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: classification\n", (),
         ("datasets[0].type", "`num_labels` is not set"), ({"text": "good", "label": 1},)),
    # before: `num_labels` quietly loaded AutoModelForSequenceClassification whatever model_type said
    Case("data-classification-causal-lm-model-type", "`num_labels` with a causal-LM `model_type`", "validate",
         "learning_rate: 2e-4\nmodel_type: LlamaForCausalLM\nnum_labels: 2\ndatasets:\n  - path: data.jsonl\n"
         "    type: classification\n", (), ("model_type", "has no classification head", "ForSequenceClassification"),
         ({"text": "good", "label": 1},)),
    # before: transformers' "Unrecognized configuration class" as a generic load failure
    Case("data-classification-architecture-without-head", "`num_labels` on an architecture with no "
         "sequence-classification class", "train", "RAWbase_model: m\nlearning_rate: 2e-4\nnum_labels: 2\n"
         "datasets:\n  - path: data.jsonl\n    type: classification\ndataset_prepared_path: prepared\n"
         "output_dir: out\n", (), ("num_labels", "(mamba) has no sequence-classification class"),
         ({"text": "good", "label": 1}, {"text": "bad", "label": 0}), setup=_mamba_base),
    # new in issue 19
    Case("data-regression-label-not-a-number", "a `problem_type: regression` label that is a string", "preprocess",
         "learning_rate: 2e-4\nnum_labels: 1\nproblem_type: regression\ndatasets:\n  - path: data.jsonl\n"
         "    type: classification\n    field_label: score\n", (),
         ("data.jsonl:2", "score is a string", "not a number"),
         ({"text": "good", "score": 7.5}, {"text": "bad", "score": "low"})),
    Case("data-classification-label-out-of-range", "a class id outside [0, num_labels)", "preprocess",
         "learning_rate: 2e-4\nnum_labels: 11\ndatasets:\n  - path: data.jsonl\n    type: classification\n"
         "    field: query\n    field_pair: response\n    field_label: score\n", (),
         ("data.jsonl:2", "score 11 is not a class id in [0, 11)"),
         ({"query": "q", "response": "r", "score": 10}, {"query": "q", "response": "r", "score": 11})),
    # ---- meta-learning tasks (issue 19) ----
    Case("data-meta-task-without-support", "a meta-learning task row without its support rows", "preprocess",
         "learning_rate: 2e-4\nadapter: lora\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"
         "meta_learning:\n  algorithm: fomaml\n", (),
         ("data.jsonl:2", "task 'b' has no support rows", "'support_set' is missing", "meta_learning.support_field"),
         ({"task_id": "a", "support_set": [{"instruction": "q", "output": "a"}],
           "query_set": [{"instruction": "q", "output": "a"}]},
          {"task_id": "b", "query_set": [{"instruction": "q", "output": "a"}]})),
    Case("data-meta-support-row-too-long", "a support row longer than sequence_len", "preprocess",
         "learning_rate: 2e-4\nadapter: lora\nsequence_len: 64\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"
         "meta_learning:\n  algorithm: reptile\n", (),
         ("data.jsonl:1", "a support row is", "more than sequence_len 64"),
         ({"task_id": "a", "support_set": [{"instruction": "word " * 60, "output": "a"}],
           "query_set": [{"instruction": "q", "output": "a"}]},)),
    Case("data-meta-context-too-long", "support_in_context with a task whose support rows and a query exceed "
         "sequence_len", "preprocess",
         "learning_rate: 2e-4\nadapter: lora\nsequence_len: 64\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"
         "meta_learning:\n  support_in_context: true\n", (),
         ("data.jsonl:1", "a query row after its 2 support rows is", "support_in_context: false"),
         ({"task_id": "a", "support_set": [{"instruction": "word " * 8, "output": "a"}] * 2,
           "query_set": [{"instruction": "q", "output": "a"}]},)),
    Case("data-meta-maml-with-liger", "second-order MAML with a fused Liger kernel", "validate",
         "learning_rate: 2e-4\nadapter: lora\nliger_rms_norm: true\ndatasets:\n  - path: data.jsonl\n"
         "    type: alpaca\nmeta_learning:\n  algorithm: maml\n", (),
         ("liger_rms_norm", "second-order terms", "algorithm: fomaml")),
    Case("data-meta-full-fine-tune", "meta-learning without an adapter", "validate",
         "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\nmeta_learning:\n"
         "  algorithm: fomaml\n", (), ("meta_learning", "a full fine-tune has none", "adapter: lora")),
    Case("data-meta-with-rl", "meta-learning and DPO in one config", "validate",
         "learning_rate: 2e-4\nadapter: lora\nrl: dpo\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"
         "meta_learning:\n  algorithm: fomaml\n", (), ("meta_learning", "`rl` both choose the training method")),
    # before: traceback (pyarrow cannot store the strings)
    Case("data-pretokenized-string-labels", "pre-tokenized labels that are strings", "preprocess", PLAIN, (),
         ("data.jsonl:1", "`labels` must hold token ids"), ({"input_ids": [1, 5, 2], "labels": ["a", "b", "c"]},)),
]
