"""The nested YAML of axolotl-rs is translated to flat Axolotl keys."""

from __future__ import annotations

from config_helpers import find, load

from axo.config.problems import Kind, Severity

ISSUE_SHAPE = """\
model:
  name: meta-llama/Llama-2-7b-hf
  dtype: bfloat16
dataset:
  path: ./data/alpaca.json
  format: alpaca
training:
  epochs: 3
  batch_size: 4
  learning_rate: 2e-4
  gradient_accumulation: 4
adapter:
  type: lora
  rank: 16
  alpha: 32
  target_modules: [q_proj, v_proj]
output_dir: ./out
"""

TZERVAS_SHAPE = """\
base_model: mistralai/Mistral-7B-v0.1
adapter: qlora
lora:
  r: 64
  alpha: 16
quantization:
  bits: 4
  quant_type: nf4
  double_quant: true
dataset:
  path: ./data.jsonl
  format: sharegpt
  max_length: 1024
  val_split: 0.1
training:
  epochs: 1
  gradient_accumulation_steps: 2
  learning_rate: 1e-4
  lr_scheduler: linear
  mixed_precision: true
"""


def test_issue_shape_translates_to_flat_keys():
    cfg = load(ISSUE_SHAPE).require()
    assert cfg.base_model == "meta-llama/Llama-2-7b-hf"
    assert cfg.bf16 is True and cfg.fp16 is False
    assert cfg.datasets[0].path == "./data/alpaca.json" and cfg.datasets[0].type == "alpaca"
    assert (cfg.num_epochs, cfg.micro_batch_size, cfg.gradient_accumulation_steps) == (3, 4, 4)
    assert cfg.learning_rate == 2e-4
    assert (cfg.adapter, cfg.lora_r, cfg.lora_alpha) == ("lora", 16, 32)
    assert cfg.lora_target_modules == ["q_proj", "v_proj"]
    assert cfg.output_dir == "./out"


def test_tzervas_shape_translates_with_quantization():
    loaded = load(TZERVAS_SHAPE)
    cfg = loaded.require()
    assert cfg.adapter == "qlora" and cfg.load_in_4bit is True and cfg.bnb_4bit_quant_type == "nf4"
    assert (cfg.lora_r, cfg.lora_alpha) == (64, 16)
    assert cfg.sequence_len == 1024 and cfg.val_set_size == 0.1
    assert cfg.datasets[0].type == "chat_template"  # sharegpt, translated
    assert cfg.lr_scheduler == "linear" and cfg.gradient_accumulation_steps == 2


def test_axolotl_rs_defaults_fill_what_the_file_leaves_out_and_are_reported():
    loaded = load("model:\n  name: ./m\ndataset:\n  path: d.jsonl\n")
    cfg = loaded.require()
    assert (cfg.num_epochs, cfg.micro_batch_size, cfg.learning_rate, cfg.lora_r) == (3, 4, 2e-4, 64)
    assert "axolotl-rs default" in find(loaded, "learning_rate", Kind.DERIVED).message


def test_full_fine_tune_in_nested_form_has_no_lora_defaults():
    cfg = load("model:\n  name: ./m\ndataset:\n  path: d.jsonl\nadapter:\n  type: none\n").require()
    assert cfg.adapter is None


def test_unknown_nested_key_is_reported_with_its_line():
    loaded = load(ISSUE_SHAPE.replace("  epochs: 3", "  epocs: 3"))
    problem = find(loaded, "training.epocs")
    assert problem.kind is Kind.UNKNOWN_KEY and "did you mean 'epochs'" in problem.message and problem.line == 8


def test_errors_in_translated_values_point_at_the_nested_line():
    loaded = load(ISSUE_SHAPE.replace("learning_rate: 2e-4", "learning_rate: fast"))
    problem = find(loaded, "learning_rate")
    assert problem.severity is Severity.ERROR and problem.line == 10


def test_bad_nested_values():
    loaded = load(ISSUE_SHAPE.replace("dtype: bfloat16", "dtype: int3").replace("type: lora", "type: prefix"))
    assert find(loaded, "model.dtype").severity is Severity.ERROR
    assert find(loaded, "adapter.type").severity is Severity.ERROR
