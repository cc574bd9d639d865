"""Multi-GPU checks (issue 9), through the real CLI (`axo train --num-gpus N`), in one device call.

    python benchmarks/multi_gpu.py --out DIR [--arch llama-3.1-8b] [--steps 20] [--parts single,ddp,zero2,fsdp2,zero3,zero3_big]

- single: 1 GPU, micro-batch 4 × 2048 tokens, gradient accumulation 2 (global batch 8 rows), LoRA r64 on all
  projections, bf16, checkpointing, Liger keys on — the reference loss curve and one GPU's tokens/s.
- ddp / zero2 / fsdp2: 2 GPUs, micro-batch 4, no accumulation (the same global batch 8 and the same rows in
  the same order); tokens/s, scaling against `single`, and the loss curve against it.
- qlora_ddp / qlora_zero3 / qlora_fsdp2: QLoRA (NF4) on 2 GPUs; the ZeRO-3 and FSDP2 runs store the 4-bit
  weights as bf16 (`bnb_4bit_quant_storage`) and are compared with the DDP run.
- zero3: full fine-tune of the small architecture with ZeRO-3: 3 steps with a checkpoint, `--resume` to 6,
  an uninterrupted 6-step run to compare, and the saved model reloaded with transformers.
- zero3_big: full fine-tune of `--arch` with ZeRO-3 on 2 GPUs: 2 steps with a checkpoint (optimizer states
  included), `--resume` to 4, the saved model reloaded, and an uninterrupted 4-step run to compare.
- offload_big: the same full fine-tune with `zero3_offload.json` (optimizer and parameters in host memory),
  3 steps: memory per GPU and step time.
- qlora_huge: QLoRA of `--huge-arch` (default the 72B architecture) on 4 GPUs (DDP), 10 steps of micro-batch
  2: tokens/s and peak memory per GPU. Its weights are written in the background while the parts before it
  run (on GPUs 2-3 when there are 4), into `--huge-work`.
Peak memory per GPU is what nvidia-smi reports (sampled each second, all processes on the GPU) beside rank 0's
torch peak from metrics.jsonl. Writes DIR/multi_gpu.json after every part.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import speed  # noqa: E402  (the random-init model and rows of the speed harness)

LIGER = "liger_rope: true\nliger_rms_norm: true\nliger_glu_activation: true\nliger_fused_linear_cross_entropy: true\n"


def config(work: Path, name: str, model: Path, data: Path, steps: int, extra: str, adapter: str | None = "lora",
           mbs: int = speed.MBS) -> Path:
    # liger-kernel 0.8.5's fused linear cross-entropy reads the lm_head weight while FSDP2 holds it sharded
    # (axo refuses the combination), so the FSDP runs use the other Liger kernels only.
    liger = LIGER.replace("liger_fused_linear_cross_entropy: true\n", "") if "fsdp" in name else LIGER
    quantized = "load_in_4bit: true\n" if adapter == "qlora" else ""
    adapter = (f"adapter: {adapter}\n{quantized}lora_r: 64\nlora_alpha: 128\nlora_dropout: 0.0\n"
               f"lora_target_modules: {speed.TARGETS}\n" + liger) if adapter else ""
    text = (f"base_model: {model}\nlearning_rate: 2e-4\n{adapter}datasets:\n  - path: {data}\n"
            f"sequence_len: {speed.SEQ}\nmicro_batch_size: {mbs}\nmax_steps: {steps}\nbf16: true\n"
            "gradient_checkpointing: true\noptimizer: adamw_torch_fused\nlr_scheduler: constant\nwarmup_steps: 0\n"
            f"logging_steps: 1\nseed: 42\nshuffle_merged_datasets: false\noutput_dir: {work / name}\n"
            f"dataset_prepared_path: {work / 'prepared'}\n" + extra)
    path = work / f"{name}.yml"
    path.write_text(text)
    return path


LOGS: Path | None = None  # where the full log of a failed run is written (set in main)


class GpuMemory:
    """Peak memory.used per GPU (MiB, as nvidia-smi reports it: every process, CUDA context included),
    sampled each second while the block runs."""

    def __enter__(self) -> GpuMemory:
        self.peaks: dict[int, int] = {}
        self._proc = subprocess.Popen(["nvidia-smi", "--query-gpu=index,memory.used", "--format=csv,noheader,nounits",
                                       "-lms", "1000"], stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=10)
        for line in out.splitlines():
            index, used = (int(part) for part in line.split(","))
            self.peaks[index] = max(self.peaks.get(index, 0), used)

    def gib(self) -> dict[str, float]:
        return {f"gpu{index}": round(mib / 1024, 2) for index, mib in sorted(self.peaks.items())}


def axo_train(path: Path, gpus: int, timeout: int, *args: str) -> dict:
    with GpuMemory() as memory:
        result = _axo_train(path, gpus, timeout, *args)
    result["nvidia_smi_peak_gib"] = memory.gib()
    return result


def _axo_train(path: Path, gpus: int, timeout: int, *args: str) -> dict:
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
    if len(steps) >= 3:  # from step 4 on (or the second, in short runs): compilation and warm-up excluded
        first, last = steps[min(3, len(steps) - 2)], steps[-1]
        seconds = last["elapsed_s"] - first["elapsed_s"]
        out["tokens_per_s"] = round((last["tokens_seen"] - first["tokens_seen"]) / seconds)
        out["step_s"] = round(seconds / (len(steps) - 1 - steps.index(first)), 2)
    return out


def size_gb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9, 1)


def torch_gpus() -> int:
    import torch

    return torch.cuda.device_count()


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
    parser.add_argument("--huge-arch", default="qwen2.5-72b", choices=sorted(speed.ARCHS))
    parser.add_argument("--huge-work", type=Path, help="where the huge model is written (default: --work)")
    parser.add_argument("--write-only", action="store_true", help="write the --huge-arch model and exit")
    args = parser.parse_args()
    args.huge_work = args.huge_work or args.work
    if args.write_only:
        print(speed.write_model(args.huge_arch, args.huge_work / args.huge_arch))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    global LOGS
    LOGS = args.out
    parts = args.parts.split(",")
    writer: list = []

    def start_writing_huge() -> None:  # 145 GB of weights: written while other parts run
        env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": "2,3"} if torch_gpus() >= 4 else {})}
        writer.extend([time.perf_counter(), subprocess.Popen(
            [sys.executable, __file__, "--out", str(args.out), "--write-only", "--huge-arch", args.huge_arch,
             "--huge-work", str(args.huge_work)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)])

    args.huge_work.mkdir(parents=True, exist_ok=True)
    # on the same disk as the ZeRO-3 checkpoints (~110 GB) the weights wait until those are deleted
    apart = args.huge_work.stat().st_dev != args.work.stat().st_dev
    if "qlora_huge" in parts and (apart or "zero3_big" not in parts):
        start_writing_huge()

    def wait_for_huge() -> dict:
        if not writer:
            start_writing_huge()
        started, process = writer
        out, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"writing {args.huge_arch} failed:\n{err[-3000:]}")
        folder = args.huge_work / args.huge_arch
        return {"params": int(out.split()[-1]), "weights_gb": size_gb(folder),
                "written_s_in_background": round(time.perf_counter() - started, 1)}

    model = args.work / args.arch
    report: dict = {"arch": args.arch, "params": speed.write_model(args.arch, model), "steps": args.steps, "parts": {}}
    data = args.work / "rows.jsonl"
    speed.write_rows(data, 16 * args.steps + 16)

    def record(name: str, result: dict) -> None:
        report["parts"][name] = result
        print(name, json.dumps({k: v for k, v in result.items() if k not in ("losses", "log_tail")}), flush=True)
        for key in ("log_tail",):
            if result.get(key):
                print(f"--- {name} failed:\n{result[key][-2500:]}", flush=True)
        (args.out / "multi_gpu.json").write_text(json.dumps(report, indent=1))

    fsdp2 = "fsdp_version: 2\nfsdp_config:\n  state_dict_type: FULL_STATE_DICT\n"
    storage = "bnb_4bit_quant_storage: bfloat16\n"  # what ZeRO-3 / FSDP need to shard a 4-bit base
    lora_runs = {"single": (1, "gradient_accumulation_steps: 2\n", "lora", "single"), "ddp": (2, "", "lora", "single"),
                 "zero2": (2, "deepspeed: deepspeed_configs/zero2.json\n", "lora", "single"),
                 "fsdp2": (2, fsdp2, "lora", "single"),
                 # QLoRA on 2 GPUs: DDP is the reference curve for the sharded engines
                 "qlora_ddp": (2, "", "qlora", None),
                 "qlora_zero3": (2, "deepspeed: deepspeed_configs/zero3_bf16.json\n" + storage, "qlora", "qlora_ddp"),
                 "qlora_fsdp2": (2, fsdp2 + storage, "qlora", "qlora_ddp")}
    for name, (gpus, extra, adapter, reference_name) in lora_runs.items():
        if name not in parts:
            continue
        result = axo_train(config(args.work, name, model, data, args.steps, extra, adapter=adapter), gpus, 300)
        result.update(read_run(args.work / name))
        reference = report["parts"].get(reference_name) if reference_name != name else None
        if reference and "tokens_per_s" in result and "tokens_per_s" in reference:
            result[f"scaling_vs_{reference_name}"] = round(result["tokens_per_s"] / reference["tokens_per_s"], 3)
            result[f"loss_vs_{reference_name}"] = compare(result["losses"], reference["losses"])
        record(name, result)
        if result["exit"] != 0 and "fsdp2" in name:  # tell the fused LoRA path apart from the engine
            off = "lora_qkv_kernel: false\nlora_o_kernel: false\nlora_mlp_kernel: false\n"
            retry = axo_train(config(args.work, f"{name}_peft", model, data, args.steps, extra + off, adapter=adapter),
                              gpus, 300)
            retry.update(read_run(args.work / f"{name}_peft"))
            record(f"{name}_peft_path", retry)

    small = args.work / "small"
    if "zero3" in parts:
        speed.write_model("small", small)
        zero3 = "deepspeed: deepspeed_configs/zero3.json\nsave_strategy: steps\nsave_steps: 3\n"
        first = axo_train(config(args.work, "z3", small, data, 3, zero3, adapter=None), 2, 150)
        checkpoint = sorted(p.name for p in (args.work / "z3").glob("checkpoint-*"))
        resumed = axo_train(config(args.work, "z3", small, data, 6, zero3, adapter=None), 2, 150, "--resume")
        resumed_run = read_run(args.work / "z3")
        straight = axo_train(config(args.work, "z3_straight", small, data, 6, zero3, adapter=None), 2, 150)
        straight_run = read_run(args.work / "z3_straight")
        record("zero3", {"first": first, "checkpoints_after_first": checkpoint, "resumed": resumed,
                         "losses_after_resume": resumed_run.get("losses"), "losses_uninterrupted": straight_run.get("losses"),
                         "uninterrupted": straight, "saved_files": sorted(p.name for p in (args.work / "z3").iterdir()),
                         **reload_check(args.work / "z3")})
    if "zero3_big" in parts:
        zero3 = "deepspeed: deepspeed_configs/zero3.json\n"
        # constant learning rate: 2 steps + 2 resumed steps follow the same schedule as 4 uninterrupted ones
        first = axo_train(config(args.work, "z3_big", model, data, 2, zero3 + "save_strategy: steps\nsave_steps: 2\n",
                                 adapter=None), 2, 600)
        first.update(read_run(args.work / "z3_big"))
        checkpoints = sorted((args.work / "z3_big").glob("checkpoint-*"))
        first["checkpoints"] = {c.name: size_gb(c) for c in checkpoints}
        resumed = axo_train(config(args.work, "z3_big", model, data, 4, zero3 + "save_strategy: 'no'\n", adapter=None),
                            2, 600, "--resume")
        resumed.update(read_run(args.work / "z3_big"))
        resumed.update(reload_check(args.work / "z3_big"))
        resumed["saved_files"] = sorted(p.name for p in (args.work / "z3_big").iterdir())
        for checkpoint in checkpoints:  # ~110 GB each: room for the runs after this one
            shutil.rmtree(checkpoint)
        record("zero3_big", {"first": first, "resumed": resumed})
    if "qlora_huge" in parts:
        huge = wait_for_huge()
        result = axo_train(config(args.work, "qlora_huge", args.huge_work / args.huge_arch, data, 10, "save_strategy: 'no'\n",
                                  adapter="qlora", mbs=2), torch_gpus(), 900)
        result.update(read_run(args.work / "qlora_huge"))
        record("qlora_huge", {"arch": args.huge_arch, **huge, **result})
        shutil.rmtree(args.huge_work / args.huge_arch)  # host memory back, when it was written to /dev/shm
    if "zero3_big" in parts and "zero3_big_straight" in parts:
        straight = axo_train(config(args.work, "z3_big_straight", model, data, 4, "deepspeed: deepspeed_configs/zero3.json\n"
                                    "save_strategy: 'no'\n", adapter=None), 2, 600)
        straight.update(read_run(args.work / "z3_big_straight"))
        resumed_losses = report["parts"]["zero3_big"]["resumed"].get("losses", [])
        straight["resumed_vs_uninterrupted_steps_3_4"] = compare(resumed_losses[-2:], straight.get("losses", [])[2:4])
        record("zero3_big_straight", straight)
    if "offload_big" in parts:
        result = axo_train(config(args.work, "offload_big", model, data, 3, "deepspeed: deepspeed_configs/zero3_offload.json\n"
                                  "save_strategy: 'no'\n", adapter=None), 2, 900)
        result.update(read_run(args.work / "offload_big"))
        record("offload_big", result)
    os.sync()


if __name__ == "__main__":
    main()
