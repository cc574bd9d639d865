"""`axo plan` against measurement (issue 20): for each configuration, what the planner predicts on this GPU
(peak memory, seconds per step, the recompute choice) beside what `axo train` then measures.

    python benchmarks/plan_check.py --out DIR [--configs lora-2k-auto,...] [--work /tmp/axo-plan] [--steps 6]
    python benchmarks/plan_check.py --table RESULTS.json [MORE.json ...]   # on any machine, no GPU needed

Every configuration trains the same random-init checkpoint (Llama-3.1-8B shapes, or Llama-3.2-1B shapes for the
full fine-tune) on random-token rows, LoRA r64 α128 on every linear layer, bf16, fused AdamW, in its own
process (liger-kernel patches transformers' classes for the whole process). Measured: the peak of
`torch.cuda.max_memory_allocated` over the run (axo's provenance `memory_plan.measured_peak_gib`) and the mean
step time over steps 3 and later (axo's metrics). Predicted: `memory_plan.predicted_peak_gib` and
`predicted_step_s`, which axo computes before the model loads. Writes DIR/plan_check.json after each one.

`--table` re-plans the measured configurations with the planner as it is now (on the meta device, from the
architectures' configs alone) and prints the markdown table of docs/BENCHMARKS.md: prediction beside
measurement, the run's own recompute choice kept.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

LORA = ("adapter: lora\nlora_r: 64\nlora_alpha: 128\nlora_dropout: 0.0\nlora_target_linear: true\n")
QLORA = LORA.replace("adapter: lora", "adapter: qlora\nload_in_4bit: true")
RECOMPUTE = "gradient_checkpointing: true\ngradient_checkpointing_kwargs:\n  use_reentrant: false\n"
NO_LIGER = "liger_rms_norm: false\n"  # any liger_* key set: no default kernels, transformers' loss
FULL_RECOMPUTE = RECOMPUTE + "gradient_checkpointing_keep_layers: 0\n"

# name -> (architecture, sequence_len, micro_batch_size, YAML)
CONFIGS = {
    "lora-2k-auto": ("llama-3.1-8b", 2048, 4, LORA + RECOMPUTE),
    "lora-2k-recompute-plain": ("llama-3.1-8b", 2048, 4, LORA + FULL_RECOMPUTE + NO_LIGER),
    "lora-2k-recompute": ("llama-3.1-8b", 2048, 4, LORA + FULL_RECOMPUTE),
    "lora-2k-keep16": ("llama-3.1-8b", 2048, 4, LORA + RECOMPUTE + "gradient_checkpointing_keep_layers: 16\n"),
    "lora-2k-none-plain": ("llama-3.1-8b", 2048, 4, LORA + NO_LIGER),
    "qlora-2k-auto": ("llama-3.1-8b", 2048, 4, QLORA + RECOMPUTE),
    "qlora-2k-recompute": ("llama-3.1-8b", 2048, 4, QLORA + FULL_RECOMPUTE),
    "lora-32k-auto": ("llama-3.1-8b", 32768, 1, LORA + RECOMPUTE),
    "lora-8k-cap40": ("llama-3.1-8b", 8192, 1, LORA + RECOMPUTE + "gpu_memory_limit: 40GiB\n"),
    "qlora-16k-offload": ("llama-3.1-8b", 16384, 1, QLORA + RECOMPUTE.replace("true", "offload", 1)),
    "qlora-2k-cap24": ("llama-3.1-8b", 2048, 4, QLORA + RECOMPUTE + "gpu_memory_limit: 24\n"),
    "qlora-2k-offload": ("llama-3.1-8b", 2048, 4, QLORA + RECOMPUTE.replace("true", "offload", 1)),
    "lora-4k-ga2-recompute-plain": ("llama-3.1-8b", 4096, 2, LORA + FULL_RECOMPUTE + NO_LIGER),
    "full-1b-2k": ("llama-3.2-1b", 2048, 4, ""),
    "full-1b-4k-recompute": ("llama-3.2-1b", 4096, 2, FULL_RECOMPUTE),
    "full-1b-2k-recompute": ("llama-3.2-1b", 2048, 4, FULL_RECOMPUTE),
}
EXTRA_ARCHS = {
    "llama-3.2-1b": ("llama", {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                               "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
                               "vocab_size": 128256, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
                               "max_position_embeddings": 131072, "tie_word_embeddings": True}),
}


def write_rows(path: Path, length: int, count: int) -> None:
    rng = random.Random(0)
    with path.open("w") as handle:
        for _ in range(count):
            handle.write(json.dumps({"input_ids": [rng.randrange(10, 590) for _ in range(length)]}) + "\n")


def config_text(name: str, work: Path, steps: int) -> str:
    arch, seq, mbs, extra = CONFIGS[name]
    accumulation = 2 if "-ga2-" in name else 1
    rows = work / f"rows-{seq}.jsonl"
    if not rows.exists():
        write_rows(rows, seq, 8 * steps + 4)
    return (f"base_model: {work / arch}\nlearning_rate: 2e-4\n{extra}datasets:\n  - path: {rows}\n"
            f"sequence_len: {seq}\nmicro_batch_size: {mbs}\ngradient_accumulation_steps: {accumulation}\n"
            f"max_steps: {steps}\n"
            "bf16: true\noptimizer: adamw_torch_fused\nlr_scheduler: constant\nwarmup_steps: 0\nlogging_steps: 1\n"
            f"save_strategy: 'no'\nseed: 42\noutput_dir: {work / 'runs' / name}\n"
            f"dataset_prepared_path: {work / 'prepared'}\n")


def run_one(name: str, work: Path, steps: int) -> dict:
    """Train `name` in this process; the planner's prediction and the measurement."""
    from axo.config.load import load_config
    from axo.train.run import train

    path = work / f"{name}.yml"
    path.write_text(config_text(name, work, steps))
    result = train(load_config(path).require(), progress=False)
    records = [r for r in result.metrics if "loss" in r and "elapsed_s" in r]
    times = [b["elapsed_s"] - a["elapsed_s"] for a, b in itertools.pairwise(records)][2:]
    provenance = json.loads((work / "runs" / name / "provenance.json").read_text())
    plan = provenance["memory_plan"]
    arch, seq, mbs, _ = CONFIGS[name]
    step_s = sum(times) / len(times)
    return {"arch": arch, "tokens": seq * mbs, "choice": plan["choice"], "kept_layers": plan["kept_layers"],
            "predicted_peak_gib": plan["predicted_peak_gib"], "measured_peak_gib": plan["measured_peak_gib"],
            "peak_error": round(plan["predicted_peak_gib"] / plan["measured_peak_gib"] - 1, 3),
            "predicted_step_s": plan["predicted_step_s"], "measured_step_s": round(step_s, 4),
            "step_error": round(plan["predicted_step_s"] / step_s - 1, 3),
            "measured_tokens_per_s": round(seq * mbs / step_s), "parts_gib": plan["predicted_parts_gib"],
            "losses": [round(r["loss"], 4) for r in records]}


def table(results: list[Path], work: Path) -> str:
    """Markdown rows: each measured configuration re-planned now, beside its measurement."""
    import contextlib
    import io

    import speed
    from transformers import AutoConfig

    from axo.config.load import load_config
    from axo.plan.choose import resolve_setup
    from axo.plan.gpus import GPUS
    from axo.plan.memory import Recompute, estimate
    from axo.plan.shapes import model_shape
    from axo.plan.timing import step_seconds

    speed.ARCHS.update(EXTRA_ARCHS)
    work.mkdir(parents=True, exist_ok=True)
    lines = [("| configuration | tokens | recompute (run's choice) | peak GiB predicted / measured | error "
              "| step s predicted / measured | error |"), "|---|---:|---|---:|---:|---:|---:|"]
    for result in results:
        for name, measured in json.loads(result.read_text())["configs"].items():
            if "error" in measured:
                continue
            arch = CONFIGS[name][0]
            folder = work / arch
            if not (folder / "config.json").exists():
                kind, shape = speed.ARCHS[arch]
                AutoConfig.for_model(kind, **shape).save_pretrained(folder)
            (work / f"{name}.yml").write_text(config_text(name, work, 6))
            cfg = load_config(work / f"{name}.yml").require()
            with contextlib.redirect_stderr(io.StringIO()):
                shape = model_shape(cfg)
            setup = resolve_setup(cfg, shape, has_cuda=True, liger_installed=True)
            offload = "offload" in measured["choice"]
            recompute = Recompute(measured["kept_layers"], offload=offload)
            peak = estimate(shape, setup, recompute).gib()
            step = step_seconds(shape, setup, recompute, GPUS["h200"]) * setup.accumulation
            lines.append(f"| {name} | {measured['tokens']} | {recompute.describe(shape.layers)} | {peak:.2f} / "
                         f"{measured['measured_peak_gib']:.2f} | {peak / measured['measured_peak_gib'] - 1:+.1%} | "
                         f"{step:.3f} / {measured['measured_step_s']:.3f} | {step / measured['measured_step_s'] - 1:+.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-plan"))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # run one configuration (a child process)
    parser.add_argument("--table", type=Path, nargs="+", help="measured plan_check.json files to tabulate")
    args = parser.parse_args()
    if args.table:
        print(table(args.table, args.work))
        return
    if args.one:
        (args.work / f"{args.one}.json").write_text(json.dumps(run_one(args.one, args.work, args.steps)))
        return
    import speed  # benchmarks/speed.py: the architectures and the random checkpoint writer

    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    speed.ARCHS.update(EXTRA_ARCHS)
    report: dict = {"configs": {}}
    for name in args.configs.split(","):
        speed.write_model(CONFIGS[name][0], args.work / CONFIGS[name][0])
        child = subprocess.run([sys.executable, __file__, "--one", name, "--work", str(args.work),
                                "--steps", str(args.steps), "--out", str(args.out)],
                               env=os.environ, capture_output=True, text=True, check=False)
        result_file = args.work / f"{name}.json"
        if child.returncode != 0 or not result_file.exists():
            report["configs"][name] = {"error": child.stderr[-3000:]}
        else:
            report["configs"][name] = json.loads(result_file.read_text())
        (args.out / "plan_check.json").write_text(json.dumps(report, indent=1))
        print(name, json.dumps({k: v for k, v in report["configs"][name].items() if k not in ("losses", "parts_gib")}),
              flush=True)


if __name__ == "__main__":
    main()
