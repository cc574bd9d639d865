"""Speed harness (issue 8): axo's training path against HF Trainer + PEFT (with and without Liger), in one
process, on the same random-init model and the same fully packed rows.

    python benchmarks/speed.py --out DIR [--arch llama-3.1-8b] [--steps 14] [--variants hf_lora,axo_lora,...]

Each variant trains `--steps` steps of micro-batch 4 × 2048 tokens (LoRA r64 α128 on q/k/v/o/gate/up/down,
bf16, gradient checkpointing, SDPA, fused AdamW) and reports tokens/s over the steps after the first 3,
step time, peak memory, MFU and the loss of every step. Writes DIR/speed.json.
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
    "small": ("llama", dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=8, num_attention_heads=16,
                            num_key_value_heads=4, vocab_size=32000, max_position_embeddings=4096, tie_word_embeddings=False)),
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SEQ, MBS, PEAK_TFLOPS = 2048, 4, 989e12  # H100/H200 dense bf16 spec


def write_model(arch: str, folder: Path) -> int:
    """Random-init checkpoint (bf16 safetensors) + the tiny test tokenizer; returns the parameter count."""
    import torch
    import tiny_models
    from transformers import AutoConfig, AutoModelForCausalLM

    kind, shape = ARCHS[arch]
    if (folder / "config.json").exists():
        config = AutoConfig.from_pretrained(folder)
    else:
        tokenizer = tiny_models.build_tokenizer(folder)
        config = AutoConfig.for_model(kind, **shape, bos_token_id=tokenizer.bos_token_id,
                                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
        model.save_pretrained(folder, max_shard_size="5GB")
        del model
    with torch.device("meta"):
        return sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())


def write_rows(path: Path, rows: int) -> None:
    import random

    rng = random.Random(0)
    with path.open("w") as handle:
        for _ in range(rows):
            handle.write(json.dumps({"input_ids": [rng.randrange(10, 590) for _ in range(SEQ)]}) + "\n")


class Timer:
    """A TrainerCallback-compatible step timer (wall time between step ends, after synchronising)."""

    def __init__(self):
        from transformers import TrainerCallback

        outer = self
        self.times, self.losses = [], []

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                import torch

                torch.cuda.synchronize()
                outer._start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                import torch

                torch.cuda.synchronize()
                outer.times.append(time.perf_counter() - outer._start)

            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    outer.losses.append(logs["loss"])

        self.callback = Callback()


def hf_baseline(model_dir: Path, data: Path, steps: int, qlora: bool, liger: bool, work: Path) -> dict:
    """Plain HF Trainer + PEFT, as Axolotl-style stacks run it."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer, TrainingArguments, default_data_collator

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
    dataset = load_dataset("json", data_files=str(data), split="train").map(lambda r: {"labels": r["input_ids"]})
    timer = Timer()
    args = TrainingArguments(output_dir=str(work / "hf"), per_device_train_batch_size=MBS, max_steps=steps,
                             learning_rate=2e-4, bf16=True, gradient_checkpointing=True,
                             gradient_checkpointing_kwargs={"use_reentrant": False}, optim="adamw_torch_fused",
                             logging_steps=1, save_strategy="no", report_to=[], seed=42, data_seed=42,
                             disable_tqdm=True, lr_scheduler_type="constant", warmup_steps=0)
    torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=default_data_collator,
                      callbacks=[timer.callback])
    trainer.train()
    result = {"step_times": timer.times, "losses": timer.losses, "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
    del trainer, model
    return result


def axo_run(model_dir: Path, data: Path, steps: int, qlora: bool, work: Path, extra: str) -> dict:
    """axo's real training path from a YAML config, with `extra` keys (the speed options under test)."""
    import torch

    from axo.config.load import load_config
    from axo.train.run import train

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

    class Timed(original):  # add the step timer to axo's own callbacks for this measurement only
        def on_step_begin(self, *a, **k):
            timer.callback.on_step_begin(*a, **k)

        def on_step_end(self, *a, **k):
            timer.callback.on_step_end(*a, **k)

    run_module.RunRecorder = Timed
    try:
        result = train(load_config(work / "axo.yml").require(), progress=False)
    finally:
        run_module.RunRecorder = original
    losses = [r["loss"] for r in result.metrics if "loss" in r]
    out = {"step_times": timer.times, "losses": losses, "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
    del result
    return out


def summarize(raw: dict, params: int) -> dict:
    times = raw["step_times"][3:] or raw["step_times"]
    step = sum(times) / len(times)
    tokens_per_s = MBS * SEQ / step
    return {"tokens_per_s": round(tokens_per_s), "step_s": round(step, 3), "peak_gib": round(raw["peak_gib"], 2),
            "mfu_6N": round(tokens_per_s * 6 * params / PEAK_TFLOPS, 3), "losses": [round(x, 4) for x in raw["losses"]]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arch", default="llama-3.1-8b", choices=sorted(ARCHS))
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--variants", default="hf_lora,hf_lora_liger,axo_lora")
    parser.add_argument("--axo-extra", default="", help="YAML lines added to axo's config (the options under test)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-speed"))
    args = parser.parse_args()
    import torch

    args.work.mkdir(parents=True, exist_ok=True)
    model_dir = args.work / args.arch
    params = write_model(args.arch, model_dir)
    data = args.work / "rows.jsonl"
    write_rows(data, MBS * args.steps + 8)
    report = {"device": torch.cuda.get_device_name(0), "arch": args.arch, "params": params, "steps": args.steps,
              "axo_extra": args.axo_extra, "variants": {}}
    for variant in args.variants.split(","):
        qlora = "qlora" in variant
        if variant.startswith("hf_"):
            raw = hf_baseline(model_dir, data, args.steps, qlora, variant.endswith("_liger"), args.work)
        else:
            raw = axo_run(model_dir, data, args.steps, qlora, args.work, args.axo_extra.replace("\\n", "\n"))
        report["variants"][variant] = summarize(raw, params)
        print(variant, json.dumps({k: v for k, v in report["variants"][variant].items() if k != "losses"}), flush=True)
        gc.collect()
        torch.cuda.empty_cache()
    baseline = report["variants"].get("hf_qlora" if "hf_qlora" in report["variants"] else "hf_lora")
    if baseline:
        for name, values in report["variants"].items():
            values["vs_baseline"] = round(values["tokens_per_s"] / baseline["tokens_per_s"], 3)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
