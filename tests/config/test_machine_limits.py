"""`axo validate` reports what this machine cannot run, in the words of what `axo train` then does here.

Each warning is checked twice: that validation reports it for a machine without CUDA (and not for a GPU
machine), and that the training code really does what the warning says (refuses, runs SDPA, ignores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from config_helpers import BASE, CPU, H100, V100, load

from axo.config.hardware import Hardware
from axo.config.problems import ConfigError, Kind, Severity

NO_GPU = "this machine has no CUDA GPU"

# (extra YAML, key warned about, what `axo train` does here)
CASES = [
    ("adapter: qlora\nload_in_4bit: true\n", "load_in_4bit",
     "4-bit loading (bitsandbytes) needs a CUDA GPU; " + NO_GPU + " — `axo train` will refuse it here."),
    ("adapter: lora\nload_in_8bit: true\n", "load_in_8bit",
     "8-bit loading (bitsandbytes) needs a CUDA GPU; " + NO_GPU + " — `axo train` will refuse it here."),
    ("optimizer: paged_adamw_8bit\n", "optimizer",
     "`paged_adamw_8bit` is a bitsandbytes optimizer, which needs a CUDA GPU; " + NO_GPU
     + " — `axo train` will refuse it here."),
    ("bf16: true\n", "bf16", "bfloat16 training is meant for a GPU; " + NO_GPU + " — `axo train` will train in "
     "bfloat16 on the CPU here, many times slower than float32 on CPUs without bfloat16 instructions."),
    ("fp16: true\n", "fp16", "float16 training is meant for a GPU; " + NO_GPU + " — `axo train` will train in "
     "float16 on the CPU here, many times slower than float32."),
    ("flash_attention: true\n", "attn_implementation",
     "`flash_attention_2` attention needs a CUDA GPU; " + NO_GPU + " — `axo train` will run attention as SDPA here."),
    ("attn_implementation: flash_attention_3\n", "attn_implementation",
     "`flash_attention_3` attention needs a CUDA GPU; " + NO_GPU + " — `axo train` will run attention as SDPA here."),
    ("attn_implementation: varlen\n", "attn_implementation",
     "`varlen` attention needs a CUDA GPU; " + NO_GPU + " — `axo train` will run attention as SDPA here."),
    ("tf32: true\n", "tf32",
     "TF32 matmuls need an Ampere or newer CUDA GPU; " + NO_GPU + " — `axo train` will ignore it here."),
    ("liger_rms_norm: true\nliger_rope: true\n", "liger_rope",  # one warning for all liger_* keys
     "the Liger kernels are Triton kernels for CUDA GPUs; " + NO_GPU + " — `axo train` cannot apply them here."),
]


def _hardware_problems(text: str, hardware: Hardware):
    return [p for p in load(text, hardware=hardware).problems if p.kind is Kind.HARDWARE]


@pytest.mark.parametrize("extra, key, message", CASES, ids=[c[1] + ":" + c[0].split(":")[0] for c in CASES])
def test_a_setting_this_machine_cannot_run_is_one_warning_naming_the_machine(extra, key, message):
    loaded = load(BASE + extra, hardware=CPU)
    assert loaded.ok  # a warning, not an error: the config is fine for the GPU machine it is meant for
    [problem] = [p for p in loaded.problems if p.kind is Kind.HARDWARE]
    assert (problem.severity, problem.key, problem.message) == (Severity.WARNING, key, message)


@pytest.mark.parametrize("extra, key, message", CASES, ids=[c[1] + ":" + c[0].split(":")[0] for c in CASES])
def test_a_gpu_machine_gets_no_such_warning(extra, key, message):
    assert _hardware_problems(BASE + extra, H100) == []


def test_the_warning_points_at_the_line_the_user_wrote():
    # `flash_attention: true` is translated to attn_implementation; the warning names the line of the old key
    [problem] = _hardware_problems(BASE + "seed: 1\nflash_attention: true\n", CPU)
    assert problem.line == BASE.count("\n") + 2


def test_tf32_on_a_gpu_older_than_ampere_is_ignored_there_too():
    [problem] = _hardware_problems(BASE + "tf32: true\n", V100)
    assert problem.message == ("TF32 matmuls need an Ampere or newer CUDA GPU; this machine has 1 CUDA GPU(s), "
                               "compute capability 7.0 — `axo train` will ignore it here.")


def test_auto_values_and_defaults_raise_no_hardware_warning():
    # `auto` resolves to what the machine can do; the default optimizer (adamw_torch_fused) falls back to the
    # same maths on CPU. Only what the config asks for explicitly is reported.
    assert _hardware_problems(BASE + "bf16: auto\ntf32: auto\nattn_implementation: sdpa\n", CPU) == []
    assert _hardware_problems(BASE + "adapter: lora\nload_in_4bit: false\nbf16: false\n", CPU) == []


def test_a_qlora_config_lists_every_setting_at_once():
    text = BASE + "adapter: qlora\nload_in_4bit: true\noptimizer: adamw_bnb_8bit\nbf16: true\nflash_attention: true\n"
    keys = [p.key for p in _hardware_problems(text, CPU)]
    assert sorted(keys) == ["attn_implementation", "bf16", "load_in_4bit", "optimizer"]


# ---- what `axo train` does with them on this machine ----

@pytest.mark.parametrize("extra, key", [("adapter: qlora\nload_in_4bit: true\n", "load_in_4bit"),
                                        ("adapter: lora\nload_in_8bit: true\n", "load_in_8bit"),
                                        ("optimizer: paged_adamw_8bit\n", "optimizer"),
                                        ("optimizer: adamw_bnb_8bit\n", "optimizer")])
def test_train_refuses_what_validate_says_it_will_refuse(extra, key):
    from axo.train.run import preflight

    cfg = load(BASE + extra, hardware=CPU).require()
    with pytest.raises(ConfigError) as refused:
        preflight(cfg, CPU)
    assert [p.key for p in refused.value.problems] == [key]


@pytest.mark.parametrize("attention", ["flash_attention_2", "flash_attention_3", "varlen"])
def test_train_runs_sdpa_where_validate_says_so(attention):
    from axo.models.loader import choose_attention

    cfg = load(BASE + f"attn_implementation: {attention}\nsample_packing: true\n", hardware=CPU).require()
    assert choose_attention(cfg, CPU) == "sdpa"


def test_train_ignores_tf32_and_trains_in_half_precision_on_the_cpu_as_validate_says():
    import torch

    from axo.models.loader import training_dtype
    from axo.train.arguments import training_arguments

    bf16 = load(BASE + "bf16: true\ntf32: true\n", hardware=CPU).require()
    arguments = training_arguments(bf16, 8, False, CPU)
    assert arguments.tf32 is None and arguments.bf16 is True and arguments.use_cpu is True
    assert training_dtype(bf16) is torch.bfloat16
    fp16 = load(BASE + "fp16: true\n", hardware=CPU).require()
    assert training_arguments(fp16, 8, False, CPU).fp16 is True and training_dtype(fp16) is torch.float16


def test_the_bitsandbytes_optimizers_are_the_ones_training_refuses():
    from axo.config.rules import BNB_OPTIMIZERS
    from axo.train.arguments import BNB_OPTIMIZERS as REFUSED

    assert BNB_OPTIMIZERS == REFUSED


def test_axo_validate_on_this_cpu_machine_prints_the_warning(tmp_path):
    # through the real command; CUDA_VISIBLE_DEVICES="" makes this machine one without a GPU even on a GPU host
    config = tmp_path / "qlora.yml"
    config.write_text(BASE + "adapter: qlora\nload_in_4bit: true\n")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    shown = subprocess.run([sys.executable, "-m", "axo", "validate", str(config), "-q"], capture_output=True,
                           text=True, env=env, cwd=tmp_path, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert ("warning load_in_4bit (line 7): 4-bit loading (bitsandbytes) needs a CUDA GPU; this machine has no CUDA "
            "GPU — `axo train` will refuse it here.") in shown.stderr
    as_json = subprocess.run([sys.executable, "-m", "axo", "validate", str(config), "--json"], capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=120)
    hardware = [p for p in json.loads(as_json.stdout)["problems"] if p["kind"] == "hardware"]
    assert [(p["severity"], p["key"]) for p in hardware] == [("warning", "load_in_4bit")]
