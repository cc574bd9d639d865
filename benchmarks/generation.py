"""Generation speed: axo's generation path (what `axo inference -i` and `axo evaluate` run: a run's config,
`load_for_inference`, `generate_texts`) against plain transformers `generate` with its KV cache, on the same
model, prompts and batch size, greedy; and, for scale, transformers without the cache (axo before issue 15).

    # CPU, the quickstart's model (./quickstart.sh writes it):
    python benchmarks/generation.py --model quickstart-run/SmolLM2-135M-Instruct --out gen-cpu.json
    # GPU, Llama-3.1-8B architecture with random bf16 weights:
    python3 benchmarks/generation.py --arch llama-3.1-8b --work /tmp/gen --out $OUT/gen.json --prompts 64

Prompts are the quickstart's held-out messages through the tokenizer's chat template (plain text when it has
none). Tokens/s counts generated tokens up to and including EOS, as `generate_texts` reports them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(REPO / "benchmarks")]


def prompts_for(tokenizer, count: int) -> list[str]:
    rows = [json.loads(line) for line in (REPO / "examples/quickstart/held_out.jsonl").read_text().splitlines()]
    conversations = [row["messages"] for row in (rows * (count // len(rows) + 1))[:count]]
    if getattr(tokenizer, "chat_template", None):
        return [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    return [c[-1]["content"] for c in conversations]


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_transformers(model, tokenizer, prompts: list[str], new_tokens: int, batch: int, cache: bool) -> int:
    """Generated tokens (to EOS inclusive) of transformers' own `generate`, left-padded batches."""
    import torch

    tokenizer.padding_side = "left"
    total = 0
    for start in range(0, len(prompts), batch):
        inputs = tokenizer(prompts[start:start + batch], return_tensors="pt", padding=True,
                           add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, use_cache=cache,
                                 pad_token_id=tokenizer.pad_token_id)
        for row in out[:, inputs["input_ids"].shape[1]:]:
            ends = (row == tokenizer.eos_token_id).nonzero()
            total += int(ends[0][0]) + 1 if len(ends) else int((row != tokenizer.pad_token_id).sum())
    return total


def axo_path(model_dir: Path, work: Path):
    """(model, tokenizer) as `axo inference` loads them for a run whose base is `model_dir`."""
    from axo.infer.loading import load_for_inference
    from axo.infer.run_dir import open_run

    work.mkdir(parents=True, exist_ok=True)
    config = work / "gen-bench.yml"
    config.write_text(f"base_model: {model_dir.resolve()}\nlearning_rate: 1e-4\ndatasets:\n  - path: unused.jsonl\n"
                      f"    type: alpaca\noutput_dir: {work / 'no-run'}\nbf16: auto\n")
    return load_for_inference(open_run(config))


def timed(label: str, run, results: dict) -> None:
    _sync()
    started = time.perf_counter()
    tokens = run()
    _sync()
    seconds = time.perf_counter() - started
    best = results.get(label)
    if best is None or tokens / seconds > best["tokens_per_s"]:
        results[label] = {"tokens": tokens, "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 2)}
    print(f"{label:28} {tokens:6d} tokens {seconds:8.2f} s {tokens / seconds:9.1f} tok/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model folder (else --arch builds random weights)")
    parser.add_argument("--arch", default="llama-3.1-8b")
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-gen"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-cache-prompts", type=int, default=8, help="prompts for the no-cache row (slow)")
    args = parser.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axo.infer.generate import GenerationSettings, generate_texts

    model_dir = args.model
    if model_dir is None:
        from speed import write_model

        model_dir = args.work / args.arch
        write_model(args.arch, model_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    prompts = prompts_for(tokenizer, args.prompts)
    plain = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    axo_model, axo_tokenizer = axo_path(model_dir, args.work)
    settings = GenerationSettings(max_new_tokens=args.new_tokens)

    def run_axo() -> int:
        return sum(r["completion_tokens"] for r in generate_texts(axo_model, axo_tokenizer, prompts, settings,
                                                                  args.batch_size))

    def run_plain() -> int:
        return plain_transformers(plain, tokenizer, prompts, args.new_tokens, args.batch_size, cache=True)

    results: dict = {}
    run_plain(), run_axo()  # warm-up: kernels, allocator, caches
    for _ in range(args.repeats):  # interleaved, best of each
        timed("transformers generate", run_plain, results)
        timed("axo (generate_texts)", run_axo, results)
    few = prompts[: args.no_cache_prompts]
    timed("transformers, no KV cache", lambda: plain_transformers(plain, tokenizer, few, args.new_tokens,
                                                                 args.batch_size, cache=False), results)
    ratio = results["axo (generate_texts)"]["tokens_per_s"] / results["transformers generate"]["tokens_per_s"]
    report = {"model": str(model_dir), "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
              "dtype": str(dtype), "torch": torch.__version__, "transformers": transformers.__version__,
              "prompts": len(prompts), "batch_size": args.batch_size, "new_tokens": args.new_tokens,
              "results": results, "axo_over_transformers": round(ratio, 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"axo / transformers: {ratio:.3f}")


if __name__ == "__main__":
    main()
