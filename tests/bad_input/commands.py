"""Bad input, round two (issue 16): commands — config files, models, command-line options, and run folders
whose training never finished."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bad_input import BASE, Case

TRAIN = BASE + "max_steps: 1\nmicro_batch_size: 1\noutput_dir: out\n"  # a failing run fails before its one step
REFS = ({"instruction": "Give a tip.", "output": "Drink water."},)


def _fifo(name: str):
    def setup(folder: Path, model: Path) -> None:
        os.mkfifo(folder / name)
    return setup


def _file(name: str, content: bytes = b"not a folder\n"):
    def setup(folder: Path, model: Path) -> None:
        (folder / name).write_bytes(content)
    return setup


def _huge_plain_config(folder: Path, model: Path) -> None:
    (folder / "huge.yml").write_text("".join(f"key_{i}: {i}\n" for i in range(150_000)))


def _folder(name: str):
    def setup(folder: Path, model: Path) -> None:
        (folder / name).mkdir()
    return setup


def _model_copy(folder: Path, model: Path, name: str = "model") -> Path:
    target = folder / name
    shutil.copytree(model, target)
    return target


def _truncated_model(folder: Path, model: Path) -> None:
    weights = _model_copy(folder, model) / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)  # an interrupted download


def _no_model_config(folder: Path, model: Path) -> None:
    (_model_copy(folder, model) / "config.json").unlink()


def _tokenizer_without_files(folder: Path, model: Path) -> None:
    target = folder / "tok"
    target.mkdir()
    shutil.copy(model / "tokenizer_config.json", target / "tokenizer_config.json")  # tokenizer.json left behind


def _custom_code_model(folder: Path, model: Path) -> None:
    target = _model_copy(folder, model)
    config = json.loads((target / "config.json").read_text())
    config.update(model_type="tiny-custom", architectures=["TinyCustomForCausalLM"],
                  auto_map={"AutoConfig": "configuration_tiny.TinyConfig",
                            "AutoModelForCausalLM": "modeling_tiny.TinyCustomForCausalLM"})
    (target / "config.json").write_text(json.dumps(config))
    (target / "configuration_tiny.py").write_text("raise SystemExit('custom code must not run unasked')\n")


def _stub_run(folder: Path, model: Path, name: str = "out") -> Path:
    """A run folder as a failed `axo train` leaves it: the resolved config and nothing else."""
    run = folder / name
    run.mkdir()
    (run / "axo_config.yml").write_text(f"base_model: {model}\nlearning_rate: 1e-4\noutput_dir: {name}\n"
                                        "datasets:\n  - path: data.jsonl\n    type: alpaca\n")
    (folder / "refs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in REFS))
    return run


def _stub_with_checkpoint(folder: Path, model: Path) -> None:
    checkpoint = _stub_run(folder, model) / "checkpoint-2"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text('{"global_step": 2}')
    (checkpoint / "adapter_model.safetensors").write_bytes(b"")


def _config_without_run(folder: Path, model: Path) -> None:
    (folder / "refs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in REFS))


def _damaged_adapter_run(folder: Path, model: Path) -> None:
    """A run folder of an older axo (no axo_run.json) whose adapter file was cut short after training."""
    run = _stub_run(folder, model, "run")
    (run / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"],
        "base_model_name_or_path": str(model)}))
    (run / "adapter_model.safetensors").write_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":")
    (run / "provenance.json").write_text(json.dumps({"axo_version": "0.1.0", "steps": 2}))


CASES = [
    # ---- config files ----
    Case("cmd-yaml-nul", "a NUL byte in the config", "validate", BASE + "seed: 1\x00\n", (),
         ("NUL byte", "line 6", "UTF-8")),
    Case("cmd-config-fifo", "a named pipe given as the config", "validate", None, ("pipe.yml",),
         ("pipe.yml", "named pipe (FIFO)"), setup=_fifo("pipe.yml"), absent=("directory", "folder")),
    Case("cmd-config-empty", "an empty config file", "validate", "RAW", (), ("the file is empty", "axo init")),
    Case("cmd-config-binary", "a binary file given as the config", "validate", None, ("image.yml",),
         ("image.yml", "not UTF-8"), setup=_file("image.yml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")),
    Case("cmd-config-huge-file", "a config file larger than 4 MiB", "validate", None, ("big.yml",),
         ("big.yml", "4 MiB"), setup=_file("big.yml", b"# padding\n" * 500_000)),
    Case("cmd-plain-keys-huge", "150,000 plain keys (no aliases) in the config", "validate", None, ("huge.yml",),
         ("too large", "150,000 lines"), setup=_huge_plain_config, absent=("alias",)),
    Case("cmd-seed-negative", "seed: -1", "validate", BASE + "seed: -1\n", (), ("seed", "between 0 and 4294967295")),
    Case("cmd-seed-too-large", "a seed of 2**32 given on the command line", "train", TRAIN, ("--seed", "4294967296"),
         ("--seed", "between 0 and 4294967295")),
    Case("cmd-output-dir-empty", "output_dir: ''", "validate", BASE + "output_dir: ''\n", (),
         ("output_dir", "is empty", "./outputs/my-run")),
    Case("cmd-base-model-empty", "base_model: ''", "validate", "NOBASEbase_model: ''\n" + BASE, (),
         ("base_model", "is empty")),
    Case("cmd-base-model-device", "a character device given as the base model", "validate",
         "NOBASEbase_model: /dev/null\n" + BASE, (), ("base_model", "character device")),
    Case("cmd-override-through-value", "an override that indexes into a plain value", "validate", BASE,
         ("--datasets.0.path.0", "x"), ("--datasets.0.path.0", "not a list")),
    Case("cmd-override-list-for-number", "an override giving a list where a number belongs", "validate", BASE,
         ("--learning-rate", "[1e-4, 2e-4]"), ("learning_rate", "--learning-rate")),
    # ---- data and cache paths ----
    Case("cmd-data-fifo", "a named pipe given as the dataset", "preprocess", BASE.replace("data.jsonl", "rows.jsonl"),
         (), ("rows.jsonl", "named pipe (FIFO)"), setup=_fifo("rows.jsonl"), absent=("is a folder",)),
    Case("cmd-data-folder-named-jsonl", "an empty folder named like a dataset file", "preprocess",
         BASE.replace("data.jsonl", "rows.jsonl"), (), ("rows.jsonl", "folder"), setup=_folder("rows.jsonl")),
    Case("cmd-prepared-path-file", "dataset_prepared_path naming a file", "preprocess",
         BASE + "dataset_prepared_path: cache.txt\n", (), ("dataset_prepared_path", "'cache.txt' is a file"),
         setup=_file("cache.txt")),
    Case("cmd-prepared-path-under-file", "dataset_prepared_path inside a file", "preprocess",
         BASE + "dataset_prepared_path: cache.txt/prepared\n", (), ("dataset_prepared_path", "cannot be created"),
         setup=_file("cache.txt")),
    Case("cmd-output-dir-file-validate", "output_dir naming a file, at validate", "validate",
         BASE + "output_dir: taken\n", (), ("output_dir", "is a file"), setup=_file("taken")),
    # ---- models and tokenizers ----
    Case("cmd-truncated-base", "a base model whose model.safetensors was cut short", "train",
         "NOBASEbase_model: model\n" + TRAIN, (), ("model.safetensors", "damaged", "again"), setup=_truncated_model),
    Case("cmd-model-without-config", "a model folder without config.json", "train", "NOBASEbase_model: model\n" + TRAIN,
         (), ("base_model", "config.json"), setup=_no_model_config),
    Case("cmd-tokenizer-without-files", "a tokenizer folder missing its tokenizer files", "preprocess",
         BASE + "tokenizer_config: tok\n", (), ("tokenizer_config", "'tok'"), setup=_tokenizer_without_files),
    Case("cmd-custom-code-model", "a custom-code model without trust_remote_code", "train",
         "NOBASEbase_model: model\n" + TRAIN, (), ("base_model", "trust_remote_code: true"),
         setup=_custom_code_model, absent=("must not run",)),
    Case("cmd-model-type-tokenizer", "a tokenizer class given as model_type", "train", TRAIN + "model_type: AutoTokenizer\n",
         (), ("model_type", "'AutoTokenizer' is not a transformers model class")),
    Case("cmd-tokenizer-type-model", "a model class given as tokenizer_type", "preprocess",
         BASE + "tokenizer_type: AutoModel\n", (), ("tokenizer_type", "'AutoModel' is not a transformers tokenizer")),
    Case("cmd-model-config-shape", "a model_config override that changes the weights' shapes", "train",
         TRAIN + "model_config:\n  hidden_size: 128\n", (), ("model_config", "hidden_size: 128", "rope_theta")),
    Case("cmd-model-config-layers", "a model_config override adding layers the checkpoint lacks", "train",
         TRAIN + "model_config:\n  num_hidden_layers: 4\n", (), ("model_config", "num_hidden_layers: 4",
                                                                  "not in the checkpoint")),
    Case("cmd-lora-model-dir-missing", "a lora_model_dir that does not exist", "train",
         TRAIN + "adapter: lora\nlora_model_dir: old-adapter\n", (), ("lora_model_dir", "'old-adapter' does not exist")),
    Case("cmd-lora-model-dir-not-adapter", "a lora_model_dir without adapter_config.json", "train",
         TRAIN + "adapter: lora\nlora_model_dir: notes\n", (), ("lora_model_dir", "adapter_config.json"),
         setup=_folder("notes")),
    # ---- run folders ----
    Case("cmd-stub-run-inference", "inference on a run folder a failed train left (only axo_config.yml)",
         "inference", None, ("out", "-i", "refs.jsonl", "-o", "answers.jsonl"),
         ("training never finished", "axo_config.yml", "axo inference out --base-only"), setup=_stub_run),
    Case("cmd-stub-run-evaluate", "evaluate on a run folder with a checkpoint but no final save", "evaluate", None,
         ("out", "--references", "refs.jsonl"), ("training never finished", "from checkpoint-2", "--resume",
                                                  "axo evaluate out --base-only"), setup=_stub_with_checkpoint),
    Case("cmd-stub-run-serve", "serve on a run folder whose training never finished", "serve", None, ("out",),
         ("training never finished", "axo serve"), setup=_stub_run),
    Case("cmd-stub-run-merge", "merge-lora on a run folder whose training never finished", "merge-lora", None, ("out",),
         ("training never finished", "axo train CONFIG"), setup=_stub_run),
    Case("cmd-config-without-run", "inference on a config whose output_dir was never trained", "inference",
         BASE + "output_dir: never-trained\n", ("-i", "refs.jsonl", "-o", "answers.jsonl"),
         ("never-trained holds no trained run", "axo train cfg.yml"), setup=_config_without_run),
    Case("cmd-damaged-adapter", "inference on a run whose adapter file was cut short", "inference", None,
         ("run", "-i", "refs.jsonl", "-o", "answers.jsonl"), ("adapter_model.safetensors", "damaged"),
         setup=_damaged_adapter_run),
    # ---- command-line options ----
    Case("cmd-init-into-folder", "axo init -o naming an existing folder", "init", None, ("-o", "configs"),
         ("configs is a folder", "configs/config.yml"), setup=_folder("configs"), absent=("--force",)),
    # ---- Axolotl features axo does not have yet (issue 17: an error naming the feature, not SFT on prompts) ----
    Case("cmd-rl-grpo", "an Axolotl GRPO config (`rl: grpo`, online RL axo does not have)", "train",
         BASE + "rl: grpo\n", (), ("rl", "GRPO reinforcement learning", "does not have")),
    Case("cmd-diffusion-plugin", "Axolotl's diffusion plugin (a training objective axo does not have)", "train",
         BASE + "plugins:\n  - axolotl.integrations.diffusion.DiffusionPlugin\n", (),
         ("plugins[0]", "diffusion language-model training", "would train plain causal-LM")),
    Case("cmd-reward-model", "a reward-model config with SFT (alpaca) data", "validate", BASE + "reward_model: true\n", (),
         ("reward_model",)),
    # ---- planning (issue 20) ----
    Case("cmd-plan-unknown-gpu", "axo plan for a GPU axo has no entry for", "plan", BASE, ("--gpu", "tpu-v5"),
         ("'tpu-v5' is not a GPU axo knows", "rtx4090", "--memory")),
    Case("cmd-plan-no-gpu", "axo plan on a machine without a GPU, naming none", "plan", BASE, (),
         ("no CUDA GPU to plan for", "--gpu")),
    Case("cmd-memory-cap-not-a-size", "a GPU memory cap that is not a size", "validate",
         BASE + "gpu_memory_limit: plenty\n", (), ("gpu_memory_limit", "is not a size", "20GiB")),
    Case("cmd-memory-cap-twice", "max_memory and gpu_memory_limit both set", "validate",
         BASE + "gpu_memory_limit: 20\nmax_memory:\n  0: 20GiB\n", (), ("gpu_memory_limit", "Keep one")),
]
