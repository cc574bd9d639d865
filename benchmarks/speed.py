"""Speed harness (issue 8): axo's training path against HF Trainer + PEFT (with and without Liger), in one
process, on the same random-init model and the same data.

    python benchmarks/speed.py --out DIR [--arch llama-3.1-8b|qwen2.5-7b|mistral-7b|small] [--steps 50]
        [--variants hf_lora,hf_lora_liger,axo_lora,...] [--axo-extra 'YAML lines'] [--profile axo_lora]

Fixed-length variants train `--steps` steps of micro-batch 4 × 2048 fully packed tokens (LoRA r64 α128 on
q/k/v/o/gate/up/down, bf16, gradient checkpointing, SDPA, fused AdamW; `*qlora*`: bnb NF4 with double
quantization). `*_varlen` variants train `--varlen-steps` steps on real-length samples (64–2048 tokens):
the baseline gets them flattened into 8192-token rows with restarting position_ids (transformers builds a
block-diagonal mask for SDPA), axo packs them itself (`sample_packing: true`, its varlen attention kernel).
Reports tokens/s over the steps after the first 3 (non-padding tokens), step time, peak memory, MFU, the
ratio to the plain HF + PEFT run of the same kind, and how far axo's loss curve is from it. `--profile`
adds a per-kernel GPU time table for steps 6–7 (excluded from the timing). Writes DIR/speed.json after
every variant.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

ARCHS = {
    "llama-3.1-8b": ("llama", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                                   num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0, rms_norm_eps=1e-5,
                                   max_position_embeddings=131072, tie_word_embeddings=False)),
    "qwen2.5-7b": ("qwen2", dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                                 num_key_value_heads=4, vocab_size=152064, rope_theta=1000000.0, rms_norm_eps=1e-6,
                                 max_position_embeddings=32768, tie_word_embeddings=False)),
    "mistral-7b": ("mistral", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                                   num_key_value_heads=8, vocab_size=32768, rope_theta=1000000.0, rms_norm_eps=1e-5,
                                   max_position_embeddings=32768, tie_word_embeddings=False, sliding_window=None)),
    "qwen2.5-72b": ("qwen2", dict(hidden_size=8192, intermediate_size=29568, num_hidden_layers=80, num_attention_heads=64,
                                  num_key_value_heads=8, vocab_size=152064, rope_theta=1000000.0, rms_norm_eps=1e-6,
                                  max_position_embeddings=32768, tie_word_embeddings=False)),
    "small": ("llama", dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=8, num_attention_heads=16,
                            num_key_value_heads=4, vocab_size=32000, max_position_embeddings=4096, tie_word_embeddings=False)),
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SEQ, MBS, PEAK_TFLOPS = 2048, 4, 989e12  # H100/H200 dense bf16 spec


def write_model(arch: str, folder: Path) -> int:
    """Random-init checkpoint (bf16 safetensors) + the tiny test tokenizer; returns the parameter count."""
    import tiny_models
    import torch
    from random_model import write_random_checkpoint
    from transformers import AutoConfig, AutoModelForCausalLM

    kind, shape = ARCHS[arch]
    if (folder / "config.json").exists():
        config = AutoConfig.from_pretrained(folder)
    else:
        tokenizer = tiny_models.build_tokenizer(folder)
        config = AutoConfig.for_model(kind, **shape, bos_token_id=tokenizer.bos_token_id,
                                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        write_random_checkpoint(config, folder)
    with torch.device("meta"):
        return sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())


def write_rows(path: Path, rows: int) -> None:
    import random

    rng = random.Random(0)
    with path.open("w") as handle:
        for _ in range(rows):
            handle.write(json.dumps({"input_ids": [rng.randrange(10, 590) for _ in range(SEQ)]}) + "\n")


def write_varlen_samples(path: Path, count: int) -> list[list[int]]:
    """Real-length samples: lengths log-uniform in [64, 2048] (mean ~570 tokens), as pre-tokenized rows."""
    import math
    import random

    rng = random.Random(1)
    samples = []
    for _ in range(count):
        length = int(math.exp(rng.uniform(math.log(64), math.log(SEQ))))
        samples.append([rng.randrange(10, 590) for _ in range(length)])
    path.write_text("".join(json.dumps({"input_ids": ids}) + "\n" for ids in samples))
    return samples


def flattened_rows(samples: list[list[int]], capacity: int) -> list[dict]:
    """The baseline's packing: consecutive samples concatenated into rows of at most `capacity` tokens, with
    restarting position_ids (what DataCollatorWithFlattening produces; transformers turns them into a
    block-diagonal attention mask) and no loss across sample boundaries."""
    rows, current = [], []
    for ids in samples:
        if current and sum(map(len, current)) + len(ids) > capacity:
            rows.append(current)
            current = []
        current.append(ids)
    rows.append(current)
    return [{"input_ids": [t for ids in row for t in ids],
             "position_ids": [i for ids in row for i in range(len(ids))],
             "labels": [t if i else -100 for ids in row for i, t in enumerate(ids)]} for row in rows]


class Timer:
    """A TrainerCallback-compatible step timer (wall time between step ends, after synchronising)."""

    def __init__(self):
        from transformers import TrainerCallback

        outer = self
        self.times, self.losses, self.tokens_seen = [], [], []

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                import torch

                torch.cuda.synchronize()
                outer._start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                import torch

                torch.cuda.synchronize()
                outer.times.append(time.perf_counter() - outer._start)
                outer.tokens_seen.append(state.num_input_tokens_seen)

            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    outer.losses.append(logs["loss"])

        self.callback = Callback()


def hf_baseline(model_dir: Path, data: Path, steps: int, qlora: bool, liger: bool, work: Path,
                varlen: list[dict] | None = None) -> dict:
    """Plain HF Trainer + PEFT, as Axolotl-style stacks run it; `varlen`: flattened rows of real-length samples."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        BitsAndBytesConfig,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    kwargs = {"dtype": torch.bfloat16, "attn_implementation": "sdpa"}
    if qlora:
        kwargs.update(quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                             bnb_4bit_use_double_quant=True,
                                                             bnb_4bit_compute_dtype=torch.bfloat16), device_map={"": 0})
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    if not qlora:
        model = model.cuda()
    if liger:
        import liger_kernel.transformers as lk

        getattr(lk, f"apply_liger_kernel_to_{model.config.model_type}")(
            model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=True)
    model.config.use_cache = False
    if qlora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(r=64, lora_alpha=128, lora_dropout=0.0, target_modules=TARGETS,
                                             task_type="CAUSAL_LM"))
    if varlen is None:
        dataset = load_dataset("json", data_files=str(data), split="train").map(lambda r: {"labels": r["input_ids"]})
        batch = MBS
    else:
        from datasets import Dataset

        dataset, batch = Dataset.from_list(varlen), 1
    timer = Timer()
    args = TrainingArguments(output_dir=str(work / "hf"), per_device_train_batch_size=batch, max_steps=steps,
                             include_num_input_tokens_seen="non_padding" if varlen else "no",
                             learning_rate=2e-4, bf16=True, gradient_checkpointing=True,
                             gradient_checkpointing_kwargs={"use_reentrant": False}, optim="adamw_torch_fused",
                             logging_steps=1, save_strategy="no", report_to=[], seed=42, data_seed=42,
                             disable_tqdm=True, lr_scheduler_type="constant", warmup_steps=0)
    torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=default_data_collator,
                      callbacks=[timer.callback])
    trainer.train()
    result = {"step_times": timer.times, "losses": timer.losses, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
              "tokens_seen": timer.tokens_seen if varlen else []}
    del trainer, model
    return result


CATEGORIES = (("attention", ("sdpa", "flash", "fmha", "attention", "dot_do_o")),  # before gemm: cuDNN names say sm90
              ("gemm", ("gemm", "nvjet", "cutlass", "sm90", "xmma", "cublas", "splitk")),
              ("dequant", ("dequant", "kdequantize")),
              ("optimizer", ("multi_tensor", "adam", "foreach")), ("copy/cast", ("copy", "memcpy", "memset", "cast")),
              ("fused triton", ("rms", "swiglu", "rope", "liger", "cross_entropy", "triton")),
              ("elementwise/reduce", ("elementwise", "vectorized", "unrolled", "reduce", "distribution", "bernoulli")))


def kernel_profile(prof, steps: int) -> dict:
    """GPU time per kernel and per category (ms per step) from a torch.profiler run over `steps` steps."""
    from torch.autograd import DeviceType

    per_kernel: dict[str, list] = {}
    for event in prof.events():
        if event.device_type != DeviceType.CUDA:
            continue
        entry = per_kernel.setdefault(event.name, [0.0, 0])
        entry[0] += event.device_time / 1000 / steps
        entry[1] += 1
    categories: dict[str, float] = {}
    for name, (ms, _) in per_kernel.items():
        lowered = name.lower()
        category = next((c for c, keys in CATEGORIES if any(k in lowered for k in keys)), "other")
        categories[category] = categories.get(category, 0.0) + ms
    top = sorted(per_kernel.items(), key=lambda item: -item[1][0])[:40]
    kernels = sorted((e for e in prof.events() if e.device_type == DeviceType.CUDA), key=lambda e: e.time_range.start)
    gaps = [(b.time_range.start - a.time_range.end, a.name[:60], b.name[:60]) for a, b in zip(kernels, kernels[1:])]
    syncs: dict[str, int] = {}
    for event in prof.events():  # where the CPU waited for the GPU, by Python call site
        if event.device_type != DeviceType.CUDA and event.name in ("aten::_local_scalar_dense", "aten::nonzero",
                                                                      "cudaStreamSynchronize", "cudaDeviceSynchronize"):
            frames = [f for f in (event.stack or []) if "torch/" not in f and "profiler" not in f][:4]
            site = event.name + " <- " + " <- ".join(frames)
            syncs[site] = syncs.get(site, 0) + 1
    return {"idle_ms_per_step": round(sum(g for g, *_ in gaps if g > 0) / 1000 / steps, 1),
            "largest_gaps": [{"us": round(g), "after": a, "before": b} for g, a, b in sorted(gaps, reverse=True)[:12]],
            "sync_sites": syncs,
            "ms_per_step_by_category": {k: round(v, 1) for k, v in sorted(categories.items(), key=lambda i: -i[1])},
            "gpu_ms_per_step": round(sum(categories.values()), 1),
            "top_kernels": [{"name": n[:140], "ms_per_step": round(ms, 2), "calls_per_step": c // steps}
                            for n, (ms, c) in top]}


def axo_run(model_dir: Path, data: Path, steps: int, qlora: bool, work: Path, extra: str, profile: bool = False) -> dict:
    """axo's real training path from a YAML config, with `extra` keys (the speed options under test)."""
    import torch

    from axo.config.load import load_config
    from axo.train.run import train

    keep = 0  # harness-only experiment: `bench_keep_layers: K` leaves the last K layers un-checkpointed
    lines = []
    for line in extra.splitlines():
        if line.startswith("bench_keep_layers:"):
            keep = int(line.split(":", 1)[1])
        else:
            lines.append(line)
    extra = "\n".join(lines) + "\n"
    quant = "adapter: qlora\nload_in_4bit: true\n" if qlora else "adapter: lora\n"
    text = (f"base_model: {model_dir}\nlearning_rate: 2e-4\n{quant}lora_r: 64\nlora_alpha: 128\nlora_dropout: 0.0\n"
            f"lora_target_modules: {TARGETS}\ndatasets:\n  - path: {data}\nsequence_len: {SEQ}\n"
            f"micro_batch_size: {MBS}\ngradient_accumulation_steps: 1\nmax_steps: {steps}\nbf16: true\n"
            "gradient_checkpointing: true\ngradient_checkpointing_kwargs:\n  use_reentrant: false\n"
            "optimizer: adamw_torch_fused\nlr_scheduler: constant\nwarmup_steps: 0\nlogging_steps: 1\n"
            f"save_strategy: 'no'\nseed: 42\nshuffle_merged_datasets: false\noutput_dir: {work / 'axo'}\n"
            f"dataset_prepared_path: {work / 'prepared'}\n" + extra)
    (work / "axo.yml").write_text(text)
    timer = Timer()
    torch.cuda.reset_peak_memory_stats()
    from axo.train import run as run_module

    original = run_module.RunRecorder

    profiled: dict = {}

    class Timed(original):  # add the step timer (and profiler) to axo's callbacks for this measurement only
        def on_train_begin(self, args, state, control, model=None, **k):
            if keep:
                layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
                for layer in layers[-keep:]:
                    layer.gradient_checkpointing = False
            return super().on_train_begin(args, state, control, model=model, **k)

        def on_step_begin(self, args, state, *a, **k):
            if profile and state.global_step == 5:
                profiled["prof"] = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA,
                                                                          torch.profiler.ProfilerActivity.CPU],
                                                              with_stack=True)
                profiled["prof"].__enter__()
            timer.callback.on_step_begin(args, state, *a, **k)

        def on_step_end(self, args, state, *a, **k):
            timer.callback.on_step_end(args, state, *a, **k)
            if profile and state.global_step == 7:
                profiled["prof"].__exit__(None, None, None)
                profiled["table"] = kernel_profile(profiled.pop("prof"), 2)

    run_module.RunRecorder = Timed
    try:
        result = train(load_config(work / "axo.yml").require(), progress=False)
    finally:
        run_module.RunRecorder = original
    losses = [r["loss"] for r in result.metrics if "loss" in r]
    out = {"step_times": timer.times, "losses": losses, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
           "tokens_seen": timer.tokens_seen}
    if "table" in profiled:
        out["profile"] = profiled["table"]
        out["profiled_steps"] = [5, 6]  # indices into step_times; the profiler's overhead stays out of tokens/s
    del result
    return out


def summarize(raw: dict, params: int) -> dict:
    skipped = set(raw.get("profiled_steps", []))
    timed = [i for i in range(len(raw["step_times"])) if i >= 3 and i not in skipped]
    seen = raw.get("tokens_seen") or []
    # tokens per step: the non-padding tokens the trainer counted (variable-length rows), else full rows
    per_step = [seen[i] - (seen[i - 1] if i else 0) for i in range(len(seen))] if seen and seen[-1] else None
    step = sum(raw["step_times"][i] for i in timed) / len(timed)
    tokens = sum(per_step[i] for i in timed) / len(timed) if per_step else MBS * SEQ
    tokens_per_s = tokens / step
    extra = {"profile": raw["profile"]} if "profile" in raw else {}
    return extra | {"tokens_per_s": round(tokens_per_s), "tokens_per_step": round(tokens), "step_s": round(step, 3), "peak_gib": round(raw["peak_gib"], 2),
            "mfu_6N": round(tokens_per_s * 6 * params / PEAK_TFLOPS, 3), "losses": [round(x, 4) for x in raw["losses"]]}


def finish(report: dict) -> dict:
    """Ratios against the plain HF + PEFT run of the same kind, and how far axo's loss curve is from it."""
    variants = report["variants"]
    for name, values in variants.items():
        baseline = variants.get(("hf_qlora" if "qlora" in name else "hf_lora") + ("_varlen" if "varlen" in name else ""))
        if baseline is None:
            continue
        values["vs_baseline"] = round(values["tokens_per_s"] / baseline["tokens_per_s"], 3)
        if name.startswith("axo") and "varlen" not in name:  # varlen rows are packed differently: no step pairs
            pairs = list(zip(values["losses"], baseline["losses"]))
            diffs = [abs(a - b) for a, b in pairs]
            values["loss_vs_baseline"] = {"steps": len(pairs), "max_abs": round(max(diffs), 4),
                                          "mean_abs": round(sum(diffs) / len(diffs), 4),
                                          "max_rel": round(max(d / abs(b) for d, (_, b) in zip(diffs, pairs)), 4)}
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arch", default="llama-3.1-8b", choices=sorted(ARCHS))
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--varlen-steps", type=int, default=20, help="steps for the *_varlen variants")
    parser.add_argument("--variants", default="hf_lora,hf_lora_liger,axo_lora,hf_qlora,hf_qlora_liger,axo_qlora,"
                        "hf_lora_varlen,axo_lora_varlen")
    parser.add_argument("--axo-extra", default="", help="YAML lines added to axo's config (the options under test)")
    parser.add_argument("--extra", action="append", default=[], metavar="VARIANT=LINES",
                        help="YAML lines for one axo variant only (e.g. axo_lora_plain='lora_mlp_kernel: false')")
    parser.add_argument("--profile", default="", help="axo variants (comma-separated) whose steps 6-7 are profiled")
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-speed"))
    args = parser.parse_args()
    import torch

    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    model_dir = args.work / args.arch
    params = write_model(args.arch, model_dir)
    data = args.work / "rows.jsonl"
    write_rows(data, MBS * args.steps + 8)
    report = {"device": torch.cuda.get_device_name(0), "arch": args.arch, "params": params, "steps": args.steps,
              "varlen_steps": args.varlen_steps, "torch": torch.__version__,
              "axo_extra": args.axo_extra, "variants": {}}
    extras = dict(item.split("=", 1) for item in args.extra)
    varlen_data = args.work / "varlen.jsonl"
    samples = write_varlen_samples(varlen_data, args.varlen_steps * 16 + 64)
    for variant in args.variants.split(","):
        qlora = "qlora" in variant
        varlen = "varlen" in variant
        steps = args.varlen_steps if varlen else args.steps
        if variant.startswith("hf_"):
            raw = hf_baseline(model_dir, data, steps, qlora, "_liger" in variant, args.work,
                              flattened_rows(samples, MBS * SEQ) if varlen else None)
        else:
            packing = "sample_packing: true\n" if varlen else ""
            raw = axo_run(model_dir, varlen_data if varlen else data, steps, qlora, args.work,
                          (args.axo_extra + packing + extras.get(variant, "")).replace("\\n", "\n"),
                          variant in args.profile.split(","))
        report["variants"][variant] = summarize(raw, params)
        (args.out / "speed.json").write_text(json.dumps(finish(report), indent=1))  # partial results survive a timeout
        print(variant, json.dumps({k: v for k, v in report["variants"][variant].items() if k not in ("losses", "profile")}),
              flush=True)
        if "profile" in report["variants"][variant]:
            print(json.dumps(report["variants"][variant]["profile"], indent=1), flush=True)
        gc.collect()
        torch.cuda.empty_cache()
    (args.out / "speed.json").write_text(json.dumps(finish(report), indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
