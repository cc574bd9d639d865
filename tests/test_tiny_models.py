"""The shared tiny fixtures load back through the standard Hugging Face code paths."""

from __future__ import annotations

import pytest
import tiny_models


def test_tokenizer_round_trip(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    ids = tokenizer("Give three tips for staying healthy.")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id  # BOS added like Llama
    assert tokenizer.eos_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Give three tips for staying healthy."
    assert len(ids) < 12, "BPE should have learned merges for corpus words"
    assert tokenizer.pad_token == tiny_models.PAD and tokenizer.eos_token == tiny_models.EOS
    im_start, im_end = tokenizer.convert_tokens_to_ids([tiny_models.IM_START, tiny_models.IM_END])
    assert im_end != tokenizer.eos_token_id and tokenizer.unk_token_id not in (im_start, im_end)


def test_chat_template_renders_chatml(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], tokenize=False
    )
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"


@pytest.mark.parametrize("architecture", tiny_models.ARCHITECTURES)
def test_tiny_model_loads_and_runs(tiny_model_dirs, architecture):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = tiny_model_dirs[architecture]
    assert (directory / "model.safetensors").exists() and (directory / "tokenizer.json").exists()
    model = AutoModelForCausalLM.from_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    assert model.config.model_type == architecture
    batch = tokenizer(["Hello, how are you today?"], return_tensors="pt")
    with torch.no_grad():
        output = model(**batch, labels=batch["input_ids"])
    assert output.logits.shape == (1, batch["input_ids"].shape[1], len(tokenizer))
    assert torch.isfinite(output.loss)


def test_models_are_reproducible(tmp_path, tiny_tokenizer_dir):
    from safetensors.torch import load_file

    first = load_file(tiny_models.build_model("llama", tmp_path / "a", tiny_tokenizer_dir) / "model.safetensors")
    second = load_file(tiny_models.build_model("llama", tmp_path / "b", tiny_tokenizer_dir) / "model.safetensors")
    assert all((first[name] == second[name]).all() for name in first)
