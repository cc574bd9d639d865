"""What axo saves and loads for generation has the KV cache on (training alone switches it off), and the
generation commands read their input files before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from config_helpers import load
from typer.testing import CliRunner

from axo.cli.main import app
from axo.infer.loading import load_for_inference
from axo.infer.merge import merge_lora
from axo.infer.run_dir import open_run
from axo.train.run import train

runner = CliRunner()


def _data(folder: Path) -> Path:
    path = folder / "data.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"Say {i}.", "output": f"{i}"}) + "\n" for i in range(8)))
    return path


def _run(folder: Path, base: Path, adapter: bool) -> Path:
    cfg = load(f"base_model: {base}\nlearning_rate: 1e-3\n" + ("adapter: lora\nlora_r: 4\n" if adapter else "") +
               f"datasets:\n  - path: {_data(folder)}\n    type: alpaca\nmicro_batch_size: 4\nmax_steps: 1\n"
               f"output_dir: {folder / 'run'}\ndataset_prepared_path: {folder / 'prepared'}\n"
               "save_strategy: 'no'\n").require()
    train(cfg, progress=False)
    return folder / "run"


@pytest.fixture(scope="module")
def adapter_run(tmp_path_factory, tiny_llama_dir) -> Path:
    """An adapter trained on a base whose saved config says `use_cache: false` (as one saved mid-training)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tmp_path_factory.mktemp("no-cache-base")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    model.config.use_cache = False
    model.generation_config.use_cache = False
    model.save_pretrained(base)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(base)
    assert json.loads((base / "config.json").read_text())["use_cache"] is False
    return _run(tmp_path_factory.mktemp("adapter-run"), base, adapter=True)


def _generates_with_a_cache(model) -> bool:
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([[1, 20, 30]]), max_new_tokens=3, do_sample=False,
                             return_dict_in_generate=True, pad_token_id=0)
    return out.past_key_values is not None


def test_a_merged_model_ships_use_cache_and_plain_transformers_generates_with_it(adapter_run):
    from transformers import AutoModelForCausalLM

    merge_lora(adapter_run)
    merged = adapter_run / "merged"
    assert json.loads((merged / "config.json").read_text())["use_cache"] is True
    assert json.loads((merged / "generation_config.json").read_text()).get("use_cache", True) is True
    assert _generates_with_a_cache(AutoModelForCausalLM.from_pretrained(merged))  # no axo, no peft


def test_a_full_fine_tune_saves_use_cache(tmp_path, tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    run = _run(tmp_path, tiny_llama_dir, adapter=False)
    assert json.loads((run / "config.json").read_text())["use_cache"] is True
    assert _generates_with_a_cache(AutoModelForCausalLM.from_pretrained(run))


def test_loaded_for_inference_the_cache_is_on(adapter_run):
    model, _ = load_for_inference(open_run(adapter_run))
    assert model.config.use_cache is True and _generates_with_a_cache(model)


@pytest.mark.parametrize("command, bad_file, content, expected", [
    ("evaluate", "refs.jsonl", None, "no such file"),
    ("evaluate", "refs.jsonl", '{"messages": [{"role": "user", "content": "hi"}]}\n', "line 1 needs"),
    ("evaluate-schema", "schema.json", "{not json", "not valid JSON"),
    ("inference", "requests.jsonl", '{"id": 1}\n', "line 1 needs"),
])
def test_bad_input_files_fail_before_any_model_loads(adapter_run, tmp_path, command, bad_file, content, expected):
    path = tmp_path / bad_file
    if content is not None:
        path.write_text(content)
    if command == "evaluate":
        args = ["evaluate", str(adapter_run), "-r", str(path)]
    elif command == "evaluate-schema":
        (tmp_path / "refs.jsonl").write_text('{"prompt": "a", "ideal": "b"}\n')
        args = ["evaluate", str(adapter_run), "-r", str(tmp_path / "refs.jsonl"), "--json-schema", str(path)]
    else:
        args = ["inference", str(adapter_run), "-i", str(path), "-o", str(tmp_path / "out.jsonl")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and expected in result.stderr, result.output
    assert "loading" not in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_evaluate_names_what_it_loads_and_shows_progress(adapter_run, tmp_path):
    (tmp_path / "refs.jsonl").write_text("".join(json.dumps({"prompt": f"Say {i}.", "ideal": f"{i}"}) + "\n"
                                                 for i in range(3)))
    result = runner.invoke(app, ["evaluate", str(adapter_run), "-r", str(tmp_path / "refs.jsonl"), "--compare-base",
                                 "--max-new-tokens", "2", "-o", str(tmp_path / "results.json")])
    assert result.exit_code == 0, result.output
    assert f"with the adapter in {adapter_run}" in result.stderr and "loading the base model" in result.stderr
    assert "generating (adapter)" in result.stderr and "generating (base)" in result.stderr
    assert "3/3" in result.stderr
