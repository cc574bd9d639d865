"""Speed harness (issues 8 and 20): axo's training path against HF Trainer + PEFT (with and without Liger) and
Unsloth, on the same random-init model, the same rows and the same settings, in one command.

    python benchmarks/speed.py --out DIR [--arch llama-3.1-8b|qwen2.5-7b|mistral-7b|small] [--steps 50]
        [--variants hf_lora,hf_lora_liger,axo_lora,...|default|vs-unsloth] [--axo-extra 'YAML lines']
        [--profile axo_lora] [--long-steps 10] [--unsloth-site DIR]

A variant is named `<runner>_<lora|qlora>[_liger][_<kind>]`: runner `hf` (HF Trainer + PEFT, in this process),
`axo` (axo's real training path from a YAML config, in this process) or `unsloth` (`unsloth_run.py` in its own
process, Unsloth imported first, with its defaults: its loader, kernels and offloaded checkpointing); kind:
none (fixed-length rows), `norecompute` (no activation checkpointing), `varlen` (real-length samples) or
`long` (32768-token rows, micro-batch 1). Other suffixes (e.g. `axo_lora_plain` with `--extra`) keep the kind.
Fixed-length variants train `--steps` steps of micro-batch 4 × 2048 fully packed tokens (LoRA r64 α128 on
q/k/v/o/gate/up/down, bf16, gradient checkpointing, SDPA, fused AdamW; `*qlora*`: bnb NF4 with double
quantization); `*_long` ones `--long-steps` steps of 1 × 32768. `*_varlen` variants train `--varlen-steps`
steps on real-length samples (64–2048 tokens): the HF baseline gets them flattened into 8192-token rows with
restarting position_ids (transformers builds a block-diagonal mask for SDPA), axo packs them itself
(`sample_packing: true`, its varlen attention kernel), Unsloth takes them through TRL's SFTTrainer as Unsloth
patches it, padding-free, with as many samples per step as make 8192 tokens on average.
Reports tokens/s over the steps after the first 3 (non-padding tokens), step time, peak memory, MFU, the
ratio to the plain HF + PEFT run of the same kind (`vs_baseline`), each axo variant's ratio to the Unsloth
run of the same kind (`vs_unsloth`), and how far axo's loss curve is from HF's. `--profile` adds a per-kernel
GPU time table for steps 6–7 (excluded from the timing). Writes DIR/speed.json after every variant, and each
Unsloth run's output to DIR/<variant>.log. Unsloth runs need its packages on the child's PYTHONPATH
(`--unsloth-site`, or the inherited PYTHONPATH; docs/BENCHMARKS.md says how they are carried).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_tools import Timer, kernel_profile  # beside this file

ARCHS = {
    "llama-3.1-8b": ("llama", {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                               "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                               "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "max_position_embeddings": 131072,
                               "tie_word_embeddings": False}),
    "qwen2.5-7b": ("qwen2", {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                             "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
                             "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768,
                             "tie_word_embeddings": False}),
    "mistral-7b": ("mistral", {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                               "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32768,
                               "rope_theta": 1000000.0, "rms_norm_eps": 1e-5, "max_position_embeddings": 32768,
                               "tie_word_embeddings": False, "sliding_window": None}),
    "qwen2.5-72b": ("qwen2", {"hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
                              "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 152064,
                              "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768,
                              "tie_word_embeddings": False}),
    "small": ("llama", {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 8,
                        "num_attention_heads": 16, "num_key_value_heads": 4, "vocab_size": 32000,
                        "max_position_embeddings": 4096, "tie_word_embeddings": False}),
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# The default rows (other scripts set speed.SEQ / speed.MBS before calling in); `*_long` variants use LONG_SEQ × 1.
SEQ, MBS, PEAK_TFLOPS = 2048, 4, 989e12  # H100/H200 dense bf16 spec
LONG_SEQ = 32768
KINDS = ("norecompute", "varlen", "long")
PRESETS = {
    "default": "hf_lora,hf_lora_liger,axo_lora,hf_qlora,hf_qlora_liger,axo_qlora,hf_lora_varlen,axo_lora_varlen",
    "vs-unsloth": "hf_lora,unsloth_lora,axo_lora,hf_qlora,unsloth_qlora,axo_qlora,unsloth_lora_norecompute,"
                  "axo_lora_norecompute,hf_lora_varlen,unsloth_lora_varlen,axo_lora_varlen,hf_lora_long,"
                  "unsloth_lora_long,axo_lora_long",
}


@dataclass(frozen=True)
class Shape:
    """The rows of a variant: `seq` tokens each, `mbs` of them per step."""

    seq: int
    mbs: int

    @property
    def tokens(self) -> int:
        return self.seq * self.mbs


def default_shape() -> Shape:
    return Shape(SEQ, MBS)  # read at call time: cce_gpu.py sets speed.SEQ / speed.MBS


@dataclass(frozen=True)
class Variant:
    """What a variant's name says (module docstring): who trains it, LoRA or QLoRA, and its kind."""

    name: str

    @property
    def runner(self) -> str:
        return self.name.split("_", 1)[0]

    @property
    def qlora(self) -> bool:
        return "qlora" in self.name

    @property
    def extra_kind(self) -> str:
        return next((k for k in KINDS if f"_{k}" in self.name), "")

    @property
    def kind(self) -> str:  # what the ratios pair on: lora, qlora, lora_norecompute, lora_varlen, lora_long, …
        return ("qlora" if self.qlora else "lora") + (f"_{self.extra_kind}" if self.extra_kind else "")

    @property
    def varlen(self) -> bool:
        return self.extra_kind == "varlen"

    @property
    def recompute(self) -> bool:
        return self.extra_kind != "norecompute"

    @property
    def shape(self) -> Shape:
        return Shape(LONG_SEQ, 1) if self.extra_kind == "long" else default_shape()


def write_model(arch: str, folder: Path) -> int:
    """Random-init checkpoint (bf16 safetensors) + the tiny test tokenizer; returns the parameter count."""
    import tiny_models
    import torch
    from random_model import write_random_checkpoint
    from transformers import AutoConfig, AutoModelForCausalLM

    kind, shape = ARCHS[arch]
    if (folder / "config.json").exists():
        config = AutoConfig.from_pretrained(folder)
    else:
        tokenizer = tiny_models.build_tokenizer(folder)
        config = AutoConfig.for_model(kind, **shape, bos_token_id=tokenizer.bos_token_id,
                                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        write_random_checkpoint(config, folder)
    with torch.device("meta"):
        return sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())


def write_rows(path: Path, rows: int, seq: int | None = None) -> None:
    """`rows` random pre-tokenized rows of `seq` tokens (SEQ by default)."""
    import random

    rng = random.Random(0)
    with path.open("w") as handle:
        for _ in range(rows):
            handle.write(json.dumps({"input_ids": [rng.randrange(10, 590) for _ in range(seq or SEQ)]}) + "\n")


def write_varlen_samples(path: Path, count: int) -> list[list[int]]:
    """Real-length samples: lengths log-uniform in [64, 2048] (mean ~570 tokens), as pre-tokenized rows."""
    import math
    import random

    rng = random.Random(1)
    samples = []
    for _ in range(count):
        length = int(math.exp(rng.uniform(math.log(64), math.log(SEQ))))
        samples.append([rng.randrange(10, 590) for _ in range(length)])
    path.write_text("".join(json.dumps({"input_ids": ids}) + "\n" for ids in samples))
    return samples


def flattened_rows(samples: list[list[int]], capacity: int) -> list[dict]:
    """The baseline's packing: consecutive samples concatenated into rows of at most `capacity` tokens, with
    restarting position_ids (what DataCollatorWithFlattening produces; transformers turns them into a
    block-diagonal attention mask) and no loss across sample boundaries."""
    rows, current = [], []
    for ids in samples:
        if current and sum(map(len, current)) + len(ids) > capacity:
            rows.append(current)
            current = []
        current.append(ids)
    rows.append(current)
    return [{"input_ids": [t for ids in row for t in ids],
             "position_ids": [i for ids in row for i in range(len(ids))],
             "labels": [t if i else -100 for ids in row for i, t in enumerate(ids)]} for row in rows]


def hf_baseline(model_dir: Path, data: Path, steps: int, qlora: bool, liger: bool, work: Path,
                varlen: list[dict] | None = None, shape: Shape | None = None, recompute: bool = True) -> dict:
    """Plain HF Trainer + PEFT, as Axolotl-style stacks run it; `varlen`: flattened rows of real-length samples
    (one per step); `shape`: the fixed-length rows' micro-batch; `recompute`: gradient checkpointing."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        BitsAndBytesConfig,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    kwargs = {"dtype": torch.bfloat16, "attn_implementation": "sdpa"}
    if qlora:
        kwargs.update(quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                             bnb_4bit_use_double_quant=True,
                                                             bnb_4bit_compute_dtype=torch.bfloat16), device_map={"": 0})
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    if not qlora:
        model = model.cuda()
    if liger:
        import liger_kernel.transformers as lk

        getattr(lk, f"apply_liger_kernel_to_{model.config.model_type}")(
            model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=True)
    model.config.use_cache = False
    if qlora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recompute,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(r=64, lora_alpha=128, lora_dropout=0.0, target_modules=TARGETS,
                                             task_type="CAUSAL_LM"))
    if varlen is None:
        dataset = load_dataset("json", data_files=str(data), split="train").map(lambda r: {"labels": r["input_ids"]})
        batch = (shape or default_shape()).mbs
    else:
        from datasets import Dataset

        dataset, batch = Dataset.from_list(varlen), 1
    timer = Timer()
    args = TrainingArguments(output_dir=str(work / "hf"), per_device_train_batch_size=batch, max_steps=steps,
                             include_num_input_tokens_seen="non_padding" if varlen else "no",
                             learning_rate=2e-4, bf16=True, gradient_checkpointing=recompute,
                             gradient_checkpointing_kwargs={"use_reentrant": False}, optim="adamw_torch_fused",
                             logging_steps=1, save_strategy="no", report_to=[], seed=42, data_seed=42,
                             disable_tqdm=True, lr_scheduler_type="constant", warmup_steps=0)
    torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=default_data_collator,
                      callbacks=[timer.callback])
    trainer.train()
    result = {"step_times": timer.times, "losses": timer.losses, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
              "tokens_seen": timer.tokens_seen if varlen else []}
    del trainer, model
    return result


def axo_run(model_dir: Path, data: Path, steps: int, qlora: bool, work: Path, extra: str, profile: bool = False,
            shape: Shape | None = None, recompute: bool = True) -> dict:
    """axo's real training path from a YAML config, with `extra` keys (the speed options under test);
    `shape`: sequence_len and micro_batch_size; `recompute`: gradient_checkpointing."""
    import torch

    from axo.config.load import load_config
    from axo.train.run import train

    keep = 0  # harness-only experiment: `bench_keep_layers: K` leaves the last K layers un-checkpointed
    lines = []
    for line in extra.splitlines():
        if line.startswith("bench_keep_layers:"):
            keep = int(line.split(":", 1)[1])
        else:
            lines.append(line)
    extra = "\n".join(lines) + "\n"
    shape = shape or default_shape()
    quant = "adapter: qlora\nload_in_4bit: true\n" if qlora else "adapter: lora\n"
    checkpointing = ("gradient_checkpointing: true\ngradient_checkpointing_kwargs:\n  use_reentrant: false\n"
                     if recompute else "gradient_checkpointing: false\n")
    text = (f"base_model: {model_dir}\nlearning_rate: 2e-4\n{quant}lora_r: 64\nlora_alpha: 128\nlora_dropout: 0.0\n"
            f"lora_target_modules: {TARGETS}\ndatasets:\n  - path: {data}\nsequence_len: {shape.seq}\n"
            f"micro_batch_size: {shape.mbs}\ngradient_accumulation_steps: 1\nmax_steps: {steps}\nbf16: true\n"
            f"{checkpointing}"
            "optimizer: adamw_torch_fused\nlr_scheduler: constant\nwarmup_steps: 0\nlogging_steps: 1\n"
            f"save_strategy: 'no'\nseed: 42\nshuffle_merged_datasets: false\noutput_dir: {work / 'axo'}\n"
            f"dataset_prepared_path: {work / 'prepared'}\n" + extra)
    (work / "axo.yml").write_text(text)
    timer = Timer()
    torch.cuda.reset_peak_memory_stats()
    from axo.train import run as run_module

    original = run_module.RunRecorder

    profiled: dict = {}

    class Timed(original):  # add the step timer (and profiler) to axo's callbacks for this measurement only
        def on_train_begin(self, args, state, control, model=None, **k):
            if keep:
                layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
                for layer in layers[-keep:]:
                    layer.gradient_checkpointing = False
            return super().on_train_begin(args, state, control, model=model, **k)

        def on_step_begin(self, args, state, *a, **k):
            if profile and state.global_step == 5:
                profiled["prof"] = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA,
                                                                          torch.profiler.ProfilerActivity.CPU],
                                                              with_stack=True)
                profiled["prof"].__enter__()
            timer.callback.on_step_begin(args, state, *a, **k)

        def on_step_end(self, args, state, *a, **k):
            timer.callback.on_step_end(args, state, *a, **k)
            if profile and state.global_step == 7:
                profiled["prof"].__exit__(None, None, None)
                profiled["table"] = kernel_profile(profiled.pop("prof"), 2)

    run_module.RunRecorder = Timed
    try:
        result = train(load_config(work / "axo.yml").require(), progress=False)
    finally:
        run_module.RunRecorder = original
    losses = [r["loss"] for r in result.metrics if "loss" in r]
    out = {"step_times": timer.times, "losses": losses, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
           "tokens_seen": timer.tokens_seen}
    if "table" in profiled:
        out["profile"] = profiled["table"]
        out["profiled_steps"] = [5, 6]  # indices into step_times; the profiler's overhead stays out of tokens/s
    del result
    return out


class ChildFailed(RuntimeError):
    """A runner's own process (Unsloth's) failed: recorded as the variant's `error`, the other variants still run."""


def unsloth_run(model_dir: Path, data: Path, steps: int, variant: Variant, work: Path, log: Path,
                site: str = "") -> dict:
    """Unsloth in its own process (`unsloth_run.py`: Unsloth must be imported before transformers and peft), on
    the same model, rows and recipe; its output goes to `log`, its settings line into the result."""
    shape = variant.shape
    result, cwd = work / f"{variant.name}.json", work / "unsloth"  # cwd: Unsloth writes its compile cache there
    cwd.mkdir(parents=True, exist_ok=True)
    result.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve().with_name("unsloth_run.py")), "--model", str(model_dir),
               "--data", str(data), "--steps", str(steps), "--out", str(result), "--seq", str(shape.seq),
               "--mbs", str(shape.mbs)]
    command += ["--qlora"] * variant.qlora + ["--no-recompute"] * (not variant.recompute)
    command += ["--varlen"] * variant.varlen
    env = dict(os.environ, UNSLOTH_DISABLE_STATISTICS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    if site:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(site).resolve()), env.get("PYTHONPATH")]))
    with log.open("w") as handle:
        code = subprocess.run(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                              check=False).returncode
    lines = log.read_text(errors="replace").splitlines()
    if code or not result.exists():
        raise ChildFailed(f"unsloth_run.py exited {code}; the end of {log}:\n" + "\n".join(lines[-40:]))
    raw = json.loads(result.read_text())
    settings = [line.split(" ", 1)[1] for line in lines if line.startswith("UNSLOTH_RUN_SETTINGS ")]
    return raw | ({"settings": json.loads(settings[-1])} if settings else {})


def summarize(raw: dict, params: int, shape: Shape | None = None) -> dict:
    """tokens/s over the steps after the first 3 (and outside the profiled ones), step time, peak, MFU, losses."""
    skipped = set(raw.get("profiled_steps", []))
    timed = [i for i in range(len(raw["step_times"])) if i >= 3 and i not in skipped]
    seen = raw.get("tokens_seen") or []
    # tokens per step: the non-padding tokens the trainer counted (variable-length rows), else full rows
    per_step = [seen[i] - (seen[i - 1] if i else 0) for i in range(len(seen))] if seen and seen[-1] else None
    step = sum(raw["step_times"][i] for i in timed) / len(timed)
    tokens = sum(per_step[i] for i in timed) / len(timed) if per_step else (shape or default_shape()).tokens
    tokens_per_s = tokens / step
    extra = {key: raw[key] for key in ("profile", "settings") if key in raw}
    return extra | {"tokens_per_s": round(tokens_per_s), "tokens_per_step": round(tokens), "step_s": round(step, 3),
                    "peak_gib": round(raw["peak_gib"], 2), "mfu_6N": round(tokens_per_s * 6 * params / PEAK_TFLOPS, 3),
                    "losses": [round(x, 4) for x in raw["losses"]]}


def finish(report: dict) -> dict:
    """Ratios against the plain HF + PEFT run of the same kind (`vs_baseline`) and, for axo, against the Unsloth run
    of the same kind (`vs_unsloth`); how far axo's loss curve is from HF's. Failed variants (`error`) are skipped."""
    variants = {name: values for name, values in report["variants"].items() if "tokens_per_s" in values}
    for name, values in variants.items():
        variant = Variant(name)
        unsloth = variants.get(f"unsloth_{variant.kind}")
        if variant.runner == "axo" and unsloth is not None:
            values["vs_unsloth"] = round(values["tokens_per_s"] / unsloth["tokens_per_s"], 3)
        baseline = variants.get(f"hf_{variant.kind}")
        if baseline is None:
            continue
        values["vs_baseline"] = round(values["tokens_per_s"] / baseline["tokens_per_s"], 3)
        if variant.runner == "axo" and not variant.varlen:  # varlen rows are packed differently: no step pairs
            pairs = list(zip(values["losses"], baseline["losses"], strict=False))
            diffs = [abs(a - b) for a, b in pairs]
            values["loss_vs_baseline"] = {"steps": len(pairs), "max_abs": round(max(diffs), 4),
                                          "mean_abs": round(sum(diffs) / len(diffs), 4),
                                          "max_rel": round(max(d / abs(b) for d, (_, b) in zip(diffs, pairs)), 4)}
    return report


def rows_file(work: Path, shape: Shape, steps: int) -> Path:
    """Writes the fixed-length rows of `shape` for `steps` steps."""
    path = work / ("rows.jsonl" if shape == default_shape() else f"rows-{shape.seq}.jsonl")
    write_rows(path, shape.mbs * steps + 8, shape.seq)
    return path


def run_variant(variant: Variant, args: argparse.Namespace, model_dir: Path, data: Path, steps: int,
                samples: list[list[int]], extras: dict[str, str]) -> dict:
    """One variant's raw result through its runner."""
    if variant.runner == "hf":
        return hf_baseline(model_dir, data, steps, variant.qlora, "_liger" in variant.name, args.work,
                           flattened_rows(samples, default_shape().tokens) if variant.varlen else None,
                           variant.shape, variant.recompute)
    if variant.runner == "unsloth":
        return unsloth_run(model_dir, data, steps, variant, args.work, args.out / f"{variant.name}.log",
                           args.unsloth_site)
    if variant.runner == "axo":
        packing = "sample_packing: true\n" if variant.varlen else ""
        extra = (args.axo_extra + packing + extras.get(variant.name, "")).replace("\\n", "\n")
        return axo_run(model_dir, data, steps, variant.qlora, args.work, extra, variant.name in args.profile.split(","),
                       variant.shape, variant.recompute)
    raise SystemExit(f"{variant.name}: a variant starts with hf_, axo_ or unsloth_")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arch", default="llama-3.1-8b", choices=sorted(ARCHS))
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--varlen-steps", type=int, default=20, help="steps for the *_varlen variants")
    parser.add_argument("--long-steps", type=int, default=10, help=f"steps for the *_long variants (1 x {LONG_SEQ})")
    parser.add_argument("--variants", default="default",
                        help="comma-separated variant names, or a preset: " + "; ".join(
                            f"{name} = {value}" for name, value in PRESETS.items()))
    parser.add_argument("--axo-extra", default="", help="YAML lines added to axo's config (the options under test)")
    parser.add_argument("--extra", action="append", default=[], metavar="VARIANT=LINES",
                        help="YAML lines for one axo variant only (e.g. axo_lora_plain='lora_mlp_kernel: false')")
    parser.add_argument("--profile", default="", help="axo variants (comma-separated) whose steps 6-7 are profiled")
    parser.add_argument("--unsloth-site", default=os.environ.get("UNSLOTH_SITE", ""),
                        help="folder put first on the Unsloth process's PYTHONPATH (e.g. /tmp/u)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-speed"))
    args = parser.parse_args()
    import torch

    args.work, args.out = args.work.resolve(), args.out.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    model_dir = args.work / args.arch
    params = write_model(args.arch, model_dir)
    variants = [Variant(name) for name in PRESETS.get(args.variants, args.variants).split(",")]
    report = {"device": torch.cuda.get_device_name(0), "arch": args.arch, "params": params, "steps": args.steps,
              "varlen_steps": args.varlen_steps, "long_steps": args.long_steps, "torch": torch.__version__,
              "axo_extra": args.axo_extra, "variants": {}}
    extras = dict(item.split("=", 1) for item in args.extra)
    varlen_data = args.work / "varlen.jsonl"
    samples = write_varlen_samples(varlen_data, args.varlen_steps * 16 + 64)
    rows: dict[Shape, Path] = {}  # each shape's rows written once per run
    for variant in variants:
        steps = {"varlen": args.varlen_steps, "long": args.long_steps}.get(variant.extra_kind, args.steps)
        if not variant.varlen and variant.shape not in rows:
            rows[variant.shape] = rows_file(args.work, variant.shape, steps)
        data = varlen_data if variant.varlen else rows[variant.shape]
        try:
            raw = run_variant(variant, args, model_dir, data, steps, samples, extras)
        except ChildFailed as error:
            report["variants"][variant.name] = {"error": str(error)[-4000:]}
            print(variant.name, "FAILED:", error, flush=True)
        else:
            report["variants"][variant.name] = summarize(raw, params, variant.shape)
            summary = {k: v for k, v in report["variants"][variant.name].items() if k not in ("losses", "profile", "settings")}
            print(variant.name, json.dumps(summary), flush=True)
            if "profile" in report["variants"][variant.name]:
                print(json.dumps(report["variants"][variant.name]["profile"], indent=1), flush=True)
        (args.out / "speed.json").write_text(json.dumps(finish(report), indent=1))  # partial results survive a timeout
        gc.collect()
        torch.cuda.empty_cache()
    (args.out / "speed.json").write_text(json.dumps(finish(report), indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
