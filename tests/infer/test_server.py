"""`axo serve` queried with the official `openai` client: completions, chat, streaming, adapter selection,
wrong key -> 401, bad request -> 400, unknown model -> 404."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import openai
import pytest
from config_helpers import load

from axo.infer.generate import GenerationSettings, generate_texts
from axo.infer.run_dir import open_run
from axo.infer.server import create_app, pool_for_run
from axo.train.run import train

KEY = "test-key-not-a-secret"
PROMPT = "The quick brown"


ADAPTER_LINES = {"lora": "adapter: lora\nlora_r: 4\nlora_target_linear: true\n", "ia3": "adapter: ia3\n",
                 "prefix_tuning": "adapter: prefix_tuning\nprefix_num_virtual_tokens: 4\n"}


def _train(folder: Path, model_dir: Path, name: str, seed: int, preference: bool = False, kind: str = "lora") -> Path:
    """An SFT adapter of `kind`, or (`preference`) a DPO-tuned one: the server takes them side by side, unchanged."""
    data = f"  - path: {folder / 'pairs.jsonl'}\n    type: chatml.intel\nrl: dpo\n" if preference else \
        f"  - path: {folder / 'data.jsonl'}\n    type: alpaca\n"
    cfg = load(f"base_model: {model_dir}\nlearning_rate: 3e-2\n{ADAPTER_LINES[kind]}"
               f"datasets:\n{data}micro_batch_size: 4\nmax_steps: 4\n"
               f"seed: {seed}\noutput_dir: {folder / name}\ndataset_prepared_path: {folder / 'prepared'}\n"
               "save_strategy: 'no'\n").require()
    return train(cfg, progress=False).output_dir


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_llama_dir):
    folder = tmp_path_factory.mktemp("serve")
    (folder / "data.jsonl").write_text("".join(json.dumps({"instruction": f"Say {i}.", "output": f"{i} " * 6}) + "\n"
                                               for i in range(8)))
    (folder / "pairs.jsonl").write_text("".join(json.dumps({"question": f"Say {i}.", "chosen": f"{i} " * 6,
                                                            "rejected": "no"}) + "\n" for i in range(8)))
    first = _train(folder, tiny_llama_dir, "first", 1)
    second = _train(folder, tiny_llama_dir, "second", 2, preference=True)  # a DPO adapter served like any other
    scaled = _train(folder, tiny_llama_dir, "scaled", 3, kind="ia3")  # other kinds beside the LoRAs
    prefixed = _train(folder, tiny_llama_dir, "prefixed", 4, kind="prefix_tuning")
    run = open_run(first)
    pool = pool_for_run(run, {"first": first, "second": second, "scaled": scaled, "prefixed": prefixed}, "base")
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(pool, api_key=KEY), host="127.0.0.1", port=port, log_level="error")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(100):
        if running.started:
            break
        time.sleep(0.05)
    yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0), pool, port
    running.should_exit = True
    thread.join(timeout=10)


def _local(pool, name: str, prompt: str, tokens: int = 6) -> str:
    with pool.use(name) as model:
        return generate_texts(model, pool.tokenizer, [prompt], GenerationSettings(max_new_tokens=tokens))[0]["text"]


NAMES = ["base", "first", "second", "scaled", "prefixed"]


def test_models_lists_base_and_adapters(server):
    client, _, _ = server
    assert [m.id for m in client.models.list()] == NAMES


def test_each_model_name_selects_its_adapter(server, tiny_llama_dir):
    """Each name answers as its adapter loaded alone with plain peft on a fresh base (the base as the base),
    whatever kinds are served beside it, and in any order of requests."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    client, pool, _ = server
    outputs = {}
    for name in [*NAMES, *reversed(NAMES)]:
        reply = client.completions.create(model=name, prompt=PROMPT, max_tokens=6, temperature=0)
        outputs.setdefault(name, reply.choices[0].text)
        assert reply.choices[0].text == outputs[name] and reply.usage.completion_tokens >= 1
    for name in NAMES:
        alone = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
        if name != "base":
            alone = PeftModel.from_pretrained(alone, pool.adapters[name])
        settings = GenerationSettings(max_new_tokens=6)
        assert outputs[name] == generate_texts(alone.eval(), pool.tokenizer, [PROMPT], settings)[0]["text"], name
    assert len(set(outputs.values())) == len(NAMES), outputs  # five different models answered


def test_the_kinds_share_the_base_weights(server):
    """One module tree per adapter kind (LoRA, IA3, prefix tuning here), all holding the base's own tensors."""
    _, pool, _ = server
    trees = {id(model): model for model in pool.adapted.values()}
    assert len(trees) == 3
    base = {name: p.data_ptr() for name, p in pool.model.named_parameters()}
    for tree in trees.values():
        held = {name.replace("base_model.model.", "").replace(".base_layer", ""): p.data_ptr()
                for name, p in tree.get_base_model().named_parameters() if not p.requires_grad}
        assert {name: held[name] for name in base} == base
    assert not hasattr(pool.model, "peft_config")  # the base served as loaded


def test_chat_completion_and_streaming_agree(server):
    client, pool, _ = server
    messages = [{"role": "user", "content": "Say 3."}]
    whole = client.chat.completions.create(model="first", messages=messages, max_tokens=6, temperature=0)
    streamed = client.chat.completions.create(model="first", messages=messages, max_tokens=6, temperature=0, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in streamed]
    assert "".join(pieces) == whole.choices[0].message.content
    prompt = pool.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert whole.choices[0].message.content == _local(pool, "first", prompt)


def test_streamed_completion(server):
    client, _, _ = server
    chunks = list(client.completions.create(model="second", prompt=PROMPT, max_tokens=5, temperature=0, stream=True))
    assert chunks[-1].choices[0].finish_reason == "length" and "".join(c.choices[0].text for c in chunks)


def test_wrong_key_is_401(server):
    _, _, port = server
    intruder = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        intruder.models.list()


def test_bad_request_is_400_and_unknown_model_404(server):
    client, _, _ = server
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="first", messages=[], max_tokens=5)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="first", prompt=PROMPT, max_tokens=0)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt=PROMPT, max_tokens=2)


def test_a_merged_model_folder_is_served_by_the_cli(tmp_path, tiny_llama_dir):
    """The documented sequence's last steps: `axo serve <merged folder>` in its own process, then a request."""
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "axo", "serve", str(tiny_llama_dir), "--name", "merged",
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        for _ in range(300):
            try:
                assert [m.id for m in client.models.list()] == ["merged"]
                break
            except openai.APIConnectionError:
                time.sleep(0.1)
        reply = client.chat.completions.create(model="merged", messages=[{"role": "user", "content": "Hi"}],
                                               max_tokens=3, temperature=0)
        assert isinstance(reply.choices[0].message.content, str)
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_adapter_config_has_what_vllm_reads(tmp_path, tiny_llama_dir):
    (tmp_path / "data.jsonl").write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n")
    adapter = json.loads((_train(tmp_path, tiny_llama_dir, "run", 0) / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and adapter["bias"] == "none"
    assert isinstance(adapter["r"], int) and isinstance(adapter["lora_alpha"], int)
    assert sorted(adapter["target_modules"]) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert adapter["base_model_name_or_path"] == str(tiny_llama_dir)
