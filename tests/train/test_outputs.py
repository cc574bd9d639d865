"""The run directory's model card: its "Load it" code runs as written, from another working directory, for
every kind of base (a relative local folder, a GGUF file, new tokens, a full fine-tune), and gives the
trained model; provenance and the card name the engine that ran."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from config_helpers import load
from train_helpers import tiny_lora_config

from axo.train.run import train


def write_gguf(model_dir: Path, path: Path) -> Path:
    """The tiny Llama at `model_dir` as an unquantized (F32) GGUF file, written with the `gguf` package the
    way llama.cpp's converter lays it out (q/k rows permuted for its rotary layout, which transformers undoes
    on load), so it loads back to the same weights."""
    import gguf
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = model.config
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.head_dim)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_bos_token_id(config.bos_token_id)
    writer.add_eos_token_id(config.eos_token_id)
    writer.add_pad_token_id(config.pad_token_id)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    for key, tensor in model.state_dict().items():
        array = tensor.numpy()
        if key.endswith(("q_proj.weight", "k_proj.weight")):
            heads = config.num_attention_heads if "q_proj" in key else config.num_key_value_heads
            array = array.reshape(heads, 2, array.shape[0] // heads // 2, -1).swapaxes(1, 2).reshape(array.shape)
        writer.add_tensor(names.get_name(key, try_suffixes=(".weight",)), array.copy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _card_code(run: Path) -> str:
    (code,) = re.findall(r"```python\n(.*?)```", (run / "README.md").read_text(), re.S)
    return code


def _run_card_code(run: Path, monkeypatch: pytest.MonkeyPatch, elsewhere: Path) -> dict:
    """Execute the card's code as a user would paste it, from a working directory that is not the run's."""
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    namespace: dict = {}
    exec(compile(_card_code(run), str(run / "README.md"), "exec"), namespace)
    return namespace


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits


@pytest.mark.parametrize("kind", ["relative folder", "gguf", "new tokens", "full fine-tune"])
def test_model_card_code_loads_the_trained_model_from_anywhere(tmp_path, monkeypatch, tiny_llama_dir,
                                                               tiny_tokenizer_dir, kind):
    work = tmp_path / "work"
    shutil.copytree(tiny_llama_dir, work / "models" / "llama")
    monkeypatch.chdir(work)
    base, extra = Path("models/llama"), "save_strategy: 'no'\n"  # relative paths, as a newcomer writes them
    if kind == "gguf":
        pytest.importorskip("gguf")
        base = write_gguf(tiny_llama_dir, Path("gguf/tiny.gguf"))
        extra += f"tokenizer_config: {tiny_tokenizer_dir}\n"  # the file carries no tokenizer
    if kind == "new tokens":
        extra += "tokens: ['<tool>']\nlora_modules_to_save: [embed_tokens, lm_head]\n"
    text = tiny_lora_config(Path("."), base, "out", extra, steps="max_steps: 2")
    if kind == "full fine-tune":
        text = text.replace("adapter: lora\n", "")
    result = train(load(text).require(), progress=False)
    code = _card_code(work / "out")
    assert repr(str(work / "out")) in code  # absolute: the relative `out` would not be found from elsewhere
    if kind == "gguf":  # transformers opens a GGUF file through its folder
        assert f"base = AutoModelForCausalLM.from_pretrained({str(work / 'gguf')!r}, gguf_file='tiny.gguf')" in code
    elif kind != "full fine-tune":
        assert f"base = AutoModelForCausalLM.from_pretrained({str(work / 'models' / 'llama')!r})" in code
    assert ("resize_token_embeddings" in code) == (kind == "new tokens")
    loaded = _run_card_code(work / "out", monkeypatch, tmp_path / "elsewhere")
    ids = torch.tensor([[1, 20, 30, 40, len(loaded["tokenizer"]) - 1]])
    assert torch.allclose(_logits(loaded["model"], ids), _logits(result.model, ids), atol=1e-6)
    if kind != "full fine-tune":
        assert type(loaded["model"]).__name__ == "PeftModelForCausalLM"


def test_one_process_is_named_single_process(tmp_path, tiny_llama_dir):
    train(load(tiny_lora_config(tmp_path, tiny_llama_dir, "run", "save_strategy: 'no'\n",
                                steps="max_steps: 1")).require(), progress=False)
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert provenance["engine"] == "single process" and provenance["processes"] == 1
    assert "- engine: single process\n" in (tmp_path / "run" / "README.md").read_text()
