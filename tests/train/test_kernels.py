"""Liger kernel keys: read with Axolotl's names, and a clear error where the kernels cannot run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from config_helpers import BASE, find, load
from train_helpers import tiny_lora_config

from axo.config.problems import ConfigError, Kind
from axo.models.kernels import liger_options
from axo.train.run import train


def test_axolotl_liger_keys_are_read_and_the_old_swiglu_name_is_translated():
    loaded = load(BASE + "plugins: [axolotl.integrations.liger.LigerPlugin]\nliger_rms_norm: true\nliger_swiglu: true\n"
                  "liger_fused_linear_cross_entropy: true\n")
    cfg = loaded.require()
    assert liger_options(cfg) == {"rms_norm": True, "swiglu": True, "fused_linear_cross_entropy": True}
    assert find(loaded, "liger_swiglu", Kind.DEPRECATED)


def test_liger_where_it_cannot_run_is_a_clear_error(tmp_path, tiny_llama_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n")
    cfg = load(f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-3\nadapter: lora\ndatasets:\n  - path: data.jsonl\n"
               "    type: alpaca\nmax_steps: 1\noutput_dir: out\ndataset_prepared_path: prepared\nliger_rms_norm: true\n").require()
    with pytest.raises(ConfigError, match="liger"):
        train(cfg, progress=False)
    assert not (Path("out") / "adapter_model.safetensors").exists()


def _lora_run(tmp_path: Path, model_dir: Path, name: str, extra: str):
    cfg = load(tiny_lora_config(tmp_path, model_dir, name, extra)).require()
    return [row["loss"] for row in train(cfg, progress=False).metrics if "loss" in row]


def test_fused_lora_path_is_on_by_default_and_trains_like_peft(tmp_path, tiny_llama_dir, capsys):
    fused = _lora_run(tmp_path, tiny_llama_dir, "fused", "")
    assert "fused LoRA path: 6 mlp, 2 o, 6 qkv layers" in capsys.readouterr().out
    plain = _lora_run(tmp_path, tiny_llama_dir, "plain",
                      "lora_qkv_kernel: false\nlora_o_kernel: false\nlora_mlp_kernel: false\n")
    assert "fused LoRA path" not in capsys.readouterr().out
    assert len(fused) == len(plain) == 4
    for got, want in zip(fused, plain, strict=True):
        assert abs(got - want) < 1e-4 * max(1.0, abs(want))
    assert fused[-1] < fused[0]


def test_liger_kernels_are_on_by_default_only_when_the_user_chose_none_and_they_can_run():
    from axo.models.kernels import liger_by_default

    plain = load(BASE).require()
    assert liger_by_default(plain, has_cuda=True, installed=True)
    assert liger_options(plain, by_default=True) == dict.fromkeys(
        ("rope", "rms_norm", "swiglu", "fused_linear_cross_entropy"), True)
    assert not liger_by_default(plain, has_cuda=False, installed=True)  # no GPU: Triton kernels cannot run
    assert not liger_by_default(plain, has_cuda=True, installed=False)
    chose = load(BASE + "liger_rms_norm: false\n").require()  # any liger_* key: the user chooses
    assert not liger_by_default(chose, has_cuda=True, installed=True) and liger_options(chose) == {}
    for extra in ("cut_cross_entropy: true\n", "fsdp_version: 2\nfsdp_config:\n  reshard_after_forward: true\n"):
        assert not liger_by_default(load(BASE + extra).require(), has_cuda=True, installed=True)
