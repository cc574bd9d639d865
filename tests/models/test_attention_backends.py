"""`attn_implementation` values Axolotl 0.21 accepts: each validates; what transformers provides runs, and an
absent backend package is an error naming what to install, before any data or model work."""

from __future__ import annotations

import importlib.util

import pytest
from config_helpers import BASE, CPU, load

from axo.config.problems import ConfigError, Severity
from axo.config.schema.names import is_hub_kernel
from axo.models.attention import attention_backend, check_attention


@pytest.mark.parametrize("value", ["eager", "sdpa", "flash_attention_2", "flash_attention_3", "flash_attention_4",
                                   "flex_attention", "xformers", "kernels-community/flash-attn3",
                                   "kernels-community/vllm-flash-attn3:flash_attention", "org/kernel@v2"])
def test_axolotl_attention_values_validate(value):
    assert [p for p in load(BASE + f"attn_implementation: {value}\n").problems if p.severity is Severity.ERROR] == []


@pytest.mark.parametrize("value", ["flash", "kernels/", "/x", "a/b/c"])
def test_other_values_are_refused(value):
    assert is_hub_kernel(value) is False
    assert any(p.key == "attn_implementation" and p.severity is Severity.ERROR
               for p in load(BASE + f"attn_implementation: '{value}'\n").problems)


@pytest.mark.skipif(importlib.util.find_spec("xformers") is not None, reason="xformers is installed here")
def test_xformers_without_the_package_names_it_at_train_time(tiny_llama_dir):
    from axo.train.run import preflight

    cfg = load(BASE.replace("./m", str(tiny_llama_dir)) + "attn_implementation: xformers\n").require()
    with pytest.raises(ConfigError) as raised:
        preflight(cfg, CPU)
    assert "pip install xformers" in raised.value.problems[0].hint


def test_hub_kernel_without_the_kernels_package_names_it(monkeypatch):
    from transformers.utils import import_utils

    monkeypatch.setattr(import_utils, "is_kernels_available", lambda: False)
    with pytest.raises(ConfigError) as raised:
        check_attention("kernels-community/flash-attn3")
    assert "pip install kernels" in raised.value.problems[0].hint


def test_transformers_backends_pass_through():
    for name in ("eager", "sdpa", "flex_attention"):
        check_attention(name)
        assert attention_backend(name) == name
