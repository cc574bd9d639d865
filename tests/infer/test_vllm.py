"""The hand-off to vLLM (`axo serve --engine vllm`): the exact `vllm serve` command for a real trained run,
and the adapters vLLM would refuse or misserve, refused here first. vLLM itself needs CUDA and is not
installed here: the command is checked, and the CLI prints it before saying vLLM is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from config_helpers import load
from typer.testing import CliRunner

from axo.cli.main import app
from axo.config.problems import ConfigError
from axo.infer.vllm import vllm_command
from axo.train.run import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_llama_dir) -> Path:
    folder = tmp_path_factory.mktemp("vllm")
    (folder / "data.jsonl").write_text("".join(json.dumps({"instruction": f"Say {i}.", "output": f"{i}"}) + "\n"
                                               for i in range(4)))
    cfg = load(f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-3\nadapter: lora\nlora_r: 24\nlora_alpha: 48\n"
               f"lora_target_modules: [q_proj, v_proj]\ndatasets:\n  - path: {folder / 'data.jsonl'}\n    type: alpaca\n"
               f"micro_batch_size: 2\nmax_steps: 1\noutput_dir: {folder / 'run'}\n"
               f"dataset_prepared_path: {folder / 'prepared'}\nsave_strategy: 'no'\n").require()
    return train(cfg, progress=False).output_dir


def _adapter(folder: Path, **config) -> Path:
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, **config}))
    return folder


def test_the_command_fits_the_adapters(run_dir, tmp_path):
    wide = _adapter(tmp_path / "wide", r=16, rank_pattern={"model.layers.0.self_attn.q_proj": 300})
    (tmp_path / "chat_template.jinja").write_text("{{ messages }}")
    command = vllm_command("meta-llama/Llama-3.1-8B", {"sql": run_dir, "wide": wide}, "127.0.0.1", 8001,
                           base_name="base", chat_template=tmp_path / "chat_template.jinja")
    assert command == ["vllm", "serve", "meta-llama/Llama-3.1-8B", "--host", "127.0.0.1", "--port", "8001",
                       "--served-model-name", "base", "--enable-lora", "--max-lora-rank", "320", "--max-loras", "2",
                       "--lora-modules", f"sql={run_dir}", f"wide={wide}",
                       "--chat-template", str(tmp_path / "chat_template.jinja")]
    # rank 24 alone needs 32 (vLLM's default of 16 would refuse it); no template file, no flag
    assert vllm_command("b", {"sql": run_dir}, "h", 1, chat_template=tmp_path / "none.jinja")[-6:] == [
        "--max-lora-rank", "32", "--max-loras", "1", "--lora-modules", f"sql={run_dir}"]


@pytest.mark.parametrize(("config", "says"), [
    ({"modules_to_save": ["embed_tokens", "lm_head"]}, "axo merge-lora"),
    ({"r": 1024}, "up to 512"),
    ({"peft_type": "IA3"}, "is IA3; vLLM serves LoRA adapters only"),
    ({"peft_type": "PREFIX_TUNING"}, "--engine hf"),
])
def test_adapters_vllm_cannot_load_are_refused(tmp_path, config, says):
    with pytest.raises(ConfigError, match=says):
        vllm_command("b", {"x": _adapter(tmp_path / "x", **config)}, "h", 1)


def test_the_cli_prints_the_command_and_keeps_the_key_off_it(run_dir, monkeypatch):
    monkeypatch.setenv("AXO_API_KEY", "secret-from-env")
    result = CliRunner().invoke(app, ["serve", str(run_dir), "--engine", "vllm", "--port", "8123"])
    assert result.exit_code == 1  # vLLM is not installed here
    said = result.output.replace("\n", "")
    assert f"--port 8123 --served-model-name base --enable-lora --max-lora-rank 32 --max-loras 1 --lora-modules " \
           f"run={run_dir}" in said
    assert "secret-from-env" not in said and "needs vLLM installed" in said
    if (run_dir / "chat_template.jinja").is_file():
        assert f"--chat-template {run_dir / 'chat_template.jinja'}" in said
