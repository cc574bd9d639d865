"""Multi-GPU checks (issue 9), through the real CLI (`axo train --num-gpus N`), in one device call.

    python benchmarks/multi_gpu.py --out DIR [--arch llama-3.1-8b] [--steps 20] [--parts single,ddp,zero2,fsdp2,zero3,zero3_big]

- single: 1 GPU, micro-batch 4 × 2048 tokens, gradient accumulation 2 (global batch 8 rows), LoRA r64 on all
  projections, bf16, checkpointing, Liger keys on — the reference loss curve and one GPU's tokens/s.
- ddp / zero2 / fsdp2: 2 GPUs, micro-batch 4, no accumulation (the same global batch 8 and the same rows in
  the same order); tokens/s, scaling against `single`, and the loss curve against it.
- zero3: full fine-tune of the small architecture with ZeRO-3: 3 steps with a checkpoint, `--resume` to 6,
  an uninterrupted 6-step run to compare, and the saved model reloaded with transformers.
- zero3_big: full fine-tune of `--arch` with ZeRO-3 for 4 steps; memory per GPU, tokens/s, saved model reloaded.
Writes DIR/multi_gpu.json after every part.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import speed  # noqa: E402  (the random-init model and rows of the speed harness)

LIGER = "liger_rope: true\nliger_rms_norm: true\nliger_glu_activation: true\nliger_fused_linear_cross_entropy: true\n"


def config(work: Path, name: str, model: Path, data: Path, steps: int, extra: str, lora: bool = True) -> Path:
    # liger-kernel 0.8.5's fused linear cross-entropy reads the lm_head weight while FSDP2 holds it sharded
    # (axo refuses the combination), so the FSDP runs use the other Liger kernels only.
    liger = LIGER.replace("liger_fused_linear_cross_entropy: true\n", "") if "fsdp" in name else LIGER
    adapter = ("adapter: lora\nlora_r: 64\nlora_alpha: 128\nlora_dropout: 0.0\n"
               f"lora_target_modules: {speed.TARGETS}\n" + liger) if lora else ""
    text = (f"base_model: {model}\nlearning_rate: 2e-4\n{adapter}datasets:\n  - path: {data}\n"
            f"sequence_len: {speed.SEQ}\nmicro_batch_size: {speed.MBS}\nmax_steps: {steps}\nbf16: true\n"
            "gradient_checkpointing: true\noptimizer: adamw_torch_fused\nlr_scheduler: constant\nwarmup_steps: 0\n"
            f"logging_steps: 1\nseed: 42\nshuffle_merged_datasets: false\noutput_dir: {work / name}\n"
            f"dataset_prepared_path: {work / 'prepared'}\n" + extra)
    path = work / f"{name}.yml"
    path.write_text(text)
    return path


LOGS: Path | None = None  # where the full log of a failed run is written (set in main)


def axo_train(path: Path, gpus: int, timeout: int, *args: str) -> dict:
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "axo", "train", str(path), "--num-gpus", str(gpus), *args],
                              capture_output=True, text=True, timeout=timeout, check=False)
        code, tail = done.returncode, (done.stdout + done.stderr)[-3000:]
    except subprocess.TimeoutExpired as exc:
        code, tail = "timeout", str(exc.stdout or "")[-2000:]
        done = None
    if code != 0 and LOGS is not None and done is not None:
        (LOGS / f"{path.stem}.log").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    return {"exit": code, "wall_s": round(time.perf_counter() - started, 1), "log_tail": tail if code != 0 else ""}


def read_run(folder: Path) -> dict:
    """Loss curve, global tokens/s over steps 4+, and rank 0's peak GPU memory from metrics.jsonl."""
    path = folder / "metrics.jsonl"
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    if not steps:
        return {}
    out = {"losses": [round(r["loss"], 4) for r in steps], "peak_gib": round(max(r["memory_mib"] for r in rows) / 1024, 2)}
    if len(steps) > 4:
        first, last = steps[3], steps[-1]
        out["tokens_per_s"] = round((last["tokens_seen"] - first["tokens_seen"]) / (last["elapsed_s"] - first["elapsed_s"]))
    return out


def compare(a: list[float], b: list[float]) -> dict:
    diffs = [abs(x - y) for x, y in zip(a, b)]
    return {"steps": len(diffs), "max_abs": round(max(diffs), 4), "mean_abs": round(sum(diffs) / len(diffs), 4)} if diffs else {}


def reload_check(folder: Path) -> dict:
    code = ("import sys, torch; from transformers import AutoModelForCausalLM as M; "
            "m = M.from_pretrained(sys.argv[1], dtype=torch.bfloat16, device_map='cuda'); "
            "x = torch.randint(10, 500, (1, 64), device='cuda'); "
            "print(round(m(input_ids=x, labels=x).loss.item(), 4), sum(p.numel() for p in m.parameters()))")
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        return {"reloads": False, "error": done.stderr[-1500:]}
    loss, params = done.stdout.split()[-2:]
    return {"reloads": True, "loss": float(loss), "params": int(params)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arch", default="llama-3.1-8b", choices=sorted(speed.ARCHS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--parts", default="single,ddp,zero2,fsdp2,zero3,zero3_big")
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-multi"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    global LOGS
    LOGS = args.out
    parts = args.parts.split(",")
    model = args.work / args.arch
    report: dict = {"arch": args.arch, "params": speed.write_model(args.arch, model), "steps": args.steps, "parts": {}}
    data = args.work / "rows.jsonl"
    speed.write_rows(data, speed.MBS * 2 * args.steps + 16)

    def record(name: str, result: dict) -> None:
        report["parts"][name] = result
        print(name, json.dumps({k: v for k, v in result.items() if k not in ("losses", "log_tail")}), flush=True)
        for key in ("log_tail",):
            if result.get(key):
                print(f"--- {name} failed:\n{result[key][-2500:]}", flush=True)
        (args.out / "multi_gpu.json").write_text(json.dumps(report, indent=1))

    lora_runs = {"single": (1, "gradient_accumulation_steps: 2\n"), "ddp": (2, ""),
                 "zero2": (2, "deepspeed: deepspeed_configs/zero2.json\n"),
                 "fsdp2": (2, "fsdp_version: 2\nfsdp_config:\n  state_dict_type: FULL_STATE_DICT\n")}
    for name, (gpus, extra) in lora_runs.items():
        if name not in parts:
            continue
        result = axo_train(config(args.work, name, model, data, args.steps, extra), gpus, 240)
        result.update(read_run(args.work / name))
        single = report["parts"].get("single")
        if name != "single" and single and "tokens_per_s" in result and "tokens_per_s" in single:
            result["scaling_vs_one_gpu"] = round(result["tokens_per_s"] / single["tokens_per_s"], 3)
            result["loss_vs_one_gpu"] = compare(result["losses"], single["losses"])
        record(name, result)
        if result["exit"] != 0 and name == "fsdp2":  # tell the fused LoRA path apart from the engine
            off = "lora_qkv_kernel: false\nlora_o_kernel: false\nlora_mlp_kernel: false\n"
            retry = axo_train(config(args.work, "fsdp2_peft", model, data, args.steps, extra + off), gpus, 240)
            retry.update(read_run(args.work / "fsdp2_peft"))
            record("fsdp2_peft_path", retry)

    small = args.work / "small"
    if "zero3" in parts:
        speed.write_model("small", small)
        zero3 = "deepspeed: deepspeed_configs/zero3.json\nsave_strategy: steps\nsave_steps: 3\n"
        first = axo_train(config(args.work, "z3", small, data, 3, zero3, lora=False), 2, 150)
        checkpoint = sorted(p.name for p in (args.work / "z3").glob("checkpoint-*"))
        resumed = axo_train(config(args.work, "z3", small, data, 6, zero3, lora=False), 2, 150, "--resume")
        resumed_run = read_run(args.work / "z3")
        straight = axo_train(config(args.work, "z3_straight", small, data, 6, zero3, lora=False), 2, 150)
        straight_run = read_run(args.work / "z3_straight")
        record("zero3", {"first": first, "checkpoints_after_first": checkpoint, "resumed": resumed,
                         "losses_after_resume": resumed_run.get("losses"), "losses_uninterrupted": straight_run.get("losses"),
                         "uninterrupted": straight, "saved_files": sorted(p.name for p in (args.work / "z3").iterdir()),
                         **reload_check(args.work / "z3")})
    if "zero3_big" in parts:
        extra = "deepspeed: deepspeed_configs/zero3.json\nsave_strategy: 'no'\n"
        result = axo_train(config(args.work, "z3_big", model, data, 4, extra, lora=False), 2, 300)
        result.update(read_run(args.work / "z3_big"))
        result.update(reload_check(args.work / "z3_big"))
        record("zero3_big", result)
    os.sync()


if __name__ == "__main__":
    main()
