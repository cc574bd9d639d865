"""GPU check: QLoRA with the real-world Llama-3.1-8B-style config (tests/fixtures/configs/) (random-init weights of that architecture),
20 steps through axo's real training path; prints peak memory and tokens/s.

    python benchmarks/qlora_gpu.py --out DIR [--steps 20]

Needs CUDA and bitsandbytes. Writes DIR/qlora_gpu.json and DIR/metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_CONFIG = REPO / "tests" / "fixtures" / "configs" / "llama31-8b-qlora-distill.yml"

LLAMA_31_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                   num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0, vocab_size=128256,
                   rms_norm_eps=1e-5, tie_word_embeddings=False,
                   rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 8192, "rope_type": "llama3"})


def write_random_model(folder: Path) -> None:
    """A random-init Llama-3.1-8B-architecture checkpoint (bf16 safetensors) plus a locally trained tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(REPO / "tests"))
    import tiny_models

    tokenizer = tiny_models.build_tokenizer(folder)
    config = LlamaConfig(**LLAMA_31_8B, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="5GB")
    del model
    torch.cuda.empty_cache()


def write_data(path: Path, rows: int = 600) -> None:
    rng = random.Random(0)
    words = "the model learns to answer questions about data science history music and travel".split()
    with path.open("w") as handle:
        for _ in range(rows):
            text = lambda n: " ".join(rng.choice(words) for _ in range(n))  # noqa: E731
            handle.write(json.dumps({"instruction": text(20), "input": text(30), "output": text(rng.randint(150, 400))}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-qlora"))
    parser.add_argument("--config", type=Path, default=REAL_CONFIG, help="the real-world QLoRA config")
    args = parser.parse_args()
    import torch

    from axo.config.load import load_config
    from axo.config.overrides import parse_overrides
    from axo.train.run import train

    args.work.mkdir(parents=True, exist_ok=True)
    model_dir = args.work / "llama-3.1-8b-random"
    started = time.perf_counter()
    if not (model_dir / "config.json").exists():
        write_random_model(model_dir)
    made = time.perf_counter() - started
    write_data(args.work / "data.jsonl")
    overrides = parse_overrides([
        "--base_model", str(model_dir), "--datasets.0.path", str(args.work / "data.jsonl"),
        "--model_type", "AutoModelForCausalLM", "--tokenizer_type", "AutoTokenizer",
        "--special_tokens.eos_token", "</s>", "--special_tokens.pad_token", "<pad>",
        "--max_steps", str(args.steps), "--logging_steps", "1", "--save_strategy", "no", "--val_set_size", "0",
        "--output_dir", str(args.work / "out"), "--dataset_prepared_path", str(args.work / "prepared"),
    ])
    loaded = load_config(args.config, overrides)
    for problem in loaded.problems:
        print(problem.render())
    cfg = loaded.require()
    torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    result = train(cfg, progress=False)
    wall = time.perf_counter() - began
    steps = [r for r in result.metrics if "loss" in r]
    timed = steps[3:] or steps  # skip warm-up steps (allocator, kernels)
    report = {
        "device": torch.cuda.get_device_name(0),
        "steps": result.steps,
        "final_loss": result.train_loss,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2),
        "tokens_per_s_after_warmup": round(sum(r["tokens_per_s"] for r in timed) / len(timed)),
        "trained_tokens_per_s_after_warmup": round(sum(r["trained_tokens_per_s"] for r in timed) / len(timed)),
        "train_wall_s": round(wall, 1), "model_write_s": round(made, 1),
        "config": {k: getattr(cfg, k) for k in ("adapter", "load_in_4bit", "lora_r", "lora_alpha", "sequence_len",
                                                  "micro_batch_size", "gradient_accumulation_steps", "bf16",
                                                  "gradient_checkpointing", "pad_to_sequence_len", "attn_implementation")},
        "losses": [round(r["loss"], 4) for r in steps],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "qlora_gpu.json").write_text(json.dumps(report, indent=1, default=str))
    (args.out / "metrics.jsonl").write_text((args.work / "out" / "metrics.jsonl").read_text())
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
