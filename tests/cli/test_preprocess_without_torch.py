"""`axo preprocess` tokenizes without importing torch (axo/torch_free.py): the real command, in a fresh process,
never imports it and prepares the same rows in the same cache folder as the torch path (transformers with torch,
in this test's process), for a LlamaTokenizer and a Qwen2Tokenizer, alpaca and chat_template data. A tokenizer
that needs transformers' torch code makes the command run again with torch."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import tiny_models
from typer.testing import CliRunner

from axo.cli.main import app

ALPACA = [{"instruction": f"Give tip {i}.", "input": "for the sea" if i % 2 else "", "output": f"Drink water {i}."}
          for i in range(6)]
CHATS = [{"messages": [{"role": "system", "content": "You are a helpful assistant."},
                       {"role": "user", "content": f"What is {i} + {i}?"},
                       {"role": "assistant", "content": f"It is {2 * i}."}]} for i in range(4)]


def _llama(folder: Path) -> Path:
    """A LlamaTokenizer (SentencePiece-style BPE trained here, ChatML markers as special tokens), in a folder whose
    config says `llama`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer

    markers = [tiny_models.IM_START, tiny_models.IM_END]
    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace()
    bpe.train_from_iterator(tiny_models._corpus(), trainer=trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>", *markers], show_progress=False))
    saved = json.loads(bpe.to_str())["model"]
    LlamaTokenizer(vocab=saved["vocab"], merges=[tuple(pair) for pair in saved["merges"]],
                   extra_special_tokens=markers).save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return folder


def _qwen2(folder: Path) -> Path:
    """Qwen2's real tokenizer (tests/fixtures/qwen2_tokenizer) with its chat template, config `qwen2`."""
    tiny_models.real_tokenizer("qwen2", folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    return folder


def _config(tmp_path: Path, model: Path, chat_template: str, extra: str = "") -> Path:
    for name, rows in (("alpaca.jsonl", ALPACA), ("chat.jsonl", CHATS)):
        (tmp_path / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = tmp_path / "config.yml"
    config.write_text(f"base_model: {model}\nlearning_rate: 1e-4\nsequence_len: 256\nchat_template: {chat_template}\n"
                      f"datasets:\n  - path: {tmp_path / 'alpaca.jsonl'}\n    type: alpaca\n"
                      f"  - path: {tmp_path / 'chat.jsonl'}\n    type: chat_template\n{extra}")
    return config


def _axo(*args: str, cwd: Path):
    """The real `axo` in a fresh process; its stderr lists every module it imported (`-X importtime`)."""
    import subprocess

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(cwd / "modules"))
    env.pop("AXO_PREPROCESS_TORCH", None)
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "axo", *args], check=False, capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def _imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def _messages(stderr: str) -> str:
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("import time:"))


def _prepared(folder: Path) -> Path:
    (prepared,) = [p for p in folder.iterdir() if p.is_dir()]
    return prepared


@pytest.mark.parametrize("build, tokenizer_class, chat_template", [(_llama, "LlamaTokenizer", "chatml"),
                                                                    (_qwen2, "Qwen2Tokenizer", "tokenizer_default")])
def test_preprocess_imports_no_torch_and_prepares_what_the_torch_path_does(tmp_path, build, tokenizer_class,
                                                                           chat_template):
    from transformers import AutoTokenizer
    from transformers.utils.import_utils import is_torch_available

    model = build(tmp_path / "model")
    assert type(AutoTokenizer.from_pretrained(model)).__name__ == tokenizer_class  # transformers' class rules
    config = _config(tmp_path, model, chat_template)
    run = _axo("preprocess", str(config), "--dataset_prepared_path", str(tmp_path / "without"), cwd=tmp_path)
    assert run.returncode == 0, _messages(run.stderr)
    assert not {m for m in _imported(run.stderr) if m.split(".")[0] == "torch"}, "axo preprocess imported torch"
    assert "transformers.tokenization_utils_tokenizers" in _imported(run.stderr)  # the classes are transformers'
    assert "PyTorch was not found" not in run.stderr

    reference = CliRunner().invoke(app, ["preprocess", str(config), "--dataset_prepared_path", str(tmp_path / "with")])
    assert reference.exit_code == 0, reference.output
    assert is_torch_available()  # this process: the torch path
    without, with_torch = _prepared(tmp_path / "without"), _prepared(tmp_path / "with")
    assert without.name == with_torch.name  # the same fingerprint: `axo train` reuses what preprocess wrote
    assert json.loads((without / "meta.json").read_text())["train"]["samples"] == len(ALPACA) + len(CHATS)
    assert (without / "train.arrow").read_bytes() == (with_torch / "train.arrow").read_bytes()


NEEDS_TORCH = '''from transformers import LlamaTokenizer
from transformers.utils import requires_backends


class NeedsTorchTokenizer(LlamaTokenizer):
    def __init__(self, *args, **kwargs):
        requires_backends(self, ["torch"])
        super().__init__(*args, **kwargs)
'''


def test_a_tokenizer_that_needs_torch_runs_the_command_again_with_torch(tmp_path):
    model = _llama(tmp_path / "model")
    (model / "tokenization_needs_torch.py").write_text(NEEDS_TORCH)
    settings = json.loads((model / "tokenizer_config.json").read_text())
    settings.update(tokenizer_class="NeedsTorchTokenizer",
                    auto_map={"AutoTokenizer": [None, "tokenization_needs_torch.NeedsTorchTokenizer"]})
    (model / "tokenizer_config.json").write_text(json.dumps(settings))
    config = _config(tmp_path, model, "chatml", extra="trust_remote_code: true\n")
    run = _axo("--debug", "preprocess", str(config), cwd=tmp_path)
    assert run.returncode == 0, _messages(run.stderr)
    assert "axo: running again with torch (ImportError: NeedsTorchTokenizer requires PyTorch" in run.stderr
    assert "torch" in _imported(run.stderr)
    assert _messages(run.stderr).count("warning: trust_remote_code") == 1  # the second run does not repeat it
    assert "train: 10 samples" in " ".join(run.stdout.split())
