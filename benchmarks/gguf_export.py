"""GGUF export round trip on a real run (issue 21): `axo export` at several types, each file loaded by llama.cpp
(llama-cpp-python) and compared with transformers on the merged model, on the run's held-out rows.

    python benchmarks/gguf_export.py --run quickstart-run/adapter --rows examples/quickstart/held_out.jsonl \
        --out benchmarks/results/gguf_export_quickstart_cpu.json [--quants f16,q8_0,q4_k_m]

Each row is its chat (`messages`) and its expected answer (`ideal`) as an assistant turn, rendered by the run's
chat template and tokenized by the run's tokenizer; the same token ids go to both runtimes. Reported per type: the
export's time and size, whether llama.cpp's tokenizer gives the same ids for the rendered text, the largest logit
difference from the merged model in float32 (over every position of
every row), the perplexity of the answer tokens, and whether the greedy answer (8 new tokens) equals transformers'.
Needs `pip install 'axo[llama-cpp]'`.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _rows(path: Path, tokenizer, limit: int | None) -> list[dict]:
    """Per row: the prompt ids (generation prompt included) and the answer's ids after them."""
    rows = []
    for line in path.read_text().splitlines()[:limit]:
        row = json.loads(line)
        prompt = tokenizer.apply_chat_template(row["messages"], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(row["messages"] + [{"role": "assistant", "content": row["ideal"]}],
                                             tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        assert full_ids[:len(prompt_ids)] == prompt_ids, "the answer must extend the prompt's tokens"
        rows.append({"prompt": prompt_ids, "ids": full_ids, "text": full})
    return rows


def _perplexity(logits: np.ndarray, row: dict) -> tuple[float, int]:
    """Sum of the answer tokens' negative log-likelihoods and their count, from (positions, vocab) logits."""
    start, ids = len(row["prompt"]), row["ids"]
    total = 0.0
    for position in range(start, len(ids)):
        step = logits[position - 1].astype(np.float64)
        total += float(np.logaddexp.reduce(step) - step[ids[position]])
    return total, len(ids) - start


def _greedy_transformers(model, ids: list[int], tokens: int) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=tokens, do_sample=False, eos_token_id=None,
                             pad_token_id=0)
    return out[0, len(ids):].tolist()


def _greedy_llama(llm, ids: list[int], tokens: int) -> list[int]:
    found = []
    for token in llm.generate(ids, top_k=1, temp=0.0, reset=True):
        found.append(token)
        if len(found) == tokens:
            break
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--rows", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quants", default="f16,q8_0,q4_k_m")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import llama_cpp
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axo.infer.merge import merge_lora

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.run)
    rows = _rows(args.rows, tokenizer, args.limit)
    report: dict = {"run": str(args.run), "rows": str(args.rows), "row_count": len(rows),
                    "llama_cpp_python": llama_cpp.__version__, "torch": torch.__version__, "types": {}}
    with tempfile.TemporaryDirectory() as scratch:
        merged = merge_lora(args.run, output=Path(scratch) / "merged").output_dir
        model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
        reference = []
        for row in rows:
            with torch.no_grad():
                reference.append(model(input_ids=torch.tensor([row["ids"]])).logits[0].numpy())
        nll = [_perplexity(logits, row) for logits, row in zip(reference, rows)]
        report["transformers_fp32_perplexity"] = math.exp(sum(n for n, _ in nll) / sum(c for _, c in nll))
        greedy_reference = [_greedy_transformers(model, row["prompt"], 8) for row in rows]
        for quant in args.quants.split(","):
            out = Path(scratch) / f"model-{quant}.gguf"
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "axo", "export", str(args.run), "--quant", quant, "-o",
                                   str(out)], capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                report["types"][quant] = {"error": done.stdout + done.stderr}
                continue
            llm = llama_cpp.Llama(str(out), n_ctx=512, logits_all=True, verbose=False, n_threads=args.threads)
            worst, total, count, same, tokens_equal = 0.0, 0.0, 0, 0, 0
            for row, logits, greedy in zip(rows, reference, greedy_reference):
                tokens_equal += llm.tokenize(row["text"].encode(), add_bos=False, special=True) == row["ids"]
                llm.reset()
                llm.eval(row["ids"])
                ours = np.asarray(llm.scores[:len(row["ids"])])
                worst = max(worst, float(np.abs(ours - logits).max()))
                row_nll, row_count = _perplexity(ours, row)
                total, count = total + row_nll, count + row_count
                same += _greedy_llama(llm, row["prompt"], 8) == greedy
            report["types"][quant] = {"export_s": round(seconds, 1), "bytes": out.stat().st_size,
                                      "max_abs_logit_diff": round(worst, 4),
                                      "perplexity": math.exp(total / count),
                                      "greedy_equal": f"{same}/{len(rows)}",
                                      "tokens_equal": f"{tokens_equal}/{len(rows)}"}
            print(quant, report["types"][quant], flush=True)
            del llm
    base = report["transformers_fp32_perplexity"]
    for entry in report["types"].values():
        if "perplexity" in entry:
            entry["perplexity_change_pct"] = round(100 * (entry["perplexity"] / base - 1), 2)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
