"""Few-shot adaptation on real data (issue 19): meta-adapters against the base model's in-context learning and a
plain SFT adapter trained on the same rows, through the real CLI (`axo train`, `axo evaluate --tasks`).

    python3 benchmarks/meta_few_shot.py --out /tmp/bench --base-model quickstart-run/SmolLM2-135M-Instruct
    python3 benchmarks/meta_few_shot.py --out /tmp/smoke --base-model ... --max-steps 2 --limit 2 --shots 1  # smoke

On the GPU machine (SmolLM2's GGUF travels in two calls: docs/DEVELOPING.md, section 9), after the first call
left part one in /tmp/keep: rebuild the GGUF, `python3 examples/quickstart/base_model.py /tmp/smol`, then
`bash benchmarks/device_background.sh start python3 benchmarks/meta_few_shot.py --out /tmp/bench/run
--base-model /tmp/smol` and copy /tmp/bench/run/meta_few_shot.json to $OUT.

Every variant of VARIANTS is examples/meta_learning/config.yml with the variant's `--key value` overrides; the
baseline is sft_config.yml (the same rows flattened, the same number of optimizer steps). All runs train side by
side, each in its own process (a 135M model leaves an H200 mostly idle; CPU threads are shared out among them).
Each meta-adapter is evaluated as soon as it and the SFT baseline are trained: `axo evaluate --tasks
held_out_tasks.jsonl --compare-sft` (the SFT adapter adapted by that variant's inner loop, and in context).
`meta_few_shot.json` in --out is rewritten after every run and evaluation (each run's wall time and last logged
loss, every table), so a run cut short still leaves what finished; the tables are printed at the end, and every
run's folder (adapter, config, run files) goes into `adapters.tar`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "meta_learning"

# name -> overrides of config.yml. The example's own setting (first-order MAML, inner lr 0.3, top 8 layers) first.
# Seen on an H200 (2026-12-03, docs/BENCHMARKS.md): first-order MAML over all 30 layers at inner lr 0.3 diverged.
VARIANTS: dict[str, list[str]] = {
    "fomaml": [],
    "reptile": ["--meta_learning.algorithm", "reptile"],
    "maml": ["--meta_learning.algorithm", "maml"],
    "fomaml-all-layers-inner-lr-0.1": ["--peft_layers_to_transform", "null", "--meta_learning.inner_lr", "0.1"],
    "fomaml-inner-steps-5": ["--meta_learning.inner_steps", "5"],
    # the adapted weights and the examples in context together (its evaluation asks each query after them too)
    # (5 alpaca rows, each with its system line, before a query: up to 473 tokens)
    "fomaml-in-context": ["--meta_learning.support_in_context", "true", "--sequence_len", "512"],
}


def _run(command: list[str], log: Path, threads: int) -> tuple[int, float]:
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False,
                              env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(threads)})
    return done.returncode, time.perf_counter() - started


def _last_loss(run_dir: Path) -> float | None:
    losses = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
              if '"loss"' in line] if (run_dir / "metrics.jsonl").is_file() else []
    return losses[-1]["loss"] if losses else None


def train(name: str, config: Path, overrides: list[str], args: argparse.Namespace) -> dict:
    run_dir = args.out / name
    command = [sys.executable, "-m", "axo", "train", str(config), "--base_model", args.base_model,
               "--output_dir", str(run_dir), "--dataset_prepared_path", str(args.out / f"{name}-prepared"),
               *(["--num_epochs", str(args.epochs)] if args.epochs else []), *overrides]
    if args.max_steps:
        command += ["--max_steps", str(args.max_steps)]
    code, seconds = _run(command, args.out / f"{name}-train.log", args.threads)
    return {"run": name, "exit_code": code, "train_s": round(seconds, 1), "last_loss": _last_loss(run_dir)}


def evaluate(name: str, args: argparse.Namespace) -> dict:
    result = args.out / f"{name}-few-shot.json"
    command = [sys.executable, "-m", "axo", "evaluate", str(args.out / name), "--tasks", str(args.tasks),
               "--shots", args.shots, "--compare-sft", str(args.out / "sft"), "--max-new-tokens", "8",
               "-o", str(result)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    code, seconds = _run(command, args.out / f"{name}-evaluate.log", args.threads)
    return {"run": name, "exit_code": code, "evaluate_s": round(seconds, 1),
            "results": json.loads(result.read_text()) if code == 0 else None}


def _table(name: str, results: dict) -> str:
    shots = next(iter(results["few_shot"].values()))
    header = "| method | " + " | ".join(f"{k} match / loss" for k in shots) + " |"
    title = f"{name}: {results['tasks']} held-out tasks, {results['queries']} queries, {results['settings']}"
    lines = [title, header]
    for method, by_k in results["few_shot"].items():
        cells = [f"{s['normalized_match']:.3f} / {s['query_loss']:.3f}" for s in by_k.values()]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base-model", required=True, help="the SmolLM2-135M-Instruct folder (base_model.py)")
    parser.add_argument("--tasks", type=Path, default=EXAMPLE / "held_out_tasks.jsonl")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    parser.add_argument("--epochs", type=int, help="for every run (default: the configs' own)")
    parser.add_argument("--shots", default="1,3,5")
    parser.add_argument("--max-steps", type=int, help="smoke runs only")
    parser.add_argument("--limit", type=int, help="evaluate the first N held-out tasks only (smoke runs)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.variants.split(",")
    runs = [(name, EXAMPLE / "config.yml", VARIANTS[name]) for name in names]
    runs.append(("sft", EXAMPLE / "sft_config.yml", []))
    args.threads = max(1, (os.cpu_count() or 1) // len(runs))
    report: dict = {"command": sys.argv, "epochs": args.epochs, "variants": {n: VARIANTS[n] for n in names},
                    "training": [], "evaluation": []}
    started = time.perf_counter()
    sft_done, lock = threading.Event(), threading.Lock()

    def record(part: str, entry: dict) -> None:
        with lock:
            report[part].append(entry)
            report["wall_s"] = round(time.perf_counter() - started, 1)
            (args.out / "meta_few_shot.json").write_text(json.dumps(report, indent=1))

    def train_then_evaluate(run: tuple[str, Path, list[str]]) -> None:
        trained = train(*run, args)
        record("training", trained)
        if run[0] == "sft":
            sft_done.set()
        elif trained["exit_code"] == 0:
            sft_done.wait()  # each meta-adapter is compared with the SFT adapter
            record("evaluation", evaluate(run[0], args))

    with ThreadPoolExecutor(len(runs)) as pool:
        list(pool.map(train_then_evaluate, runs))
    # One file: a device call brings back a bounded number of files, and every adapter folder holds several.
    with tarfile.open(args.out / "adapters.tar", "w") as tar:
        for name, _, _ in runs:
            for path in sorted((args.out / name).glob("*")):
                if path.is_file() and not path.name.startswith("checkpoint"):
                    tar.add(path, arcname=f"{name}/{path.name}")
    for evaluation in report["evaluation"]:
        print(_table(evaluation["run"], evaluation["results"]) if evaluation["results"] else
              f"{evaluation['run']}: evaluation failed (exit {evaluation['exit_code']})")
    print(f"wall {report['wall_s']} s")


if __name__ == "__main__":
    main()
