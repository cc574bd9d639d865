"""GPU measurements for sample packing (issue 5), in one device call:

1. attention cost at 16k tokens: causal SDPA on one sequence vs axo's varlen kernel on packed documents
   (vs a dense block-diagonal mask), forward + backward, Llama-3.1-8B head shapes, bf16;
2. Llama-3.1-8B architecture (random weights, bf16): logits of a packed row vs each sample alone;
3. end-to-end LoRA training on variable-length data, packed vs padded batches: trained tokens/s.

    python benchmarks/packing_gpu.py --out DIR [--steps 12]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from qlora_gpu import LLAMA_31_8B, write_random_model  # noqa: E402


def alpaca_like_lengths(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [min(2048, 40 + int(rng.lognormvariate(4.6, 0.8))) for _ in range(count)]


def timed(fn, repeats: int = 20) -> float:
    import torch

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1000


def attention_cost(total: int = 16384) -> dict:
    import torch

    from axo.models.attention import varlen_attention

    heads, kv_heads, dim = 32, 8, 128
    lengths, filled = [], 0
    for n in alpaca_like_lengths(10_000, 1):
        if filled + n > total:
            break
        lengths.append(n)
        filled += n
    lengths.append(total - filled)
    positions = torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0).cuda()
    q = torch.randn(1, heads, total, dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(1, kv_heads, total, dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(1, kv_heads, total, dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    grad = torch.randn(1, total, heads, dim, device="cuda", dtype=torch.bfloat16)

    def causal():
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        out.transpose(1, 2).backward(grad)

    def varlen():
        out, _ = varlen_attention(None, q, k, v, None, scaling=dim ** -0.5, position_ids=positions)
        out.backward(grad)

    document = torch.repeat_interleave(torch.arange(len(lengths), device="cuda"), torch.tensor(lengths, device="cuda"))
    index = torch.arange(total, device="cuda")
    mask = (document[:, None] == document[None, :]) & (index[:, None] >= index[None, :])

    def dense():
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        out.transpose(1, 2).backward(grad)

    result = {"tokens": total, "documents": len(lengths), "causal_ms": timed(causal), "varlen_ms": timed(varlen),
              "dense_mask_ms": timed(dense, 5)}
    result["varlen_over_causal"] = result["varlen_ms"] / result["causal_ms"]
    return result


def packed_logits(model_dir: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from axo.models.attention import register_varlen_attention

    name = register_varlen_attention()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation=name).cuda().eval()
    rng = random.Random(0)
    lengths = [rng.randint(64, 700) for _ in range(6)]
    samples = [torch.randint(10, 590, (n,), device="cuda") for n in lengths]
    positions = torch.cat([torch.arange(n, device="cuda") for n in lengths]).unsqueeze(0)
    with torch.no_grad():
        packed = model(input_ids=torch.cat(samples).unsqueeze(0), position_ids=positions, use_cache=False).logits[0]
        model.set_attn_implementation("sdpa")
        alone = torch.cat([model(input_ids=s.unsqueeze(0), use_cache=False).logits[0] for s in samples])
        # The bf16 noise floor: the same samples alone through another correct kernel (eager attention).
        model.set_attn_implementation("eager")
        alone_eager = torch.cat([model(input_ids=s.unsqueeze(0), use_cache=False).logits[0] for s in samples])

    def compare(a, b):
        difference = (a.float() - b.float()).abs()
        return {"max_abs_diff": difference.max().item(), "mean_abs_diff": difference.mean().item(),
                "argmax_agreement": (a.argmax(-1) == b.argmax(-1)).float().mean().item()}

    result = {"samples": lengths, "logit_std": alone.float().std().item(),
              "packed_varlen_vs_alone_sdpa": compare(packed, alone),
              "noise_floor_alone_eager_vs_alone_sdpa": compare(alone_eager, alone)}
    del model
    torch.cuda.empty_cache()
    return result


def write_data(path: Path, count: int = 3000) -> None:
    words = "data model learn answer question river city music story number system energy market".split()
    rng = random.Random(2)
    with path.open("w") as handle:
        for n in alpaca_like_lengths(count, 3):
            text = " ".join(rng.choice(words) for _ in range(max(4, (n - 40) // 2)))  # ~2 tokens per word
            handle.write(json.dumps({"text": text}) + "\n")


def end_to_end(model_dir: Path, work: Path, steps: int) -> dict:
    import torch

    from axo.config.load import load_config
    from axo.config.overrides import parse_overrides
    from axo.train.run import train

    write_data(work / "varlen.jsonl")
    base = (f"base_model: {model_dir}\nlearning_rate: 1e-4\nadapter: lora\nlora_r: 16\nlora_alpha: 32\n"
            f"lora_target_linear: true\ndatasets:\n  - path: {work / 'varlen.jsonl'}\n    type: completion\n"
            "sequence_len: 2048\n"
            "micro_batch_size: 4\ngradient_accumulation_steps: 1\nbf16: true\ngradient_checkpointing: true\n"
            f"gradient_checkpointing_kwargs:\n  use_reentrant: false\nmax_steps: {steps}\nlogging_steps: 1\n"
            "save_strategy: 'no'\n")
    results = {}
    for name, extra in (("padded", "sample_packing: false\n"), ("packed", "sample_packing: true\n")):
        (work / f"{name}.yml").write_text(base + extra + f"output_dir: {work / name}\ndataset_prepared_path: {work / 'prep'}\n")
        torch.cuda.reset_peak_memory_stats()
        result = train(load_config(work / f"{name}.yml", parse_overrides([])).require(), progress=False)
        timed_steps = [r for r in result.metrics if "loss" in r][3:]
        seconds = timed_steps[-1]["elapsed_s"] - [r for r in result.metrics if "loss" in r][2]["elapsed_s"]
        trained = timed_steps[-1]["trained_tokens"] - [r for r in result.metrics if "loss" in r][2]["trained_tokens"]
        results[name] = {"trained_tokens_per_s": trained / seconds, "steps_timed": len(timed_steps),
                         "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
                         "attention": result.model.config._attn_implementation, "steps": result.steps}
        del result
        torch.cuda.empty_cache()
    results["packed_over_padded"] = results["packed"]["trained_tokens_per_s"] / results["padded"]["trained_tokens_per_s"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-packing"))
    args = parser.parse_args()
    import torch

    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    report["attention_16k"] = attention_cost()
    print(json.dumps(report, indent=1), flush=True)
    model_dir = args.work / "llama-3.1-8b-random"
    if not (model_dir / "config.json").exists():
        write_random_model(model_dir)
    report["packed_vs_alone_logits"] = packed_logits(model_dir)
    print(json.dumps(report["packed_vs_alone_logits"], indent=1), flush=True)
    report["end_to_end"] = end_to_end(model_dir, args.work, args.steps)
    (args.out / "packing_gpu.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
