"""The tokenizer a run trains with carries the run's chat template, so what the run folder saves (and a merged
model, vLLM and `axo inference` read) formats conversations as training did."""

from __future__ import annotations

import pytest
from config_helpers import load
from transformers import AutoTokenizer

from axo.data.chat_templates import builtin_template
from axo.models.tokenizer import load_tokenizer

CONVERSATION = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Bye"}]


@pytest.mark.parametrize("name", ["chatml", "llama3", "gemma3"])
def test_a_named_template_becomes_the_saved_tokenizers_own(tmp_path, tiny_llama_dir, name):
    cfg = load(f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-4\nchat_template: {name}\n"
               "datasets:\n  - path: d.jsonl\n    type: chat_template\n").require()
    tokenizer = load_tokenizer(cfg)
    assert tokenizer.chat_template == builtin_template(name)
    tokenizer.save_pretrained(tmp_path / "run")
    saved = AutoTokenizer.from_pretrained(tmp_path / "run")
    assert saved.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True) == \
        tokenizer.apply_chat_template(CONVERSATION, chat_template=builtin_template(name), tokenize=False,
                                      add_generation_prompt=True)


def test_tokenizer_default_keeps_the_models_template(tiny_llama_dir):
    cfg = load(f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-4\n"
               "datasets:\n  - path: d.jsonl\n    type: chat_template\n").require()
    assert load_tokenizer(cfg).chat_template == AutoTokenizer.from_pretrained(tiny_llama_dir).chat_template
