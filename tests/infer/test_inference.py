"""`axo inference`: batch JSONL round trip, prompt formats, the interactive loop, clear errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from config_helpers import load
from typer.testing import CliRunner

from axo.cli.main import app
from axo.infer.generate import GenerationSettings, generate_texts
from axo.infer.loading import describe_model, half_precision_on_cpu, load_for_inference
from axo.infer.prompts import render_prompt
from axo.infer.run_dir import open_run
from axo.train.run import train

runner = CliRunner()


@pytest.fixture(scope="module")
def alpaca_run(tmp_path_factory, tiny_llama_dir) -> Path:
    folder = tmp_path_factory.mktemp("alpaca-run")
    (folder / "data.jsonl").write_text("".join(json.dumps({"instruction": f"Say {i}.", "output": f"{i}"}) + "\n"
                                               for i in range(8)))
    cfg = load(f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-3\nadapter: lora\nlora_r: 4\ndatasets:\n"
               f"  - path: {folder / 'data.jsonl'}\n    type: alpaca\nmicro_batch_size: 4\nmax_steps: 1\n"
               f"output_dir: {folder / 'run'}\ndataset_prepared_path: {folder / 'prepared'}\nsave_strategy: 'no'\n").require()
    train(cfg, progress=False)
    return folder / "run"


def test_batch_round_trip_keeps_rows_and_adds_outputs(alpaca_run, tmp_path):
    requests = [{"instruction": "Say 3.", "id": 1}, {"messages": [{"role": "user", "content": "Hi"}], "id": 2},
                {"prompt": "The quick brown", "id": 3}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in requests))
    result = runner.invoke(app, ["inference", str(alpaca_run), "-i", str(source), "-o", str(tmp_path / "out.jsonl"),
                                 "--max-new-tokens", "5"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3] and all(isinstance(r["output"], str) for r in rows)
    # Greedy batch output equals generating each prompt alone.
    run = open_run(alpaca_run)
    model, tokenizer = load_for_inference(run)
    alone = generate_texts(model, tokenizer, [render_prompt(run.cfg, tokenizer, requests[0])],
                           GenerationSettings(max_new_tokens=5))
    assert rows[0]["output"] == alone[0]["text"]


def test_alpaca_runs_are_prompted_with_the_alpaca_template(alpaca_run):
    run = open_run(alpaca_run)
    _, tokenizer = load_for_inference(run)
    prompt = render_prompt(run.cfg, tokenizer, {"instruction": "Say 3."})
    assert prompt == ("<s>Below is an instruction that describes a task. Write a response that appropriately "
                      "completes the request.\n\n### Instruction:\nSay 3.\n\n### Response:\n")
    chat = render_prompt(run.cfg, tokenizer, {"messages": [{"role": "user", "content": "Hi"}]})
    assert chat == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_base_only_differs_from_the_adapter(alpaca_run):
    run = open_run(alpaca_run)
    adapted, tokenizer = load_for_inference(run)
    base, _ = load_for_inference(run, base_only=True)
    assert type(adapted).__name__.startswith("Peft") and not type(base).__name__.startswith("Peft")


def test_a_run_trained_in_bf16_loads_in_float32_on_a_cpu_and_says_so(alpaca_run):
    """A GPU-trained run carries `bf16: true`; on a CPU its half-precision matmuls would crawl."""
    import torch

    run = open_run(alpaca_run)
    gpu_trained = replace(run, cfg=run.cfg.model_copy(update={"bf16": True}))
    assert half_precision_on_cpu(gpu_trained, "cpu") == "bf16" and half_precision_on_cpu(gpu_trained, "cuda") is None
    assert half_precision_on_cpu(run, "cpu") is None  # trained in float32: nothing to change
    assert describe_model(gpu_trained).endswith("(in float32 on this CPU; the run trained in bf16)")
    model, _ = load_for_inference(gpu_trained, device="cpu")
    assert {param.dtype for param in model.parameters()} == {torch.float32}


def test_interactive_chat_streams_and_exits(alpaca_run):
    result = runner.invoke(app, ["inference", str(alpaca_run), "--max-new-tokens", "4"], input="Say 1.\n/reset\n/exit\n")
    assert result.exit_code == 0 and "model> " in result.stdout


def test_bad_request_file_names_the_line(alpaca_run, tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text('{"instruction": "ok"}\n{"nothing": 1}\n')
    result = runner.invoke(app, ["inference", str(alpaca_run), "-i", str(source), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1 and "line 2" in result.stderr and not (tmp_path / "o.jsonl").exists()
    half = runner.invoke(app, ["inference", str(alpaca_run), "-i", str(source)])
    assert half.exit_code == 1 and "--output" in half.stderr


def test_stop_sequences_cut_the_text(alpaca_run):
    run = open_run(alpaca_run)
    model, tokenizer = load_for_inference(run)
    prompt = render_prompt(run.cfg, tokenizer, {"prompt": "The quick brown"})
    full = generate_texts(model, tokenizer, [prompt], GenerationSettings(max_new_tokens=8))[0]["text"]
    cut = generate_texts(model, tokenizer, [prompt], GenerationSettings(max_new_tokens=8, stop=(full[3:6],)))[0]
    assert cut["text"] == full[: full.find(full[3:6])] and cut["finish_reason"] == "stop"
