"""Few-shot adaptation on real data (issue 19): meta-adapters against the base model's in-context learning and a
plain SFT adapter trained on the same rows, through the real CLI (`axo train`, `axo evaluate --tasks`).

    python3 benchmarks/meta_few_shot.py --out /tmp/bench --base-model quickstart-run/SmolLM2-135M-Instruct
    python3 benchmarks/meta_few_shot.py --out /tmp/smoke --base-model ... --max-steps 2 --limit 2 --shots 1  # smoke
    python3 benchmarks/meta_few_shot.py --out /tmp/bench --base-model /tmp/smol --shots 3 --per-query \
        --variants fomaml-in-context-3-epochs,maml-in-context          # docs/BENCHMARKS.md's few-shot table

On the GPU machine (SmolLM2's GGUF travels in two calls: docs/DEVELOPING.md, section 9), after the first call
left part one in /tmp/keep: rebuild the GGUF, `python3 examples/quickstart/base_model.py /tmp/smol`, then
`bash benchmarks/device_background.sh start python3 benchmarks/meta_few_shot.py --out /tmp/bench/run
--base-model /tmp/smol` and copy /tmp/bench/run/meta_few_shot.json to $OUT.

Every variant of VARIANTS is examples/meta_learning/config.yml with the variant's `--key value` overrides; the
baseline is sft_config.yml (the same rows flattened, the same number of optimizer steps). All runs train side by
side, each in its own process (a 135M model leaves an H200 mostly idle; CPU threads are shared out among them).
Each meta-adapter is evaluated as soon as it and the SFT baseline are trained: `axo evaluate --tasks
held_out_tasks.jsonl --compare-sft` (the SFT adapter adapted by that variant's inner loop, and in context).
With `--per-query`, each run is scored query by query at k=3 instead (benchmarks/meta_in_context_eval.py: a meta
run adapted and with the examples in context, the SFT run with them in context), and the base model by
examples/meta_learning/probe_icl.py's plain few-shot prompt (`--skip-base` leaves it out): `<run>-per-query.json`
files, for a paired test. `meta_few_shot.json` in --out is rewritten after every run and evaluation (each run's wall
time and last logged loss, every table), so a run cut short still leaves what finished; the tables are printed at
the end, and every run's adapter and run files go into `adapters.tar` (not the base's tokenizer: a file that comes
back from the device is at most 16 MiB).
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

# name -> overrides of config.yml. The example's own setting first: first-order MAML with the examples in context
# (support_in_context), inner lr 0.3, top 8 layers, 3 epochs. The others as measured on an H200 (docs/BENCHMARKS.md).
# Seen there (2026-12-03): first-order MAML over all 30 layers at inner lr 0.3 diverged.
_ONE_EPOCH = ["--num_epochs", "1"]
_NO_CONTEXT = [*_ONE_EPOCH, "--meta_learning.support_in_context", "false", "--sequence_len", "256"]
VARIANTS: dict[str, list[str]] = {
    "fomaml-in-context-3-epochs": [],
    "fomaml-in-context": _ONE_EPOCH,
    "maml-in-context": [*_ONE_EPOCH, "--meta_learning.algorithm", "maml"],
    # adapted only, the query asked alone (the example's setting before support_in_context existed)
    "fomaml": _NO_CONTEXT,
    "reptile": [*_NO_CONTEXT, "--meta_learning.algorithm", "reptile"],
    "maml": [*_NO_CONTEXT, "--meta_learning.algorithm", "maml"],
    "fomaml-all-layers-inner-lr-0.1": [*_NO_CONTEXT, "--peft_layers_to_transform", "null",
                                       "--meta_learning.inner_lr", "0.1"],
    "fomaml-inner-steps-5": [*_NO_CONTEXT, "--meta_learning.inner_steps", "5"],
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
    if name == "sft" and args.sft_epochs:
        command += ["--num_epochs", str(args.sft_epochs)]
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


def score_per_query(name: str, args: argparse.Namespace) -> dict:
    """Every query's result for one run (benchmarks/meta_in_context_eval.py; the SFT run in context, a meta run
    adapted and in context), or for the base model with a plain few-shot prompt (probe_icl.py), for a paired test."""
    records = args.out / f"{name}-per-query.json"
    if name == "base":
        command = [sys.executable, str(EXAMPLE / "probe_icl.py"), "--model", args.base_model, "--tasks",
                   str(args.tasks), "--shots", "3", "--json-out", str(records), "--threads", str(args.threads)]
    else:
        role = "--sft" if name.startswith("sft") else "--meta"
        command = [sys.executable, str(REPO / "benchmarks" / "meta_in_context_eval.py"), role, str(args.out / name),
                   "--tasks", str(args.tasks), "--out", str(records), "--threads", str(args.threads)]
    command += ["--limit", str(args.limit)] if args.limit else []
    code, seconds = _run(command, args.out / f"{name}-per-query.log", args.threads)
    return {"run": name, "exit_code": code, "evaluate_s": round(seconds, 1), "per_query": records.name}


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
    parser.add_argument("--skip-base", action="store_true", help="with --per-query: not the base model's probe")
    parser.add_argument("--sft-epochs", type=int, help="for the SFT baseline (default: --epochs, else its config's)")
    parser.add_argument("--shots", default="1,3,5")
    parser.add_argument("--max-steps", type=int, help="smoke runs only")
    parser.add_argument("--limit", type=int, help="evaluate the first N held-out tasks only (smoke runs)")
    parser.add_argument("--per-query", action="store_true", help="instead of `axo evaluate`, keep every query's "
                        "result at k=3 (meta_in_context_eval.py; the SFT run in context; the base by probe_icl.py)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.variants.split(",")
    runs = [(name, EXAMPLE / "config.yml", VARIANTS[name]) for name in names]
    runs.append(("sft", EXAMPLE / "sft_config.yml", []))
    if args.per_query and not args.skip_base:
        runs.append(("base", EXAMPLE / "probe_icl.py", []))
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
        if run[0] == "base":
            record("evaluation", score_per_query("base", args))
            return
        trained = train(*run, args)
        record("training", trained)
        if args.per_query and trained["exit_code"] == 0:
            record("evaluation", score_per_query(run[0], args))
        if run[0] == "sft":
            sft_done.set()
        elif trained["exit_code"] == 0 and not args.per_query:
            sft_done.wait()  # each meta-adapter is compared with the SFT adapter
            record("evaluation", evaluate(run[0], args))

    with ThreadPoolExecutor(len(runs)) as pool:
        list(pool.map(train_then_evaluate, runs))
    # One file: a device call brings back a bounded number of files, and every adapter folder holds several.
    with tarfile.open(args.out / "adapters.tar", "w") as tar:
        for name, _, _ in runs:
            for path in sorted(args.out.glob(f"{name}-per-query.json")):
                tar.add(path, arcname=path.name)
            for path in sorted((args.out / name).glob("*")):
                # the adapter and its run files; not the tokenizer (the base's) nor plots: a returned file is <16 MiB
                if path.is_file() and path.suffix in {".json", ".jsonl", ".yml", ".safetensors", ".md", ".jinja"} \
                        and path.name != "tokenizer.json":
                    tar.add(path, arcname=f"{name}/{path.name}")
    for evaluation in report["evaluation"]:
        if "per_query" in evaluation:
            continue
        print(_table(evaluation["run"], evaluation["results"]) if evaluation["results"] else
              f"{evaluation['run']}: evaluation failed (exit {evaluation['exit_code']})")
    print(f"wall {report['wall_s']} s")


if __name__ == "__main__":
    main()
