"""The bad-input matrix: user mistakes across config, data, model and CLI. Each one exits non-zero with a
message that names the file, row or key and the fix, shows no traceback, and leaves nothing half-written.

`python tests/cli/test_bad_input.py --write-doc docs/ERRORS.md` regenerates the table in docs/ERRORS.md
from these cases (run from the repo root with the package installed).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

BASE = "learning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"
ALPACA = ({"instruction": "Give a tip.", "input": "", "output": "Drink water."},) * 4
CLOSED = "http://127.0.0.1:9"  # a Hub endpoint nothing answers: no test reaches outside this machine


@dataclass(frozen=True)
class Case:
    id: str
    mistake: str
    command: str
    config: str | None = None  # YAML (base_model is prepended) or None
    extra: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    data: object = ALPACA  # rows for data.jsonl, or raw text
    setup: Callable[[Path, Path], None] | None = None
    # Environment for the command. Such a case runs `python -m axo` in a subprocess (huggingface_hub reads its
    # HF_* variables once, when imported), with an empty Hugging Face cache and, unless `env` names another, the
    # CLOSED Hub endpoint.
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class Ran:
    """A subprocess's outcome, with the fields of typer's test Result that the checks read."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None


def _raw(text: str):
    return text


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
         _raw('{"instruction": "a", "output": "b"}\n{oops\n')),
    Case("missing-field", "a row without the output field", "preprocess", BASE, (), ("row 2", "'output'"),
         ({"instruction": "a", "output": "b"}, {"instruction": "a", "answer": "b"})),
    Case("empty-dataset", "an empty dataset file", "preprocess", BASE, (), ("holds no rows",), _raw("")),
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
    Case("output-dir-is-file", "output_dir pointing at a file", "train", BASE + "output_dir: taken\n", (),
         ("output_dir", "is a file"), ALPACA, _file_output),
    Case("output-dir-unwritable", "an output_dir that cannot be created", "train", BASE + "output_dir: taken/run\n", (),
         ("output_dir", "not writable"), ALPACA, _file_output),
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


def _prepare(case: Case, folder: Path, model: Path) -> list[str]:
    if case.setup is not None:
        case.setup(folder, model)
    data = case.data
    names = {"data.jsonl": data}
    if case.config and "data.csv" in case.config:
        names = {"data.csv": "instruction,output\na,b\nc,d,e\n"}
    if case.config and "data.xml" in case.config:
        names = {"data.xml": "<rows/>"}
    for name, content in names.items():
        text = content if isinstance(content, str) else "".join(json.dumps(r) + "\n" for r in content)
        (folder / name).write_text(text)
    args = [case.command]
    if case.config is not None:
        text = case.config
        if text.startswith("RAW"):
            text = text[3:]
        elif text.startswith("NOBASE"):
            text = text[len("NOBASE"):]
        else:
            text = f"base_model: {model}\n" + text
        text += "dataset_prepared_path: prepared\n" if "dataset_prepared_path" not in text and not case.config.startswith("RAW") else ""
        (folder / "cfg.yml").write_text(text)
        args.append("cfg.yml")
    return args + list(case.extra)


def _half_written(folder: Path) -> list[Path]:
    leftovers = [p for p in folder.rglob("*.partial")] + [p for p in folder.rglob("*.tmp")]
    prepared = folder / "prepared"
    if prepared.is_dir():  # a complete cache (meta.json written last) and the cache's lock file are fine
        leftovers += [p for p in prepared.iterdir() if not (p / "meta.json").is_file() and p.name != ".lock"]
    for out in (folder / "out", folder / "model-out"):
        leftovers += [out / f for f in ("adapter_model.safetensors", "model.safetensors") if (out / f).exists()]
    return leftovers


def run_case(case: Case, folder: Path, model: Path):
    from axo.cli.main import app

    args = _prepare(case, folder, model)
    if case.env:
        return _run_process(args, folder, dict(case.env))
    return CliRunner().invoke(app, args)


def _run_process(args: list[str], folder: Path, env: dict[str, str]) -> Ran:
    import os
    import subprocess

    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    done = subprocess.run([sys.executable, "-m", "axo", *args], capture_output=True, text=True, cwd=folder, timeout=300,
                          env={**inherited, "HF_HOME": str(folder / "hf"), "HF_ENDPOINT": CLOSED, **env})
    return Ran(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, tiny_llama_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_case(case, tmp_path, tiny_llama_dir)
    message = result.stderr + result.stdout
    assert result.exit_code != 0, message
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in message
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert not _half_written(tmp_path), _half_written(tmp_path)


def test_there_are_at_least_forty_and_the_doc_lists_them():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "ERRORS.md").read_text()
    missing = [c.id for c in CASES if f"`{c.id}`" not in doc]
    assert not missing, f"run `python tests/cli/test_bad_input.py --write-doc docs/ERRORS.md`; missing {missing}"


def _error_lines(output: str) -> list[str]:
    """The lines about errors, each with its `fix:` line; warnings (e.g. what the generating machine cannot run)
    are left out, so the table reads the same whatever machine writes it."""
    kept: list[str] = []
    about_error = False
    for line in (text.strip() for text in output.splitlines()):
        if line.startswith("fix:"):
            if about_error:
                kept.append(line)
            continue
        about_error = "error" in line or "did you mean" in line
        if about_error:
            kept.append(line)
    return kept


def _write_doc(target: Path) -> None:
    import os
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tiny_models

    root = Path(tempfile.mkdtemp())
    tiny_models.build_tokenizer(root / "tok")
    model = tiny_models.build_model("llama", root / "llama", root / "tok")
    rows = []
    for case in CASES:
        folder = root / case.id
        folder.mkdir()
        os.chdir(folder)
        result = run_case(case, folder, model)
        lines = _error_lines(result.stderr + result.stdout)
        shown = " ".join(lines)[:400].replace("|", "\\|") or (result.stderr + result.stdout).strip()[:300]
        rows.append(f"| `{case.id}` | {case.mistake} | `axo {case.command}` | {shown} |")
    header = ("# Errors: what a mistake looks like\n\nGenerated from `tests/cli/test_bad_input.py` (the same table the "
              "tests run; regenerate with `python tests/cli/test_bad_input.py --write-doc docs/ERRORS.md`). Paths are "
              "those of the generating run. Every case exits non-zero, prints no traceback (pass `--debug` to the "
              "`axo` command for one) and leaves nothing half-written.\n\n| case | mistake | command | message |\n"
              "|---|---|---|---|\n")
    target.write_text(header + "\n".join(rows) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write-doc":
        _write_doc(Path(sys.argv[2]).resolve())
