"""`axo export --format gguf`: tiny Llama, Mistral and Qwen2 runs (LoRA; with real tokenizers llama.cpp's converter
knows: SmolLM2's for Llama and Mistral, Qwen2's for Qwen2, tests/fixtures/) exported through llama.cpp's own
converter, read back with gguf-py, and, where the llama-cpp-python package is installed, loaded by llama.cpp itself
and compared with transformers on the merged model: tokens, logits, greedy generations, the chat template's
rendering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tiny_models
import torch
from config_helpers import load
from gguf import GGUFReader
from transformers import AutoTokenizer
from typer.testing import CliRunner

from axo.cli.main import app
from axo.export import llama_cpp as tools
from axo.train.run import train

needs_llama_cpp = pytest.mark.skipif(not tools.quantizer_available(),
                                     reason="llama-cpp-python is not installed (pip install 'axo[llama-cpp]')")
PROMPTS = ["The capital of France is", "def add(a, b):", "1 2 3 4"]
# f16 weights against float32 ones: the tiny models' logits are O(1); llama.cpp's f16 matmuls round at ~1e-3.
LOGIT_TOLERANCE = 2e-2


@pytest.fixture(scope="session", autouse=True)
def converter_cache(tmp_path_factory):
    """One fetch of llama.cpp's converter per test worker (the pinned llama-cpp-python source distribution)."""
    cache = tmp_path_factory.getbasetemp() / "llama-cpp-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AXO_LLAMA_CPP_CACHE", str(cache))
        yield cache


TOKENIZER = {"llama": "smollm2", "mistral": "smollm2", "qwen2": "qwen2"}


@pytest.fixture(scope="session")
def smol_models(tmp_path_factory) -> dict[str, Path]:
    """The tiny models of tests/tiny_models.py, each with a real tokenizer llama.cpp knows."""
    root = tmp_path_factory.mktemp("real-tokenizer-models")
    tokenizers = {name: tiny_models.real_tokenizer(name, root / name) for name in set(TOKENIZER.values())}
    return {arch: tiny_models.build_model(arch, root / arch, tokenizers[TOKENIZER[arch]])
            for arch in tiny_models.ARCHITECTURES}


def _train(base: Path, output: Path, extra: str = "") -> Path:
    """A finished 3-step LoRA run of `base` in `output` (its data and prepared rows beside it)."""
    data = output.parent / "data.jsonl"
    if not data.is_file():
        data.write_text("".join(json.dumps({"instruction": f"Tip {i}?", "output": f"Drink water {i}."}) + "\n"
                                for i in range(8)))
    cfg = load(f"base_model: {base}\nlearning_rate: 5e-2\nadapter: lora\nlora_r: 4\nlora_alpha: 8\n"
               f"lora_target_linear: true\ndatasets:\n  - path: {data}\n    type: alpaca\nmicro_batch_size: 4\n"
               f"max_steps: 3\noutput_dir: {output}\n"
               f"dataset_prepared_path: {output.parent / ('prepared-' + output.name)}\n"
               "save_strategy: 'no'\n" + extra).require()
    train(cfg, progress=False)
    return output


@pytest.fixture(scope="module")
def runs(smol_models, tmp_path_factory) -> dict[str, Path]:
    """One trained run per architecture (the tests export it to their own paths, or to its gguf/ folder)."""
    root = tmp_path_factory.mktemp("export-runs")
    return {arch: _train(smol_models[arch], root / arch) for arch in tiny_models.ARCHITECTURES}


def _export(*args: str):
    return CliRunner().invoke(app, ["export", *args])


def _merged_transformers(run: Path, tmp_path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axo.infer.merge import merge_lora

    merged = merge_lora(run, output=tmp_path / "merged").output_dir
    return AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(run)


ROUND_TRIP = tiny_models.ARCHITECTURES


@pytest.mark.parametrize("arch", ROUND_TRIP)
def test_f16_export_carries_the_merged_weights_template_and_eos(runs, arch, tmp_path):
    run = runs[arch]
    result = _export(str(run), "--quant", "f16")
    assert result.exit_code == 0, result.output
    out = run / "gguf" / "model-f16.gguf"
    assert out.is_file() and not list(out.parent.glob("*.partial")) and not list(out.parent.glob(".axo-export-*"))
    reader = GGUFReader(out)
    tokenizer_template = (run / "chat_template.jinja").read_text()
    assert reader.fields["tokenizer.chat_template"].contents() == tokenizer_template
    run_tokenizer = AutoTokenizer.from_pretrained(run)
    assert reader.fields["tokenizer.ggml.eos_token_id"].contents() == run_tokenizer.eos_token_id
    assert reader.fields["general.file_type"].contents() == 1  # MOSTLY_F16
    # The adapter is merged: the value projection (not permuted by the converter) equals the merged model's.
    model, _ = _merged_transformers(run, tmp_path)
    tensor = next(t for t in reader.tensors if t.name == "blk.1.attn_v.weight")
    expected = model.model.layers[1].self_attn.v_proj.weight.detach().numpy()
    assert np.array_equal(np.asarray(tensor.data).reshape(expected.shape), expected.astype(np.float16))
    provenance = json.loads((run / "provenance.json").read_text())
    (entry,) = [e for e in provenance["exports"] if e["file"] == str(out)]
    assert entry["quant"] == "f16" and entry["file"] == str(out) and entry["bytes"] == out.stat().st_size
    assert len(entry["sha256"]) == 64 and "llama-cpp-python 0.3.36" in entry["converter"]
    assert "## Exports" in (run / "README.md").read_text() and entry["sha256"] in (run / "README.md").read_text()


@needs_llama_cpp
@pytest.mark.parametrize("arch", ROUND_TRIP)
def test_llama_cpp_runs_the_export_as_transformers_runs_the_merged_model(runs, arch, tmp_path):
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    run = runs[arch]
    out = tmp_path / "model.gguf"
    result = _export(str(run), "-o", str(out))
    assert result.exit_code == 0, result.output
    model, tokenizer = _merged_transformers(run, tmp_path)
    llm = llama_cpp.Llama(str(out), n_ctx=128, logits_all=True, verbose=False, n_threads=2)
    assert llm.token_eos() == tokenizer.eos_token_id  # llama.cpp stops where the run stops
    for prompt in PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == ids  # the same tokens
        llm.reset()
        llm.eval(ids)
        ours = np.asarray(llm.scores[len(ids) - 1])
        with torch.no_grad():
            theirs = model(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
        assert np.abs(ours - theirs).max() < LOGIT_TOLERANCE, prompt
        llm.reset()
        generated = []
        for token in llm.generate(ids, top_k=1, temp=0.0, reset=True):
            generated.append(token)
            if len(generated) == 8:
                break
        # Greedy decoding agrees: at every step llama.cpp's token is transformers' top token, or ties with it within
        # f16 rounding (a random model over 150k tokens has near-ties that f16 may order either way).
        with torch.no_grad():
            steps = model(input_ids=torch.tensor([ids + generated])).logits[0, len(ids) - 1:-1]
        chosen = steps[torch.arange(len(generated)), torch.tensor(generated)]
        assert bool((chosen >= steps.max(dim=-1).values - LOGIT_TOLERANCE).all()), prompt
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]
    formatter = Jinja2ChatFormatter(GGUFReader(out).fields["tokenizer.chat_template"].contents(),
                                    eos_token=tokenizer.eos_token, bos_token=tokenizer.bos_token or "",
                                    add_generation_prompt=True)
    assert formatter(messages=messages).prompt == tokenizer.apply_chat_template(messages, tokenize=False,
                                                                                add_generation_prompt=True)


@needs_llama_cpp
def test_q4_k_m_export_with_an_ollama_modelfile(runs, tmp_path):
    import llama_cpp

    run = runs["mistral"]
    out = tmp_path / "model-q4_k_m.gguf"
    result = _export(str(run), "--quant", "q4_k_m", "--ollama", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert GGUFReader(out).fields["general.file_type"].contents() == llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    f16 = tmp_path / "model-f16.gguf"
    assert _export(str(run), "--quant", "f16", "-o", str(f16)).exit_code == 0
    assert out.stat().st_size < 0.6 * f16.stat().st_size
    llm = llama_cpp.Llama(str(out), n_ctx=64, verbose=False)
    assert llm.n_vocab() == 49152
    modelfile = (tmp_path / "model-q4_k_m.Modelfile").read_text()
    assert "FROM ./model-q4_k_m.gguf" in modelfile
    assert f"ollama create mistral -f {tmp_path / 'model-q4_k_m.Modelfile'}" in result.output
    assert '{{ .Content }}<|im_end|>' in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert '{{ if ne .Role "system" }}' in modelfile  # Ollama passes system messages in .System and .Messages
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in modelfile


def test_bad_requests_fail_before_any_work(runs, tmp_path, monkeypatch):
    run = runs["llama"]
    before = sorted(p.name for p in run.iterdir())
    wrong_type = _export(str(run), "--quant", "q9_x")
    assert wrong_type.exit_code == 1 and "q9_x is not a GGUF type axo exports" in wrong_type.output
    assert "q4_k_m" in wrong_type.output
    folder = _export(str(run), "-o", str(tmp_path))
    assert folder.exit_code == 1 and "is a folder" in folder.output
    braces = _export(str(run), "-o", str(tmp_path / "model-{ftype}.gguf"))
    assert braces.exit_code == 1 and "braces" in braces.output
    wrong_format = _export(str(run), "--format", "onnx")
    assert wrong_format.exit_code == 1 and "axo exports gguf" in wrong_format.output
    monkeypatch.setattr(tools, "quantizer_problem", lambda: "is not installed")
    no_quantizer = _export(str(run), "--quant", "q4_k_m")
    assert no_quantizer.exit_code == 1 and "which is not installed" in no_quantizer.output
    assert "pip install 'llama-cpp-python==0.3.36'" in no_quantizer.output
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written
    # (A tokenizer llama.cpp does not know at all, the tests' own BPE one: tests/bad_input, export-unknown-tokenizer.)
    bad_dir = _export(str(run), "--llama-cpp", str(tmp_path))
    assert bad_dir.exit_code == 1 and "no convert_hf_to_gguf.py" in bad_dir.output


def test_an_architecture_the_converter_does_not_know_is_refused(runs, smol_models, tmp_path):
    base = tmp_path / "renamed"
    base.mkdir()
    for path in smol_models["llama"].iterdir():
        (base / path.name).write_bytes(path.read_bytes())
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "architectures": ["NotARealForCausalLM"]}))
    run = tmp_path / "run"
    shutil.copytree(runs["llama"], run)  # a copy: its config is edited below
    cfg_file = run / "axo_config.yml"
    cfg_file.write_text(cfg_file.read_text().replace(str(smol_models["llama"]), str(base))
                        .replace(str(runs["llama"]), str(run)))
    result = _export(str(run))
    assert result.exit_code == 1 and "does not support the architecture NotARealForCausalLM" in result.output
    assert "--print-supported-models" in result.output


def test_a_llama_cpp_checkout_can_stand_in_for_the_pinned_converter(runs, converter_cache, tmp_path):
    checkout = tmp_path / "llama.cpp"
    tools.find_tools()  # the pinned converter's files, as a checkout holds them
    shutil.copytree(converter_cache / f"llama-cpp-python-{tools.LLAMA_CPP_PYTHON}", checkout,
                    ignore=shutil.ignore_patterns(".axo-*"))
    out = tmp_path / "model.gguf"
    card = runs["llama"] / "README.md"
    card.write_text(card.read_text() + "\n## My notes\n\nkeep me\n")  # a section after "Exports" stays
    result = _export(str(runs["llama"]), "--llama-cpp", str(checkout), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert card.read_text().count("## Exports") == 1 and card.read_text().endswith("## My notes\n\nkeep me\n")
    entry = [e for e in json.loads((runs["llama"] / "provenance.json").read_text())["exports"] if e["file"] == str(out)]
    assert entry[0]["converter"] == f"llama.cpp checkout at {checkout}"
    assert sorted(p.name for p in checkout.iterdir()) == sorted(  # nothing written into the user's checkout
        p.name for p in (converter_cache / f"llama-cpp-python-{tools.LLAMA_CPP_PYTHON}").iterdir()
        if not p.name.startswith(".axo-"))


def test_a_run_that_added_tokens_exports_its_larger_vocabulary(smol_models, tmp_path):
    run = _train(smol_models["llama"], tmp_path / "run",
                 "tokens: ['<tool>']\nlora_modules_to_save: [embed_tokens, lm_head]\n")
    out = tmp_path / "model.gguf"
    result = _export(str(run), "-o", str(out))
    assert result.exit_code == 0, result.output
    reader = GGUFReader(out)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    assert len(tokens) == 49153 and tokens[-1] == "<tool>"
    embeddings = next(t for t in reader.tensors if t.name == "token_embd.weight")
    assert 49153 in tuple(int(n) for n in embeddings.shape)
