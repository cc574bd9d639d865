"""Unsloth's side of the speed harness (issue 20): one variant of `speed.py`, in its own process, Unsloth imported
before transformers, peft and trl (it patches them as they load).

    python benchmarks/unsloth_run.py --model DIR --data FILE --steps N --out result.json [--qlora]
        [--no-recompute] [--seq 2048] [--mbs 4] [--varlen [--varlen-mode padding_free|packing]]

The recipe is `speed.py`'s `hf_baseline`: LoRA r64 α128, dropout 0, no bias, on q/k/v/o/gate/up/down; bf16;
`adamw_torch_fused`, LR 2e-4 constant, no warmup, no weight decay, seed 42; a log every step; no saving.
Everything else is Unsloth's default: `FastLanguageModel.from_pretrained` (`--qlora`: its NF4 double-quant
load) and `get_peft_model` with `use_gradient_checkpointing="unsloth"` (its checkpointing, which offloads the
checkpointed activations to host memory; `--no-recompute`: False), its kernels and compiled layers.

- Fixed-length rows (`--data`: `input_ids` rows of `--seq` tokens): a plain transformers `Trainer`, micro-batches
  of `--mbs` rows, labels = input_ids, `default_data_collator` (as `hf_baseline`).
- `--varlen` (`--data`: real-length samples, `speed.write_varlen_samples`): TRL's `SFTTrainer`/`SFTConfig` as
  Unsloth patches them on import, with no collator of ours. `padding_free` (default): `padding_free=True`,
  Unsloth's padding-free path (what its automatic choice picks on an H200; unsloth/trainer.py resolves it):
  each step's samples are flattened into one row with restarting position_ids, and as many samples per step
  (per_device_train_batch_size) as make `--seq` × `--mbs` tokens on average. `packing`: `packing=True`, TRL's
  best-fit-decreasing packing into `--mbs` rows of `--seq` tokens, which Unsloth also runs padding-free.

Writes {"step_times", "losses", "peak_gib", "tokens_seen"} (the keys of speed.py's other runners; tokens_seen:
cumulative tokens per step for `--varlen`, counted from each training forward's input, else []) to `--out`,
and prints Unsloth's version and the resolved settings (a line `UNSLOTH_RUN_SETTINGS {json}`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # = speed.TARGETS
RECIPE = {"learning_rate": 2e-4, "lr_scheduler_type": "constant", "warmup_steps": 0, "weight_decay": 0.0,
          "optim": "adamw_torch_fused", "bf16": True, "gradient_accumulation_steps": 1, "logging_steps": 1,
          "save_strategy": "no", "seed": 42, "data_seed": 42, "disable_tqdm": True}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model folder (speed.py's random-init checkpoint)")
    parser.add_argument("--data", type=Path, required=True, help="pre-tokenized rows (jsonl of input_ids)")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    parser.add_argument("--qlora", action="store_true", help="4-bit NF4 base (Unsloth's load_in_4bit)")
    parser.add_argument("--no-recompute", action="store_true", help='use_gradient_checkpointing=False, not "unsloth"')
    parser.add_argument("--seq", type=int, default=2048, help="max_seq_length (and the row length)")
    parser.add_argument("--mbs", type=int, default=4, help="rows per step (varlen: token budget = seq x mbs)")
    parser.add_argument("--varlen", action="store_true", help="real-length samples through SFTTrainer, padding-free")
    parser.add_argument("--varlen-mode", choices=("padding_free", "packing"), default="padding_free")
    return parser.parse_args(argv)


def token_counter(model, seen: list[int]):
    """A callback recording the cumulative tokens the training forwards took at each step's end (a pre-hook on the
    model counts them; these batches carry no padding, so a batch's tokens are its input_ids' size)."""
    from transformers import TrainerCallback

    count = [0]

    def hook(module, args, kwargs):
        ids, mask = kwargs.get("input_ids", args[0] if args else None), kwargs.get("attention_mask")
        count[0] += int(mask.sum()) if mask is not None else (ids.numel() if ids is not None else 0)

    model.register_forward_pre_hook(hook, with_kwargs=True)

    class Callback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            count[0] = 0

        def on_step_end(self, args, state, control, **kwargs):
            seen.append(count[0])

    return Callback()


def plain_trainer(model, args: argparse.Namespace, callbacks: list):
    """Fixed-length rows through a plain transformers Trainer, as hf_baseline feeds them."""
    from datasets import load_dataset
    from transformers import Trainer, TrainingArguments, default_data_collator

    dataset = load_dataset("json", data_files=str(args.data), split="train").map(lambda r: {"labels": r["input_ids"]})
    config = TrainingArguments(output_dir=str(args.out.parent / f"{args.out.stem}-trainer"), report_to=[],
                               per_device_train_batch_size=args.mbs, max_steps=args.steps, **RECIPE)
    trainer = Trainer(model=model, args=config, train_dataset=dataset, data_collator=default_data_collator,
                      callbacks=callbacks)
    return trainer, {"rows_per_step": args.mbs, "tokens_per_step": args.seq * args.mbs}


def sft_trainer(model, tokenizer, args: argparse.Namespace, callbacks: list):
    """Real-length samples through Unsloth's SFTTrainer: padding-free (or packed) with the harness's token budget."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    samples = [json.loads(line)["input_ids"] for line in args.data.read_text().splitlines() if line.strip()]
    budget, mean = args.seq * args.mbs, sum(map(len, samples)) / len(samples)
    if args.varlen_mode == "padding_free":
        batch, mode = max(1, round(budget / mean)), {"padding_free": True}
    else:
        batch, mode = args.mbs, {"packing": True, "packing_strategy": "bfd"}
    config = SFTConfig(output_dir=str(args.out.parent / f"{args.out.stem}-trainer"), report_to="none",
                       per_device_train_batch_size=batch, max_steps=args.steps, max_length=args.seq, **mode, **RECIPE)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list([{"input_ids": s} for s in samples]),
                         processing_class=tokenizer, callbacks=callbacks)
    resolved = {"padding_free": getattr(trainer.args, "padding_free", None),
                "packing": getattr(trainer.args, "packing", None),
                "collator_padding_free": getattr(trainer.data_collator, "padding_free", None)}
    if not resolved["collator_padding_free"]:
        raise SystemExit(f"unsloth_run: Unsloth turned padding-free off ({resolved}); the variant would be padded")
    return trainer, resolved | {"samples_per_step": batch, "token_budget": budget, "mean_sample_tokens": round(mean),
                                "expected_tokens_per_step": round(batch * mean) if "padding_free" in mode else None}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("unsloth", "unsloth_zoo", "trl", "transformers", "peft", "torch", "bitsandbytes", "datasets",
                 "triton", "xformers", "flash_attn"):
        try:
            found[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            found[name] = None
    return found


def main() -> None:
    args = parse_args()
    for key in ("UNSLOTH_DISABLE_STATISTICS", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(key, "1")
    import unsloth  # first: it patches transformers, peft and trl as they import

    print(f"unsloth_run: Unsloth {unsloth.__version__} from {Path(unsloth.__file__).parent}", flush=True)
    import torch
    from speed_tools import Timer
    from unsloth import FastLanguageModel

    checkpointing = {} if not args.no_recompute else {"use_gradient_checkpointing": False}  # {}: "unsloth"
    model, tokenizer = FastLanguageModel.from_pretrained(model_name=str(args.model), max_seq_length=args.seq,
                                                         dtype=torch.bfloat16, load_in_4bit=args.qlora,
                                                         local_files_only=True, **checkpointing)
    model = FastLanguageModel.get_peft_model(model, r=64, lora_alpha=128, lora_dropout=0, bias="none",
                                             target_modules=TARGETS, random_state=42,
                                             use_gradient_checkpointing=False if args.no_recompute else "unsloth")
    timer, seen = Timer(), []
    callbacks = [timer.callback, token_counter(model, seen)]
    torch.cuda.reset_peak_memory_stats()
    trainer, resolved = (sft_trainer(model, tokenizer, args, callbacks) if args.varlen
                         else plain_trainer(model, args, callbacks))
    free, total = torch.cuda.mem_get_info()
    settings = {"versions": versions(), "device": torch.cuda.get_device_name(0),
                "free_gib_before_training": round(free / 2**30, 1), "total_gib": round(total / 2**30, 1),
                "trainer": type(trainer).__name__, "collator": type(trainer.data_collator).__name__,
                "qlora": args.qlora, "gradient_checkpointing": getattr(model, "_unsloth_gradient_checkpointing", None),
                "attn_implementation": getattr(model.config, "_attn_implementation", None), "max_seq_length": args.seq,
                "varlen_mode": args.varlen_mode if args.varlen else None, "steps": args.steps,
                "lora": {"r": 64, "alpha": 128, "dropout": 0, "targets": TARGETS}} | RECIPE | resolved
    print("UNSLOTH_RUN_SETTINGS " + json.dumps(settings, default=str), flush=True)
    trainer.train()
    if args.varlen and not (seen and seen[-1]):  # speed.py would fall back to full rows: refuse instead
        raise SystemExit("unsloth_run: no training forward was counted; tokens per step unknown")
    result = {"step_times": timer.times, "losses": timer.losses,
              "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "tokens_seen": seen if args.varlen else []}
    args.out.write_text(json.dumps(result))
    per_step = [b - a for a, b in zip([0, *seen], seen, strict=False)]
    print(f"unsloth_run: {len(timer.times)} steps, peak {result['peak_gib']:.2f} GiB, tokens per step {per_step}",
          flush=True)


if __name__ == "__main__":
    main()
