"""Meta-learning cost per meta-step (issue 19): second-order MAML, first-order MAML and Reptile through axo's real
training path (`meta_learning:` + `axo.train.run.train`), each algorithm in its own process (fresh GPU memory), on
the same random-init model and the same tasks.

    python benchmarks/meta_speed.py --out DIR [--arch llama-3.1-8b|tiny] [--steps 4] [--row-words 90]
        [--variants maml,maml-first1,fomaml,reptile] [--qlora/--no-qlora]

The run is the user's plan: QLoRA (bitsandbytes NF4, double quantization, bf16 compute), LoRA r 48 α 96 on
q/k/v/o, 16 tasks per meta-update (micro-batch 4 tasks × accumulation 4), 3 inner steps, gradient checkpointing,
alpaca rows; each task has 5 support and 5 query rows of about the same length (random words; the tokens a step
sees are measured, not assumed). Step time is the mean over the steps after the first; peak memory is
`torch.cuda.max_memory_allocated` over the whole process (model load included). Writes DIR/meta_speed.json after
every variant (the children's output in DIR/variants.log) and prints a table last.
"""

from __future__ import annotations

import argparse
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

from dpo_speed import TINY, StepTimer, cuda, timed_recorder  # the same timer, recorder hook and CPU smoke-test shape

SUPPORT, QUERY = 5, 5


def write_tasks(path: Path, tasks: int, words: int) -> None:
    """`tasks` task rows of SUPPORT + QUERY alpaca rows with `words` random words of instruction each."""
    rng = random.Random(0)
    vocabulary = [f"{a}{b}" for a in "bcdfghklmnprstvz" for b in "aeiou"]

    def row() -> dict:
        return {"instruction": " ".join(rng.choice(vocabulary) for _ in range(words)), "input": "",
                "output": " ".join(rng.choice(vocabulary) for _ in range(8))}

    with path.open("w") as handle:
        for number in range(tasks):
            handle.write(json.dumps({"task_id": f"t{number}", "support_set": [row() for _ in range(SUPPORT)],
                                     "query_set": [row() for _ in range(QUERY)]}) + "\n")


def axo_config(model_dir: Path, data: Path, opts: argparse.Namespace, variant: str, work: Path) -> str:
    """The YAML a user writes; variant `maml-first1` is MAML with `first_order_after: 1`."""
    import torch

    algorithm, _, first = variant.partition("-first")
    capped = f"  first_order_after: {first}\n" if first else ""
    bf16 = torch.cuda.is_available()  # the CPU smoke test trains in fp32
    quant = "adapter: qlora\nload_in_4bit: true\n" if opts.qlora and bf16 else "adapter: lora\n"
    return (f"base_model: {model_dir}\ndatasets:\n  - path: {data}\n    type: alpaca\n{quant}lora_r: 48\n"
            "lora_alpha: 96\nlora_dropout: 0.0\nlora_target_modules: [q_proj, k_proj, v_proj, o_proj]\n"
            "sequence_len: 2048\nmicro_batch_size: 4\ngradient_accumulation_steps: 4\n"
            f"max_steps: {opts.steps}\nlearning_rate: 5.0e-6\nlr_scheduler: constant\nwarmup_steps: 0\n"
            f"optimizer: adamw_torch_fused\nbf16: {'true' if bf16 else 'false'}\ngradient_checkpointing: true\n"
            f"logging_steps: 1\nsave_strategy: 'no'\nseed: 42\noutput_dir: {work / 'axo'}\n"
            f"dataset_prepared_path: {work / 'prepared'}\n"
            f"meta_learning:\n  algorithm: {algorithm}\n  inner_lr: 1.0e-4\n  inner_steps: 3\n{capped}")


def child(opts: argparse.Namespace) -> None:
    """Train one algorithm in this process and write WORK/<variant>.json for the parent."""
    from axo.config.load import load_config
    from axo.train.run import train

    variant, work = opts.child, opts.work / opts.child
    work.mkdir(parents=True, exist_ok=True)
    (work / "axo.yml").write_text(axo_config(opts.work / opts.arch, opts.work / "tasks.jsonl", opts, variant, work))
    cuda("reset_peak_memory_stats")
    timer = StepTimer()
    with timed_recorder(timer):
        result = train(load_config(work / "axo.yml").require(), progress=False)
    steps = [r for r in result.metrics if "loss" in r and "tokens_seen" in r]
    timed = timer.times[1:]
    step = sum(timed) / len(timed)
    tokens = steps[-1]["tokens_seen"] / len(steps)
    report = {"step_s": round(step, 3), "tokens_per_step": round(tokens), "tokens_per_s": round(tokens / step),
              "peak_gib": round(cuda("max_memory_allocated") / 2**30, 2),
              "peak_reserved_gib": round(cuda("max_memory_reserved") / 2**30, 2),
              "step_times": [round(t, 3) for t in timer.times], "losses": [round(r["loss"], 5) for r in steps]}
    (opts.work / f"{variant}.json").write_text(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arch", default="llama-3.1-8b")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--row-words", type=int, default=90)
    parser.add_argument("--qlora", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--variants", default="maml,fomaml,reptile")
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-meta-speed"))
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    opts.out.mkdir(parents=True, exist_ok=True)
    if opts.child:
        return child(opts)
    import speed
    import torch

    opts.work.mkdir(parents=True, exist_ok=True)
    speed.ARCHS.setdefault("tiny", TINY)  # CPU smoke test only
    report = {"date": time.strftime("%Y-%m-%d"), "arch": opts.arch, "command": " ".join(sys.argv),
              "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
              "torch": torch.__version__, "params": speed.write_model(opts.arch, opts.work / opts.arch),
              "tasks_per_step": 16, "support_rows": SUPPORT, "query_rows": QUERY, "variants": {}}
    write_tasks(opts.work / "tasks.jsonl", 16 * opts.steps, opts.row_words)
    for variant in opts.variants.split(","):
        started = time.time()
        (opts.work / f"{variant}.json").unlink(missing_ok=True)
        proc = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", variant], check=False,
                              capture_output=True, text=True, env=os.environ)
        with (opts.out / "variants.log").open("a") as log:
            log.write(f"===== {variant} (rc {proc.returncode})\n{proc.stdout}{proc.stderr}\n")
        path = opts.work / f"{variant}.json"
        result = json.loads(path.read_text()) if proc.returncode == 0 and path.exists() else \
            {"error": (proc.stdout + proc.stderr)[-3000:]}
        result["wall_s"] = round(time.time() - started, 1)
        report["variants"][variant] = result
        (opts.out / "meta_speed.json").write_text(json.dumps(report, indent=1))
        print(variant, json.dumps({k: v for k, v in result.items() if k != "step_times"})[:600], flush=True)


if __name__ == "__main__":
    main()
