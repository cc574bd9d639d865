"""`axo export --ollama`'s reading of a run's chat template: axo's own template files and SmolLM2's real one."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiny_models

from axo.export.ollama import chat_format

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "axo" / "data" / "chat_templates"


@pytest.mark.parametrize(("name", "bos", "expected", "system"), [
    ("chatml", "<s>", "chatml", None),
    ("qwen_25", "<s>", "chatml", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
    ("llama3", "<|begin_of_text|>", "llama3", None),
    ("alpaca", "<s>", "alpaca", None),
    ("mistral_v1", "<s>", None, None),  # [INST] ... : no Ollama template is written; Ollama reads the GGUF's own
    ("gemma", "<bos>", None, None),
])
def test_known_shapes_are_recognised_and_others_left_to_ollama(name, bos, expected, system):
    found = chat_format((TEMPLATES / f"{name}.jinja").read_text(), bos)
    assert (found[0] if found else None) == expected
    if found:
        assert found[3] == system
        assert "{{ .Prompt }}" in found[1] or "{{ .Content }}" in found[1]


def test_smollm2_template_gives_chatml_with_its_default_system_line():
    template = (tiny_models.SMOLLM2_TOKENIZER / "chat_template.jinja").read_text()
    name, go_template, stops, system = chat_format(template, "<|im_start|>")
    assert name == "chatml" and stops == ["<|im_end|>", "<|im_start|>"]
    assert system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert go_template.endswith("<|im_start|>assistant\n")


def test_no_template_gives_nothing():
    assert chat_format(None) is None and chat_format("") is None
