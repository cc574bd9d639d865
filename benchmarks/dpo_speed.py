"""DPO speed harness (issue 18): axo's `rl: dpo` training path against plain TRL `DPOTrainer` + PEFT, on the same
random-init model and the same text pairs, each variant in its own process (fresh GPU memory).

    python benchmarks/dpo_speed.py --out DIR [--arch llama-3.1-8b|small] [--steps 18] [--mbs 2] [--accum 1]
        [--prompt-len 1024] [--completion-len 1024] [--variants trl_lora,axo_lora,axo_lora_noliger,...]

Every pair is a prompt of exactly `--prompt-len` tokens (BOS included) and a chosen and a rejected completion of
exactly `--completion-len` tokens each (EOS included, which TRL appends), so each pair is 2 sequences of
prompt+completion tokens and nothing is padded or truncated. Variants:

- `trl_lora` / `trl_qlora`: TRL's DPOTrainer with `peft_config=LoraConfig(...)` (TRL wraps the model, the reference
  is the base with the adapter disabled); `*qlora*` loads the base as bitsandbytes NF4 with double quantization and
  bf16 compute. DPOConfig gets only what the run must share with axo (batch, accumulation, steps, max_length,
  learning rate, constant schedule, fused AdamW, logging/saving off); the rest is TRL's default (bf16, gradient
  checkpointing on, beta 0.1, sigmoid loss, ...).
- `axo_lora` / `axo_qlora`: `axo train` on the YAML a user would write (`rl: dpo`, passthrough rows, the same
  settings) with `liger_rms_norm`, `liger_glu_activation`, `liger_rope`; `*_noliger`: the same without them.

Tokens/s counts 2 × (prompt + completion) tokens per pair over the steps after the first 3; peak memory is
`torch.cuda.max_memory_allocated` over the whole process (model load included). Writes DIR/dpo_speed.json after
every variant (the children's output in DIR/variants.log) and prints a table last.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LIGER = "liger_rms_norm: true\nliger_glu_activation: true\nliger_rope: true\n"
LR = 2e-4
TINY = ("llama", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                  "num_key_value_heads": 2, "vocab_size": 600, "max_position_embeddings": 4096,
                  "tie_word_embeddings": False})


def cuda(name: str, default=0):
    """torch.cuda.<name>() where a GPU is present (the CPU smoke test runs the same code without one)."""
    import torch

    return getattr(torch.cuda, name)() if torch.cuda.is_available() else default


def single_token_words(tokenizer) -> list[str]:
    """Words w such that " w" is one token: text built from them tokenizes to a known length."""
    words = []
    for token in tokenizer.get_vocab():
        if token.startswith("Ġ") and token[1:].isalpha():
            word = token[1:]
            if len(tokenizer(" " + word, add_special_tokens=False)["input_ids"]) == 1:
                words.append(word)
    return sorted(words)


def write_pairs(path: Path, tokenizer, rows: int, prompt_len: int, completion_len: int) -> dict:
    """Rows {prompt, chosen, rejected} whose TRL tokenization is exactly prompt_len / completion_len tokens."""
    words = single_token_words(tokenizer)
    rng = random.Random(0)
    text = lambda n: "".join(" " + rng.choice(words) for _ in range(n))
    with path.open("w") as handle:
        for _ in range(rows):
            # BOS is added to the prompt; EOS is appended to each completion by TRL
            handle.write(json.dumps({"prompt": text(prompt_len - 1), "chosen": text(completion_len - 1),
                                     "rejected": text(completion_len - 1)}) + "\n")
    first = json.loads(path.open().readline())
    eos = tokenizer.eos_token
    lengths = {"prompt": len(tokenizer(first["prompt"])["input_ids"]),
               "prompt_chosen": len(tokenizer(first["prompt"] + first["chosen"] + eos)["input_ids"])}
    assert lengths == {"prompt": prompt_len, "prompt_chosen": prompt_len + completion_len}, lengths
    return {"words": len(words), **lengths}


class StepTimer:
    """Callback methods timing each optimizer step (after synchronising) and keeping the loss and the first
    training row's token lengths (to prove nothing was truncated or padded)."""

    def __init__(self):
        self.times, self.losses, self.row_lengths = [], [], None

    def begin(self, kwargs):
        loader = kwargs.get("train_dataloader")
        try:
            row = loader.dataset[0]
            self.row_lengths = {k: len(row[k]) for k in ("prompt_ids", "chosen_ids", "rejected_ids") if k in row}
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            self.row_lengths = {"error": repr(exc)}

    def step_begin(self):
        cuda("synchronize")
        self._start = time.perf_counter()

    def step_end(self):
        cuda("synchronize")
        self.times.append(time.perf_counter() - self._start)

    def log(self, logs):
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])

    def callback(self):
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                timer.begin(kwargs)

            def on_step_begin(self, args, state, control, **kwargs):
                timer.step_begin()

            def on_step_end(self, args, state, control, **kwargs):
                timer.step_end()

            def on_log(self, args, state, control, logs=None, **kwargs):
                timer.log(logs)

        return Callback()


def trl_run(model_dir: Path, data: Path, opts: argparse.Namespace, qlora: bool, work: Path) -> StepTimer:
    """Plain TRL: DPOTrainer + peft_config, TRL's defaults except the settings the two runs must share."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import DPOConfig, DPOTrainer

    kwargs = {"dtype": torch.bfloat16, "attn_implementation": "sdpa",
              "device_map": {"": 0} if torch.cuda.is_available() else None}
    if qlora:
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True,
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    args = DPOConfig(output_dir=str(work / "trl"), per_device_train_batch_size=opts.mbs,
                     gradient_accumulation_steps=opts.accum, max_steps=opts.steps,
                     max_length=opts.prompt_len + opts.completion_len, learning_rate=LR,
                     lr_scheduler_type="constant", warmup_steps=0, optim="adamw_torch_fused", logging_steps=1,
                     save_strategy="no", report_to=[], seed=42, disable_tqdm=True,
                     **({} if torch.cuda.is_available() else {"bf16": False, "use_cpu": True}))  # CPU smoke test
    timer = StepTimer()
    trainer = DPOTrainer(model=model, args=args, processing_class=tokenizer,
                         train_dataset=load_dataset("json", data_files=str(data), split="train"),
                         peft_config=LoraConfig(r=64, lora_alpha=128, lora_dropout=0.0, target_modules=TARGETS,
                                                task_type="CAUSAL_LM"),
                         callbacks=[timer.callback()])
    timer.settings = {k: getattr(args, k) for k in ("bf16", "gradient_checkpointing", "gradient_checkpointing_kwargs",
                                                    "beta", "loss_type", "max_length", "padding_free",
                                                    "precompute_ref_log_probs", "use_liger_kernel", "optim")}
    trainer.train()
    return timer


def axo_config(model_dir: Path, data: Path, opts: argparse.Namespace, qlora: bool, liger: bool, work: Path) -> str:
    """The YAML a user writes for this run."""
    import torch

    bf16 = torch.cuda.is_available()  # the CPU smoke test trains in fp32
    quant = "adapter: qlora\nload_in_4bit: true\n" if qlora else "adapter: lora\n"
    return (f"base_model: {model_dir}\nrl: dpo\ndatasets:\n  - path: {data}\n    type: passthrough.default\n"
            f"{quant}lora_r: 64\nlora_alpha: 128\nlora_dropout: 0.0\nlora_target_modules: {TARGETS}\n"
            f"sequence_len: {opts.prompt_len + opts.completion_len}\nmicro_batch_size: {opts.mbs}\n"
            f"gradient_accumulation_steps: {opts.accum}\nmax_steps: {opts.steps}\nlearning_rate: {LR}\n"
            "lr_scheduler: constant\nwarmup_steps: 0\noptimizer: adamw_torch_fused\n"
            f"bf16: {'true' if bf16 else 'false'}\n"
            "gradient_checkpointing: true\nlogging_steps: 1\nsave_strategy: 'no'\nseed: 42\n"
            f"output_dir: {work / 'axo'}\ndataset_prepared_path: {work / 'prepared'}\n" + (LIGER if liger else ""))


@contextlib.contextmanager
def timed_recorder(timer: StepTimer):
    """While open, axo's own recorder callback (train/run.py `RunRecorder`) also drives `timer`: the measurement
    rides on the real training path without a callback of its own."""
    from axo.train import run as run_module

    original = run_module.RunRecorder

    class Timed(original):
        def on_train_begin(self, args, state, control, **k):
            timer.begin(k)
            return super().on_train_begin(args, state, control, **k)

        def on_step_begin(self, args, state, control, **k):
            timer.step_begin()
            return super().on_step_begin(args, state, control, **k)

        def on_step_end(self, args, state, control, **k):
            timer.step_end()
            return super().on_step_end(args, state, control, **k)

        def on_log(self, args, state, control, logs=None, **k):
            timer.log(logs)
            return super().on_log(args, state, control, logs=logs, **k)

    run_module.RunRecorder = Timed
    try:
        yield
    finally:
        run_module.RunRecorder = original


def axo_run(model_dir: Path, data: Path, opts: argparse.Namespace, qlora: bool, liger: bool, work: Path) -> StepTimer:
    """axo's real training path (`axo train CONFIG`'s train()) with a step timer added to its callbacks."""
    from axo.config.load import load_config
    from axo.train.run import train

    text = axo_config(model_dir, data, opts, qlora, liger, work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "axo.yml").write_text(text)
    timer = StepTimer()
    with timed_recorder(timer):
        train(load_config(work / "axo.yml").require(), progress=False)
    timer.settings = {"config": text}
    return timer


def child(opts: argparse.Namespace) -> None:
    """Run one variant in this process and write WORK/<variant>.json for the parent to collect."""
    variant, work = opts.child, opts.work
    qlora = "qlora" in variant
    model_dir, data = work / opts.arch, work / "pairs.jsonl"
    cuda("reset_peak_memory_stats")
    if variant.startswith("trl_"):
        timer = trl_run(model_dir, data, opts, qlora, work / variant)
    else:
        timer = axo_run(model_dir, data, opts, qlora, "noliger" not in variant, work / variant)
    timed = timer.times[3:]
    tokens = opts.mbs * opts.accum * 2 * (opts.prompt_len + opts.completion_len)
    step = sum(timed) / len(timed)
    result = {"tokens_per_s": round(tokens / step), "step_s": round(step, 3), "tokens_per_step": tokens,
              "peak_gib": round(cuda("max_memory_allocated") / 2**30, 2),
              "peak_reserved_gib": round(cuda("max_memory_reserved") / 2**30, 2),
              "step_times": [round(t, 3) for t in timer.times], "losses": [round(x, 5) for x in timer.losses],
              "row_lengths": timer.row_lengths, "settings": timer.settings}
    (opts.work / f"{variant}.json").write_text(json.dumps(result, indent=1, default=str))


def prepare(opts: argparse.Namespace) -> dict:
    """The random checkpoint, its tokenizer and the pairs file, shared by every variant."""
    import speed
    from transformers import AutoTokenizer

    opts.work.mkdir(parents=True, exist_ok=True)
    speed.ARCHS.setdefault("tiny", TINY)  # CPU smoke test only
    params = speed.write_model(opts.arch, opts.work / opts.arch)
    tokenizer = AutoTokenizer.from_pretrained(opts.work / opts.arch)
    rows = opts.mbs * opts.accum * opts.steps + 8
    check = write_pairs(opts.work / "pairs.jsonl", tokenizer, rows, opts.prompt_len, opts.completion_len)
    return {"params": params, "rows": rows, "tokenization_check": check}


def table(report: dict) -> str:
    lines = [f"{'variant':20s} {'tokens/s':>9s} {'step s':>7s} {'peak GiB':>9s} {'vs TRL':>7s} {'mem vs TRL':>10s}"]
    for name, v in report["variants"].items():
        if "error" in v:
            lines.append(f"{name:20s} FAILED: {v['error'][-200:]}")
            continue
        lines.append(f"{name:20s} {v['tokens_per_s']:9d} {v['step_s']:7.3f} {v['peak_gib']:9.2f} "
                     f"{v.get('vs_trl', '')!s:>7} {v.get('mem_vs_trl', '')!s:>10}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arch", default="llama-3.1-8b")
    parser.add_argument("--steps", type=int, default=18)
    parser.add_argument("--mbs", type=int, default=2, help="pairs per micro-batch")
    parser.add_argument("--accum", type=int, default=1)
    parser.add_argument("--prompt-len", type=int, default=1024)
    parser.add_argument("--completion-len", type=int, default=1024)
    parser.add_argument("--variants", default="trl_lora,axo_lora,axo_lora_noliger,trl_qlora,axo_qlora")
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-dpo-speed"))
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    opts.out.mkdir(parents=True, exist_ok=True)
    if opts.child:
        return child(opts)
    import torch

    report = {"date": time.strftime("%Y-%m-%d"), "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "arch": opts.arch,
              "steps": opts.steps, "micro_batch_pairs": opts.mbs, "accumulation": opts.accum,
              "prompt_len": opts.prompt_len, "completion_len": opts.completion_len, "torch": torch.__version__,
              "command": " ".join(sys.argv), **prepare(opts), "variants": {}}
    for name in ("transformers", "trl", "peft", "bitsandbytes", "liger_kernel"):
        try:
            from importlib.metadata import version

            report[name] = version(name.replace("_", "-"))
        except Exception:  # noqa: BLE001
            report[name] = None
    cuda("empty_cache")
    for variant in opts.variants.split(","):
        started = time.time()
        (opts.work / f"{variant}.json").unlink(missing_ok=True)  # no stale result from an earlier run
        argv = [sys.executable, __file__, *sys.argv[1:], "--child", variant]
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, env=os.environ)
        with (opts.out / "variants.log").open("a") as log:  # one file: the device returns few files
            log.write(f"===== {variant} (rc {proc.returncode})\n{proc.stdout}{proc.stderr}\n")
        path = opts.work / f"{variant}.json"
        result = json.loads(path.read_text()) if proc.returncode == 0 and path.exists() else \
            {"error": (proc.stdout + proc.stderr)[-3000:]}
        result["wall_s"] = round(time.time() - started, 1)
        report["variants"][variant] = result
        for name, v in report["variants"].items():
            base = report["variants"].get("trl_qlora" if "qlora" in name else "trl_lora")
            if base and "error" not in base and "error" not in v and base is not v:
                v["vs_trl"] = round(v["tokens_per_s"] / base["tokens_per_s"], 3)
                v["mem_vs_trl"] = round(v["peak_gib"] / base["peak_gib"], 3) if base["peak_gib"] else None
        (opts.out / "dpo_speed.json").write_text(json.dumps(report, indent=1, default=str))
        print(variant, json.dumps({k: v for k, v in result.items() if k not in ("settings", "step_times")},
                                  default=str)[:600], flush=True)
    print(table(report))


if __name__ == "__main__":
    main()
