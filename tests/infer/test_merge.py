"""`axo merge-lora`: merged logits equal base + adapter, streaming over shards, clean refusal on mismatch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from config_helpers import load
from typer.testing import CliRunner

from axo.cli.main import app
from axo.config.problems import ConfigError
from axo.infer.merge import merge_lora
from axo.train.run import train

IDS = torch.tensor([[1, 20, 30, 40, 50, 60]])


@pytest.fixture
def sharded_llama(tmp_path_factory, tiny_llama_dir) -> Path:
    """The tiny Llama re-saved in several safetensors shards, to exercise the shard-by-shard path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("sharded-llama")
    AutoModelForCausalLM.from_pretrained(tiny_llama_dir).save_pretrained(folder, max_shard_size="100KB")
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(folder)
    assert len(list(folder.glob("*.safetensors"))) > 2
    return folder


def _train(base: Path, extra: str = "", output: str = "out"):
    cfg = load(f"base_model: {base}\nlearning_rate: 1e-2\nadapter: lora\nlora_r: 4\nlora_alpha: 8\n"
               "lora_target_linear: true\ndatasets:\n  - path: data.jsonl\n    type: alpaca\nmicro_batch_size: 4\n"
               f"max_steps: 3\noutput_dir: {output}\ndataset_prepared_path: prepared\nsave_strategy: 'no'\n" + extra).require()
    return train(cfg, progress=False)


def _logits(model):
    with torch.no_grad():
        return model.eval()(input_ids=IDS).logits


def _adapter_logits(base: Path, adapter: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return _logits(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter))


def test_merged_model_equals_base_plus_adapter_over_shards(workspace, sharded_llama):
    from transformers import AutoModelForCausalLM

    _train(sharded_llama)
    report = merge_lora("out")
    merged_dir = Path("out/merged")
    assert report.merged_modules == 14 and report.shards == len(list(sharded_llama.glob("*.safetensors")))
    assert (merged_dir / "model.safetensors.index.json").exists() and (merged_dir / "tokenizer.json").exists()
    assert (merged_dir / "chat_template.jinja").exists()
    merged = _logits(AutoModelForCausalLM.from_pretrained(merged_dir))  # plain transformers, no axo, no peft
    assert torch.allclose(merged, _adapter_logits(sharded_llama, Path("out")), atol=1e-5)
    assert not torch.allclose(merged, _logits(AutoModelForCausalLM.from_pretrained(sharded_llama)), atol=1e-4)


def test_dora_and_rslora_merge(workspace, tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    _train(tiny_llama_dir, "peft_use_dora: true\npeft_use_rslora: true\n")
    merge_lora("out", output=Path("merged-dora"))
    merged = _logits(AutoModelForCausalLM.from_pretrained("merged-dora"))
    assert torch.allclose(merged, _adapter_logits(tiny_llama_dir, Path("out")), atol=1e-5)


def test_new_tokens_and_saved_modules_merge(workspace, tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _train(tiny_llama_dir, "tokens: ['<tool>']\nlora_modules_to_save: [embed_tokens, lm_head]\n")
    merge_lora("out")
    merged_model = AutoModelForCausalLM.from_pretrained("out/merged")
    assert merged_model.config.vocab_size == len(AutoTokenizer.from_pretrained("out/merged")) == 601
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    base.resize_token_embeddings(601)
    expected = _logits(PeftModel.from_pretrained(base, "out"))
    assert torch.allclose(_logits(merged_model), expected, atol=1e-5)


def test_an_adapter_for_another_base_is_refused_and_nothing_is_written(workspace, tiny_model_dirs, tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    _train(tiny_model_dirs["llama"])
    other = tmp_path_factory.mktemp("wider-llama")
    config = LlamaConfig.from_pretrained(tiny_model_dirs["llama"])
    config.hidden_size, config.intermediate_size = 96, 160
    AutoModelForCausalLM.from_config(config).save_pretrained(other)
    AutoTokenizer.from_pretrained(tiny_model_dirs["llama"]).save_pretrained(other)
    saved = json.loads(Path("out/provenance.json").read_text())
    saved["base_model_path"] = str(other)
    Path("out/provenance.json").write_text(json.dumps(saved))
    shutil.move(str(tiny_model_dirs["llama"]), str(workspace / "moved-away"))  # the run's own base is gone
    try:
        with pytest.raises(ConfigError, match="does not match this base model"):
            merge_lora("out")
    finally:
        shutil.move(str(workspace / "moved-away"), str(tiny_model_dirs["llama"]))
    assert not Path("out/merged").exists() and not Path("out/merged.partial").exists()


def test_cli_merge_with_explicit_adapter_and_output(workspace, tiny_llama_dir):
    _train(tiny_llama_dir)
    result = CliRunner().invoke(app, ["merge-lora", "out", "--lora-model-dir", "out", "-o", "elsewhere"])
    assert result.exit_code == 0, result.output
    assert Path("elsewhere/model.safetensors").exists()
    missing = CliRunner().invoke(app, ["merge-lora", "nowhere"])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr


def test_disk_full_while_writing_a_shard_keeps_the_previous_merge(workspace, tiny_llama_dir, monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    _train(tiny_llama_dir)
    merge_lora("out")
    previous = {p.name: p.read_bytes() for p in Path("out/merged").iterdir()}

    def full_disk(tensors, filename, *args, **kwargs):  # what safetensors raises when the disk fills up
        Path(filename).write_bytes(b"\0" * 1024)
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    result = CliRunner().invoke(app, ["merge-lora", "out"])
    flat = " ".join((result.stdout + result.stderr).split())
    assert result.exit_code == 1 and "Traceback" not in flat, flat
    assert "writing the merged model to out/merged failed: No space left on device" in flat and "GiB free" in flat
    assert "the merged model already there is untouched" in flat and "--output" in flat
    assert {p.name: p.read_bytes() for p in Path("out/merged").iterdir()} == previous
    assert not Path("out/merged.partial").exists() and not Path("out/merged.old").exists()

