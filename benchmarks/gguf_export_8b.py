"""Time and peak memory of `axo export` on an 8B-class model (issue 21), on this machine's CPU.

    python benchmarks/gguf_export_8b.py --work /path/with/60GB --out benchmarks/results/gguf_export_8b_cpu.json

The base: Llama-3.1-8B's shapes (hidden 4096, 32 layers, 32/8 heads, MLP 14336) with SmolLM2's 49,152-token
vocabulary, because llama.cpp's converter needs a tokenizer it knows and Llama 3's is not available offline
(7.4B parameters instead of 8.0B), random bf16 weights (benchmarks/random_model.py). The run: a LoRA adapter r16
on every linear layer with random weights, written as `axo train` writes one (adapter files, axo_config.yml,
axo_run.json). Each `axo export` runs in its own process under `/usr/bin/time -v` (wall time, peak resident
memory); the f16 file is removed before the next type. Disk: about 15 GB each for the base, the merged model and
the f16 GGUF.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def build(work: Path) -> Path:
    import torch
    from random_model import write_random_checkpoint
    from safetensors.torch import save_file
    from tiny_models import real_tokenizer
    from transformers import LlamaConfig

    base, run = work / "base-8b", work / "run-8b"
    config = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, vocab_size=49152, max_position_embeddings=8192, rope_theta=500000.0,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, torch_dtype="bfloat16",
                         architectures=["LlamaForCausalLM"])
    if not (base / "model.safetensors.index.json").is_file():
        started = time.perf_counter()
        write_random_checkpoint(config, base)
        real_tokenizer("smollm2", base)
        print(f"base written in {time.perf_counter() - started:.0f} s", flush=True)
    config.save_pretrained(base)  # (again: names the architecture, which the converter needs)
    run.mkdir(exist_ok=True)
    real_tokenizer("smollm2", run)
    shapes = {"q_proj": (4096, 4096), "k_proj": (4096, 1024), "v_proj": (4096, 1024), "o_proj": (4096, 4096),
              "gate_proj": (4096, 14336), "up_proj": (4096, 14336), "down_proj": (14336, 4096)}
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in range(32):
        for name, (fan_in, fan_out) in shapes.items():
            part = "mlp" if name.endswith(("gate_proj", "up_proj", "down_proj")) else "self_attn"
            prefix = f"base_model.model.model.layers.{layer}.{part}.{name}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(16, fan_in, generator=generator).bfloat16() * 0.01
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(fan_out, 16, generator=generator).bfloat16() * 0.01
    save_file(tensors, run / "adapter_model.safetensors", metadata={"format": "pt"})
    (run / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
        "target_modules": list(TARGETS), "base_model_name_or_path": str(base), "fan_in_fan_out": False,
        "bias": "none", "use_rslora": False, "use_dora": False}))
    (work / "data.jsonl").write_text(json.dumps({"instruction": "x", "output": "y"}) + "\n")
    (run / "axo_config.yml").write_text(
        f"base_model: {base}\nadapter: lora\nlora_r: 16\nlora_alpha: 32\nlora_target_linear: true\n"
        f"learning_rate: 1.0e-4\ndatasets:\n  - path: {work / 'data.jsonl'}\n    type: alpaca\n"
        f"output_dir: {run}\n")
    (run / "axo_run.json").write_text(json.dumps({"state": "finished"}))
    return run


def timed_export(run: Path, quant: str, out: Path) -> dict:
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "axo", "export", str(run), "--quant", quant,
               "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    text = done.stdout + done.stderr
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    parts = [float(p) for p in wall.split(":")]
    seconds = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)
    return {"quant": quant, "exit_code": done.returncode, "wall_s": round(seconds, 1),
            "peak_rss_gib": round(peak_kb / 2**20, 2), "bytes": out.stat().st_size if out.is_file() else None,
            "tail": text.strip().splitlines()[-25:] if done.returncode else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quants", default="f16,q4_k_m")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    run = build(args.work)
    report = {"machine": "2-core CPU dev machine, 24 GiB", "model": "Llama-3.1-8B shapes, 49,152-token vocab, "
              "random bf16; LoRA r16 on all linear layers", "exports": []}
    for quant in args.quants.split(","):
        out = args.work / f"model-{quant}.gguf"
        report["exports"].append(timed_export(run, quant, out))
        print(report["exports"][-1], flush=True)
        out.unlink(missing_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    shutil.rmtree(run / "gguf", ignore_errors=True)


if __name__ == "__main__":
    main()
