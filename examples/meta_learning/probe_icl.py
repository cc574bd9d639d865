"""How well the base model does a task family by in-context learning alone: the bar a meta-adapter must beat.

    python examples/meta_learning/probe_icl.py                     # held_out_tasks.jsonl, k = 0 1 3 5
    python examples/meta_learning/probe_icl.py --shots 3 --limit 8 --json-out icl.json

Plain transformers, no axo training. For each task and each k, every query row is asked after the first k
support rows: the alpaca (instruct) system line once, then k turns "### Instruction / ### Input /
### Response" each followed by its answer, then the query's turn. With k = 0 this is exactly the prompt axo's
`type: alpaca` trains on. Greedy decoding, at most 8 new tokens; a query counts as right when the first line
of the generation, stripped and lower-cased, equals the answer stripped and lower-cased. With `--loss`, also
the mean negative log-likelihood of the answer's tokens (teacher-forced, no end token) after the same prompt
(a second forward pass: about twice the time).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from axo.data.formats.alpaca import STYLES

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STYLE = STYLES["instruct"]


def render(support: list[dict], query: dict) -> str:
    """The k-shot prompt for `query`: the system line, the support turns with their answers, the query's turn."""
    system = STYLE.system_prompt if query.get("input") else STYLE.system_no_input_prompt
    turns = [STYLE.build(row["instruction"], row.get("input", ""), system="") + row["output"] + "\n\n"
             for row in support]
    return (STYLE.system_format.format(system=system) + "".join(turns)
            + STYLE.build(query["instruction"], query.get("input", ""), system=""))


def normalise(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip().lower() if lines else ""


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy completions of a batch of prompts (left-padded, so every row's new tokens start at one column)."""
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)


@torch.no_grad()
def answer_losses(model, tokenizer, prompts: list[str], answers: list[str]) -> list[float]:
    """Per row, the mean NLL of the answer's tokens after the prompt (prompt and answer tokenized apart, as
    axo's alpaca format does)."""
    pairs = [(tokenizer(p)["input_ids"], tokenizer(a, add_special_tokens=False)["input_ids"])
             for p, a in zip(prompts, answers)]
    width = max(len(p) + len(a) for p, a in pairs)
    ids = torch.full((len(pairs), width), tokenizer.pad_token_id)
    labels = torch.full((len(pairs), width), -100)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (p, a) in enumerate(pairs):  # right padding: positions stay 0..n-1 for every row
        ids[i, :len(p) + len(a)] = torch.tensor(p + a)
        labels[i, len(p):len(p) + len(a)] = torch.tensor(a)
        mask[i, :len(p) + len(a)] = 1
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels[:, 1:], reduction="none")
    counts = (labels[:, 1:] != -100).sum(1)
    return (nll.sum(1) / counts).tolist()


def probe(model, tokenizer, tasks: list[dict], k: int, batch_size: int, max_new_tokens: int,
          with_loss: bool) -> list[dict]:
    """One record per query row: task, attribute (the task id less its number), right or not, answer loss
    (None without `with_loss`)."""
    items = [(task, query) for task in tasks for query in task["query_set"]]
    records = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        prompts = [render(task["support_set"][:k], query) for task, query in chunk]
        answers = [query["output"] for _, query in chunk]
        outputs = generate(model, tokenizer, prompts, max_new_tokens)
        losses = answer_losses(model, tokenizer, prompts, answers) if with_loss else [None] * len(chunk)
        for (task, query), output, loss in zip(chunk, outputs, losses):
            records.append({"k": k, "task_id": task["task_id"], "attribute": task["task_id"].rsplit("-", 1)[0],
                            "input": query["input"], "answer": query["output"], "output": output,
                            "right": normalise(output) == normalise(query["output"]), "loss": loss})
    return records


def table(records: list[dict], shots: list[int]) -> str:
    """Exact-match % (and mean answer loss overall) per k, overall and per attribute."""
    groups: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        groups["ALL"][record["k"]].append(record)
        groups[record["attribute"]][record["k"]].append(record)
    head = f"{'tasks':<22}" + "".join(f"{f'k={k}':>14}" for k in shots)
    lines = [head]
    for name in ["ALL", *sorted(name for name in groups if name != "ALL")]:
        cells = []
        for k in shots:
            rows = groups[name][k]
            right = 100 * sum(r["right"] for r in rows) / max(len(rows), 1)
            losses = [r["loss"] for r in rows if r["loss"] is not None]
            loss = f" {sum(losses) / len(losses):5.2f}" if losses and name == "ALL" else ""
            cells.append(f"{right:5.1f}%{loss}")
        lines.append(f"{name:<22}" + "".join(f"{cell:>14}" for cell in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=Path, default=HERE / "held_out_tasks.jsonl")
    parser.add_argument("--model", type=Path, default=REPO / "quickstart-run" / "SmolLM2-135M-Instruct")
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 1, 3, 5])
    parser.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--loss", action="store_true", help="also the answer tokens' NLL (twice the time)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--json-out", type=Path, default=None, help="write every query's record here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tasks = [json.loads(line) for line in args.tasks.read_text(encoding="utf-8").splitlines() if line.strip()]
    tasks = tasks[:args.limit] if args.limit else tasks
    tokenizer = AutoTokenizer.from_pretrained(args.model, padding_side="left")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    records, started = [], time.perf_counter()
    for k in args.shots:
        if k > min(len(task["support_set"]) for task in tasks):
            raise SystemExit(f"--shots {k}: a task has only {min(len(t['support_set']) for t in tasks)} support rows")
        tick = time.perf_counter()
        records += probe(model, tokenizer, tasks, k, args.batch_size, args.max_new_tokens, args.loss)
        print(f"k={k}: {time.perf_counter() - tick:.0f} s", flush=True)
    cells = "exact match %" + (" (ALL: and mean answer-token NLL)" if args.loss else "")
    print(f"{len(tasks)} tasks, {sum(len(t['query_set']) for t in tasks)} queries per k, "
          f"{time.perf_counter() - started:.0f} s in all; cells: {cells}")
    print(table(records, args.shots))
    if args.json_out:
        args.json_out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


if __name__ == "__main__":
    main()
