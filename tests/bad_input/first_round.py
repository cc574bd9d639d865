"""The first round of user mistakes (issue 6): config, data, model and training, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bad_input import ALPACA, BASE, CLOSED, Case, raw


def _no_template_tokenizer(folder: Path, model: Path) -> None:
    target = folder / "plain-tokenizer"
    shutil.copytree(model, target)
    (target / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((target / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (target / "tokenizer_config.json").write_text(json.dumps(config))


def _file_output(folder: Path, model: Path) -> None:
    (folder / "taken").write_text("a file")


def _pickle_model(folder: Path, model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = folder / "pickle-model"
    loaded = AutoModelForCausalLM.from_pretrained(model)
    loaded.config.save_pretrained(target)
    torch.save(loaded.state_dict(), target / "pytorch_model.bin")
    AutoTokenizer.from_pretrained(model).save_pretrained(target)


def _existing_config(folder: Path, model: Path) -> None:
    (folder / "exists.yml").write_text("keep me\n")


CASES = [
    # ---- config ----
    Case("misspelt-key-strict", "a misspelt key with --strict", "validate", BASE + "learning_rte: 1e-4\n", ("--strict",),
         ("learning_rte", "did you mean 'learning_rate'")),
    Case("wrong-type", "a word where a number belongs", "validate", BASE + "micro_batch_size: four\n", (),
         ("micro_batch_size", "'four'")),
    Case("unknown-dataset-type", "a misspelt dataset type", "validate", BASE.replace("alpaca\n", "alpacca\n"), (),
         ("datasets[0].type", "did you mean 'alpaca'")),
    Case("warmup-both", "warmup_steps with warmup_ratio", "validate", BASE + "warmup_steps: 10\nwarmup_ratio: 0.1\n", (),
         ("warmup_ratio", "Keep one")),
    Case("val-and-test", "val_set_size with test_datasets", "validate",
         BASE + "val_set_size: 0.1\ntest_datasets:\n  - path: data.jsonl\n    type: alpaca\n", (), ("val_set_size",)),
    Case("batch-disagrees", "batch_size that disagrees with gradient_accumulation_steps", "validate",
         BASE + "batch_size: 8\ngradient_accumulation_steps: 2\n", (), ("batch_size", "gradient_accumulation_steps")),
    Case("qlora-no-4bit", "adapter: qlora without load_in_4bit", "validate", BASE + "adapter: qlora\n", (),
         ("adapter", "load_in_4bit: true")),
    Case("bf16-fp16", "bf16 and fp16 both on", "validate", BASE + "bf16: true\nfp16: true\n", (), ("fp16", "bf16")),
    Case("4bit-full", "a 4-bit base without an adapter", "validate", BASE + "load_in_4bit: true\n", (),
         ("load_in_4bit", "adapter: qlora")),
    Case("fused-lora-dora", "a fused LoRA kernel forced on with DoRA", "validate",
         BASE + "adapter: lora\npeft_use_dora: true\nlora_mlp_kernel: true\n", (), ("lora_mlp_kernel", "peft_use_dora")),
    Case("fsdp-liger-flce", "FSDP with Liger's fused linear cross-entropy", "validate",
         BASE + "fsdp_version: 2\nliger_fused_linear_cross_entropy: true\n", (), ("liger_fused_linear_cross_entropy", "FSDP")),
    Case("cce-liger-flce", "Cut Cross Entropy and Liger's fused linear cross-entropy together", "validate",
         BASE + "cut_cross_entropy: true\nliger_fused_linear_cross_entropy: true\n", (),
         ("cut_cross_entropy", "liger_fused_linear_cross_entropy", "only one cross-entropy kernel")),
    Case("cce-unavailable", "Cut Cross Entropy where its package or a CUDA GPU is missing", "train",
         BASE + "cut_cross_entropy: true\nmax_steps: 1\n", (), ("cut_cross_entropy", "cut-cross-entropy")),
    Case("deepspeed-missing", "a DeepSpeed config that does not exist", "train", BASE + "deepspeed: nowhere/ds9.json\n", (),
         ("deepspeed", "was not found", "zero2")),
    Case("deepspeed-offload-optimizer", "a DeepSpeed JSON that offloads the optimizer DeepSpeed would refuse", "train",
         BASE + "deepspeed:\n  zero_optimization:\n    stage: 3\n    offload_optimizer:\n      device: cpu\n", (),
         ("deepspeed", "zero_force_ds_cpu_optimizer")),
    Case("deepspeed-fsdp", "DeepSpeed and FSDP together", "validate", BASE + "deepspeed: ds.json\nfsdp_version: 2\n", (),
         ("deepspeed",)),
    Case("no-base-model", "no base_model", "validate", "NOBASE" + BASE, (), ("base_model", "is required")),
    Case("no-learning-rate", "no learning_rate", "validate", "datasets:\n  - path: data.jsonl\n    type: alpaca\n", (),
         ("learning_rate", "is required")),
    Case("no-datasets", "no datasets", "validate", "learning_rate: 1e-4\n", (), ("datasets", "- path:")),
    Case("yaml-syntax", "broken YAML indentation", "validate", BASE + "  - path: x\n   type: alpaca\n", (),
         ("invalid YAML", "line")),
    Case("config-missing", "a config path that does not exist", "validate", None, ("missing.yml",), ("no such file",)),
    Case("config-is-dir", "a folder given as the config", "validate", None, (".",), ("is a directory",)),
    Case("config-is-list", "a YAML list instead of a mapping", "validate", "RAW- a\n- b\n", (), ("mapping",)),
    Case("alias-bomb", "an alias bomb", "validate",
         "RAWa: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
         "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
         (), ("expands to more than",)),
    Case("jinja-without-template", "chat_template: jinja without a template", "validate",
         BASE + "chat_template: jinja\n", (), ("chat_template_jinja",)),
    Case("bad-literal", "an excess_length_strategy that does not exist", "validate",
         BASE + "excess_length_strategy: chop\n", (), ("excess_length_strategy", "'truncate'")),
    Case("dropout-range", "lora_dropout above 1", "validate", BASE + "lora_dropout: 1.5\n", (), ("lora_dropout",)),
    Case("attention-spellings", "old and new attention spellings that disagree", "validate",
         BASE + "flash_attention: true\nattn_implementation: sdpa\n", (), ("flash_attention", "attn_implementation")),
    Case("packing-flattening", "sample_packing with batch_flattening", "validate",
         BASE + "sample_packing: true\nbatch_flattening: true\n", (), ("batch_flattening",)),
    Case("boolean-number", "true where a number belongs", "validate", BASE + "micro_batch_size: true\n", (),
         ("micro_batch_size", "expected a number")),
    # ---- data ----
    Case("data-missing", "a dataset file that does not exist", "preprocess",
         BASE.replace("data.jsonl", "nowhere.jsonl"), (), ("nowhere.jsonl", "not found")),
    Case("malformed-jsonl", "a malformed JSON line", "preprocess", BASE, (), ("data.jsonl", "line 2"),
         raw('{"instruction": "a", "output": "b"}\n{oops\n')),
    Case("missing-field", "a row without the output field", "preprocess", BASE, (), ("row 2", "'output'"),
         ({"instruction": "a", "output": "b"}, {"instruction": "a", "answer": "b"})),
    Case("empty-dataset", "an empty dataset file", "preprocess", BASE, (), ("holds no rows",), raw("")),
    Case("all-too-long", "every row longer than sequence_len", "preprocess", BASE + "sequence_len: 8\n", (),
         ("every one of its", "longer than sequence_len")),
    Case("row-too-long-raise", "a row too long with excess_length_strategy: raise", "preprocess",
         BASE + "sequence_len: 16\nexcess_length_strategy: raise\n", (), ("row 1", "sequence_len")),
    Case("no-chat-template", "a tokenizer without a chat template", "preprocess",
         "learning_rate: 1e-4\ntokenizer_config: plain-tokenizer\ndatasets:\n  - path: data.jsonl\n    type: chat_template\n",
         (), ("no chat template", "chat_template"), ({"messages": [{"role": "user", "content": "hi"}]},),
         _no_template_tokenizer),
    Case("unknown-file-type", "a data file with an unknown suffix", "preprocess",
         BASE.replace("data.jsonl", "data.xml"), (), ("data.xml", "ds_type")),
    Case("csv-columns", "a CSV row with more columns than the header", "preprocess",
         BASE.replace("data.jsonl", "data.csv"), (), ("data.csv", "line 3")),
    Case("bad-split", "a split that is not a slice", "preprocess",
         BASE + "    split: train[five]\n", (), ("split",)),
    Case("shard-range", "shards_idx out of range", "preprocess", BASE + "    shards: 2\n    shards_idx: 5\n", (),
         ("shards_idx",)),
    Case("tokens-out-of-vocab", "pre-tokenized ids outside the vocabulary", "preprocess",
         "learning_rate: 1e-4\ndatasets:\n  - path: data.jsonl\n", (), ("input_ids", "row 1"),
         ({"input_ids": [1, 2, 99999]},)),
    Case("eot-multi-token", "an eot token that is several tokens", "preprocess",
         "learning_rate: 1e-4\neot_tokens: ['not one token']\ndatasets:\n  - path: data.jsonl\n    type: chat_template\n",
         (), ("eot_tokens",), ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},)),
    # ---- model and training ----
    Case("base-model-missing", "a base model folder that does not exist", "train",
         "NOBASEbase_model: ./no-such-model\n" + BASE, (), ("base_model",)),
    Case("qlora-on-cpu", "QLoRA on a machine without CUDA", "train",
         BASE + "adapter: qlora\nload_in_4bit: true\n", (), ("load_in_4bit", "CUDA")),
    Case("bnb-optimizer-cpu", "an 8-bit optimizer without CUDA", "train", BASE + "optimizer: adamw_bnb_8bit\n", (),
         ("optimizer", "bitsandbytes")),
    Case("optimizer-package-missing", "an optimizer whose package is not installed", "train",
         BASE + "optimizer: optimi_adamw\n", (), ("optimizer", "torch-optimi")),
    Case("optimizer-axolotl-only", "an optimizer only Axolotl itself implements", "train",
         BASE + "optimizer: adopt_adamw\n", (), ("optimizer", "implemented inside Axolotl", "adamw_torch")),
    Case("attention-package-missing", "xformers attention without xformers installed", "train",
         BASE + "attn_implementation: xformers\n", (), ("attn_implementation", "pip install xformers")),
    Case("unfrozen-matches-nothing", "unfrozen_parameters naming no parameter of the model", "train",
         BASE + "unfrozen_parameters: ['^transformer.h.0']\n", (), ("unfrozen_parameters", "matches none")),
    Case("output-dir-is-file", "output_dir pointing at a file", "train", BASE + "output_dir: taken\n", (),
         ("output_dir", "is a file"), ALPACA, _file_output),
    Case("output-dir-unwritable", "an output_dir that cannot be created", "train", BASE + "output_dir: taken/run\n", (),
         ("output_dir", "cannot be created"), ALPACA, _file_output),
    Case("resume-without-checkpoint", "resume_from_checkpoint naming no checkpoint", "train",
         BASE + "resume_from_checkpoint: out/checkpoint-9\noutput_dir: out\n", (), ("not a complete checkpoint",)),
    Case("tokens-without-modules", "new tokens with LoRA but no modules_to_save", "train",
         BASE + "adapter: lora\ntokens: ['<tool>']\n", (), ("lora_modules_to_save",)),
    Case("pickle-weights", "pickle-only weights without opt-in", "train",
         "NOBASEbase_model: pickle-model\n" + BASE, (), ("load_pickle_weights",), ALPACA, _pickle_model),
    Case("bad-model-type", "a model_type that is not a transformers class", "train", BASE + "model_type: NoSuchModel\n",
         (), ("model_type",)),
    Case("hub-offline", "a Hub model id with HF_HUB_OFFLINE set and no copy in the local cache", "preprocess",
         "NOBASEbase_model: tiny-org/not-cached\n" + BASE, (),
         ("'tiny-org/not-cached'", "HF_HUB_OFFLINE is set", "Point `base_model` at a local"),
         env=(("HF_HUB_OFFLINE", "1"),)),
    Case("hub-unreachable", "a Hub model id when the Hub cannot be reached and nothing is cached", "train",
         "NOBASEbase_model: tiny-org/not-cached\n" + BASE, (),
         ("'tiny-org/not-cached'", "cannot be reached", "a cached copy is used"), env=(("HF_ENDPOINT", CLOSED),)),
    Case("hub-dataset-unreachable", "a Hub dataset id when the Hub cannot be reached and nothing is cached",
         "preprocess", BASE.replace("data.jsonl", "tiny-org/not-cached"), (),
         ("path", "'tiny-org/not-cached'", "cannot be reached", "axo preprocess"), env=(("HF_ENDPOINT", CLOSED),)),
    # ---- CLI ----
    Case("stray-argument", "a stray argument after the config", "validate", BASE, ("stray",), ("not an option",)),
    Case("negative-index", "an override with a negative list index", "validate", BASE, ("--datasets.-1.path", "x"),
         ("negative",)),
    Case("unknown-preset", "axo init with a misspelt preset", "init", None, ("--preset", "llama-3.1-8b-qlor", "-o", "c.yml"),
         ("did you mean 'llama-3.1-8b-qlora'",)),
    Case("init-overwrite", "axo init onto an existing file", "init", None, ("-o", "exists.yml"), ("already exists",),
         ALPACA, _existing_config),
    Case("schema-unknown-key", "axo config-schema with a misspelt key", "config-schema", None, ("learning_rte",),
         ("did you mean 'learning_rate'",)),
    Case("merge-not-a-run", "merge-lora on a folder that is not a run", "merge-lora", None, (".",), ("not an axo run",)),
    Case("inference-half-batch", "inference --input without --output", "inference", BASE, ("-i", "data.jsonl"),
         ("--output",)),
]
