"""Cut Cross Entropy against Liger's fused linear cross-entropy and the plain loss (issue 17): peak GPU memory,
step time and loss of axo's real LoRA training path on the same random-init model and the same rows.

    python benchmarks/cce_gpu.py --out DIR [--arch llama-3.1-8b] [--steps 12] [--mbs 4] [--seq 2048]
        [--variants plain,cce,liger_flce]

Each variant is `axo train` through `benchmarks/speed.py`'s `axo_run` (LoRA r64 α128 on q/k/v/o/gate/up/down,
bf16, gradient checkpointing, SDPA, fused AdamW, micro-batch `--mbs` × `--seq` fully packed tokens) with one key
added: nothing (`plain`), `cut_cross_entropy: true` (`cce`) or `liger_fused_linear_cross_entropy: true`
(`liger_flce`). Every variant runs in its own process (Liger patches model classes for the whole process, and
peak memory must start from zero). Step time is the mean over the steps after the first 3; the loss columns
compare each step's loss with the plain run's (same weights, rows and seed; step 1 is before any update).
Writes DIR/cce.json after every variant.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # the benchmark harness beside this file

KEYS = {"plain": "", "cce": "cut_cross_entropy: true\n", "liger_flce": "liger_fused_linear_cross_entropy: true\n"}


def one_variant(args: argparse.Namespace) -> None:
    """Child process: train one variant, print its summary as the last line."""
    speed.SEQ, speed.MBS = args.seq, args.mbs
    (args.work / args.variant).mkdir(parents=True, exist_ok=True)
    raw = speed.axo_run(args.work / args.arch, args.work / "rows.jsonl", args.steps, False, args.work / args.variant,
                        KEYS[args.variant])
    print(json.dumps(speed.summarize(raw, args.params)))


def compare(report: dict) -> None:
    plain = report["variants"].get("plain")
    for name, values in report["variants"].items():
        if plain is None or name == "plain":
            continue
        diffs = [abs(a - b) for a, b in zip(values["losses"], plain["losses"])]
        values["vs_plain"] = {"step_time": round(values["step_s"] / plain["step_s"], 3),
                              "peak_gib_saved": round(plain["peak_gib"] - values["peak_gib"], 2),
                              "step1_loss_abs_diff": round(diffs[0], 4), "max_loss_abs_diff": round(max(diffs), 4)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--arch", default="llama-3.1-8b", choices=sorted(speed.ARCHS))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--mbs", type=int, default=4)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--variants", default="plain,cce,liger_flce")
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-cce"))
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # set in the child processes
    parser.add_argument("--params", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        return one_variant(args)
    import torch

    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    params = speed.write_model(args.arch, args.work / args.arch)
    speed.SEQ = args.seq
    speed.write_rows(args.work / "rows.jsonl", args.mbs * args.steps + 8)
    versions = {}
    for package in ("torch", "transformers", "peft", "liger_kernel", "cut_cross_entropy", "triton"):
        try:
            versions[package] = __import__("importlib.metadata").metadata.version(package.replace("_", "-"))
        except Exception:  # noqa: BLE001 - a missing package is reported as such
            versions[package] = None
    report = {"device": torch.cuda.get_device_name(0), "arch": args.arch, "params": params, "steps": args.steps,
              "tokens_per_step": args.mbs * args.seq, "rows": f"{args.mbs} x {args.seq}", "versions": versions,
              "variants": {}}
    for variant in args.variants.split(","):
        command = [sys.executable, __file__, "--variant", variant, "--params", str(params), "--arch", args.arch,
                   "--steps", str(args.steps), "--mbs", str(args.mbs), "--seq", str(args.seq), "--work", str(args.work)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # a failure is recorded
        if done.returncode != 0:
            report["variants"][variant] = {"error": done.stderr[-2000:]}
            print(variant, "failed:", done.stderr[-2000:], flush=True)
        else:
            report["variants"][variant] = json.loads(done.stdout.strip().splitlines()[-1])
            print(variant, json.dumps({k: v for k, v in report["variants"][variant].items() if k != "losses"}), flush=True)
        compare({"variants": {k: v for k, v in report["variants"].items() if "error" not in v}})
        (args.out / "cce.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
