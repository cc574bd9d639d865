"""`axo export --ollama`'s reading of a run's chat template: axo's own template files and SmolLM2's real one."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiny_models

from axo.export.ollama import chat_format

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "axo" / "data" / "chat_templates"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """SmolLM2's tokenizer (BOS `<|im_start|>`): transformers renders each template with it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_models.real_tokenizer("smollm2", tmp_path_factory.mktemp("smol")))


@pytest.mark.parametrize(("name", "expected", "system"), [
    ("chatml", "chatml", None),
    ("qwen_25", "chatml", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
    ("llama3", "llama3", None),
    ("alpaca", "alpaca", None),
    ("mistral_v1", None, None),  # [INST] ... : no Ollama template is written; Ollama reads the GGUF's own
    ("gemma", None, None),
])
def test_known_shapes_are_recognised_and_others_left_to_ollama(tokenizer, name, expected, system):
    found = chat_format(tokenizer, (TEMPLATES / f"{name}.jinja").read_text())
    assert (found[0] if found else None) == expected
    if found:
        assert found[3] == system
        assert "{{ .Prompt }}" in found[1] or "{{ .Content }}" in found[1]


def test_smollm2_template_gives_chatml_with_its_default_system_line(tokenizer):
    name, go_template, stops, system = chat_format(tokenizer)  # the tokenizer's own template
    assert name == "chatml" and stops == ["<|im_end|>", "<|im_start|>"]
    assert system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert go_template.endswith("<|im_start|>assistant\n")


def test_no_template_gives_nothing(tokenizer):
    tokenizer_without = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    tokenizer_without.chat_template = None
    assert chat_format(tokenizer_without) is None
