"""Training options that change what is built: adapter targets, continuing an adapter, model config
overrides, schedules and the attention kernel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from config_helpers import CPU, H100, load

from axo.models.adapter import apply_adapter, linear_module_names
from axo.models.loader import choose_attention, load_model
from axo.models.tokenizer import load_tokenizer
from axo.train.arguments import training_arguments
from axo.train.run import train


def _cfg(model_dir: Path, extra: str = ""):
    return load(f"base_model: {model_dir}\nlearning_rate: 1e-3\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"
                "micro_batch_size: 2\nmax_steps: 2\nlogging_steps: 1\noutput_dir: out\n"
                "dataset_prepared_path: prepared\nsave_strategy: 'no'\n" + extra).require()


def _adapted(cfg):
    tokenizer = load_tokenizer(cfg)
    model, resized = load_model(cfg, tokenizer)
    return apply_adapter(cfg, model, embeddings_resized=resized)


def test_target_linear_adapts_every_projection_but_not_the_head(tiny_llama_dir):
    model, _ = load_model(_cfg(tiny_llama_dir), load_tokenizer(_cfg(tiny_llama_dir)))
    assert linear_module_names(model) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def test_regex_target_modules(workspace, tiny_llama_dir):
    peft_model = _adapted(_cfg(tiny_llama_dir, "adapter: lora\nlora_target_modules: '.*layers\\.0\\.self_attn\\.(q|v)_proj'\n"))
    adapted = {name for name, _ in peft_model.named_modules() if name.endswith("lora_A")}
    assert adapted == {f"base_model.model.model.layers.0.self_attn.{p}_proj.lora_A" for p in "qv"}


def test_rslora_scales_by_the_square_root_of_the_rank(workspace, tiny_llama_dir):
    peft_model = _adapted(_cfg(tiny_llama_dir, "adapter: lora\nlora_r: 16\nlora_alpha: 8\npeft_use_rslora: true\n"
                                               "lora_target_modules: [q_proj]\n"))
    layer = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    assert layer.scaling["default"] == pytest.approx(8 / 16 ** 0.5)


def test_continue_training_an_existing_adapter(workspace, tiny_llama_dir):
    from safetensors.torch import load_file

    first = train(_cfg(tiny_llama_dir, "adapter: lora\nlora_r: 4\n"), progress=False)
    before = load_file(first.output_dir / "adapter_model.safetensors")
    second = train(_cfg(tiny_llama_dir, "adapter: lora\nlora_model_dir: out\noutput_dir: out2\n"), progress=False)
    after = load_file(second.output_dir / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert any(not (before[k] == after[k]).all() for k in before), "the continued adapter must train further"
    assert json.loads((Path("out2") / "adapter_config.json").read_text())["r"] == 4  # the loaded adapter's rank


def test_model_config_overrides_reach_the_model(workspace, tiny_llama_dir):
    cfg = _cfg(tiny_llama_dir, "model_config:\n  rope_theta: 12345.0\n")
    model, _ = load_model(cfg, load_tokenizer(cfg))
    assert model.config.rope_theta == 12345.0 or model.config.rope_parameters["rope_theta"] == 12345.0
    assert model.config.use_cache is False  # packed samples must not see each other through the cache


def test_cosine_min_lr_ratio_selects_cosine_with_min_lr(tiny_llama_dir):
    args = training_arguments(_cfg(tiny_llama_dir, "cosine_min_lr_ratio: 0.1\n"), 8, False, CPU)
    assert args.lr_scheduler_type == "cosine_with_min_lr" and args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}


def test_axolotl_step_defaults(tiny_llama_dir):
    cfg = _cfg(tiny_llama_dir).model_copy(update={"max_steps": 1000, "logging_steps": None, "save_strategy": None})
    args = training_arguments(cfg, 8, False, CPU)
    assert (args.warmup_steps, args.logging_steps, args.save_total_limit) == (30, 5, 4)
    assert args.save_strategy == "epoch" and args.optim == "adamw_torch"  # fused AdamW is CUDA-only


@pytest.mark.parametrize("wanted, hardware, expected", [
    (None, CPU, "sdpa"), ("flash_attention_2", CPU, "sdpa"), ("flash_attention_2", H100, "sdpa"),
    ("eager", CPU, "eager"), ("flex_attention", H100, "flex_attention"),
])
def test_attention_kernel_is_the_best_available(tiny_llama_dir, wanted, hardware, expected):
    extra = f"attn_implementation: {wanted}\n" if wanted else ""
    assert choose_attention(_cfg(tiny_llama_dir, extra), hardware) == expected


def test_packed_rows_on_a_gpu_use_the_varlen_kernel(tiny_llama_dir):
    from axo.models.attention import VARLEN

    packed = _cfg(tiny_llama_dir, "sample_packing: true\nbf16: true\nattn_implementation: flash_attention_2\n")
    assert choose_attention(packed, H100) == VARLEN
    assert choose_attention(packed, CPU) == "sdpa"  # transformers' block-diagonal mask from position_ids
    assert choose_attention(packed.model_copy(update={"attn_implementation": "eager"}), H100) == "eager"
    unpacked = _cfg(tiny_llama_dir, "bf16: true\n")
    assert choose_attention(unpacked, H100) == "sdpa"


def test_sequence_boundaries_from_restarting_positions():
    import torch

    from axo.models.attention import sequence_boundaries

    cu, longest = sequence_boundaries(torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]]), 9)
    assert cu.tolist() == [0, 3, 5, 9] and longest == 4 and cu.dtype == torch.int32
