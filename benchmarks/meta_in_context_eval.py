"""Per-query few-shot scores of a `support_in_context` meta-adapter and an SFT adapter, through axo's own
few-shot functions (infer/few_shot.py), for a paired comparison (issue 19):

    python benchmarks/meta_in_context_eval.py --meta RUN --sft SFT_RUN --out records.json [--shots 3] [--limit N]
    python benchmarks/meta_in_context_eval.py --meta RUN --out meta.json   # one method only (--sft alone too)

For every held-out task: the meta-adapter adapted on the first k support rows by its run's inner loop and then
asked after those rows ("adapted, and the examples in context"), and the SFT adapter with the same rows in
context. One record per task and method (answer loss, and per query whether the normalised answer matched),
rewritten after every task so a run cut short keeps what it scored. `axo evaluate --tasks` gives the same numbers
as a table of means; this keeps each query's result, which a paired test needs.

Runs on the GPU when there is one (as `axo evaluate` does), else on the CPU. Runs trained on a GPU carry
`bf16: true`; on a CPU axo loads them in float32 (infer/loading.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from axo.config.schema.meta import MetaLearning
from axo.data.meta import read_tasks
from axo.infer import few_shot
from axo.infer.loading import load_for_inference
from axo.infer.run_dir import open_run
from axo.train.meta_learning import InnerLoop
from axo.train.meta_trainer import TaskCollator

REPO = Path(__file__).resolve().parents[1]
META = "meta-adapter (adapted, and the examples in context)"
SFT = "SFT adapter (in context)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meta", help="the meta-learning run (trained with support_in_context)")
    parser.add_argument("--sft", help="the SFT baseline run")
    parser.add_argument("--tasks", type=Path, default=REPO / "examples" / "meta_learning" / "held_out_tasks.jsonl")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not (args.meta or args.sft):
        parser.error("give --meta, --sft or both")
    torch.set_num_threads(args.threads)
    records: list[dict] = []
    methods = [(label, path) for label, path in [(META, args.meta), (SFT, args.sft)] if path]
    for label, path in methods:
        run = open_run(path, command="evaluate")
        model, tokenizer = load_for_inference(run, trainable_adapter=True)
        # The tasks are read (and length-checked) under a support_in_context config: the meta run's, or the
        # SFT run's with the examples-in-context switch on (its inner-loop settings are not used).
        cfg = run.cfg if run.cfg.meta_learning else run.cfg.model_copy(
            update={"meta_learning": MetaLearning(support_in_context=True),
                    "sequence_len": max(run.cfg.sequence_len, 512)})
        tasks = read_tasks(args.tasks, cfg, tokenizer)[:args.limit]
        collate = TaskCollator(tokenizer, reptile=False, support_in_context=True)
        loop = InnerLoop(cfg.meta_learning.inner_lr, cfg.meta_learning.inner_steps)  # used by the meta run only
        started = time.perf_counter()
        for number, task in enumerate(tasks):
            if label == META:
                scored = few_shot._adapted(model, tokenizer, task, args.shots, loop, collate, 8)
            else:
                scored = few_shot._in_context(model, tokenizer, task, args.shots, 8)
            records.append({"method": label, "task_id": task["task_id"], "loss": scored["loss"],
                            "normalized": scored["normalized"], "exact": scored["exact"]})
            args.out.write_text(json.dumps(records))
            if number % 10 == 0:
                print(f"{label}: task {number}, {time.perf_counter() - started:.0f} s", flush=True)
        del model


if __name__ == "__main__":
    main()
