"""The longest trainable sequence under a GPU memory cap (issue 20): 8B QLoRA, micro-batch 1, axo against Unsloth.

    python benchmarks/longest_sequence.py --out DIR [--caps 24,80] [--frameworks axo,unsloth]
        [--lengths 8192,16384,32768,49152,65536,98304,131072] [--cap-lengths 80=65536,131072,196608,262144]
        [--work /tmp/axo-speed] [--steps 2] [--child-timeout 900] [--fresh-bisect|--no-bisect] [--alloc-conf CONF]
        [--ballast] [--unsloth-site DIR]

Model: Llama-3.1-8B shapes with random weights (`speed.write_model`, shared with speed.py under --work). QLoRA:
bitsandbytes NF4 with double quantization, bf16 compute, LoRA r64 α128 dropout 0 on q/k/v/o/gate/up/down, fused
AdamW, LR 2e-4 constant, micro-batch 1, random-token rows of T tokens (ids 10..589), labels = input_ids.

For each cap and each framework, ONE child process (fresh CUDA state; Unsloth imported first in its own process)
holds torch to the cap the same way for both — `torch.cuda.set_per_process_memory_fraction(cap GiB / device
memory)` before anything is loaded (the caching allocator then refuses to reserve more) — loads the model once and
tries the lengths in ascending order: a trial trains `--steps` optimizer steps on rows of T tokens (2 steps: the
second runs with the AdamW state allocated) and succeeds when they finish without running out of CUDA memory. The
search stops at the first failure, then tries one point halfway between the last success and the first failure
(a multiple of 1024). `--fresh-bisect` runs that point in a new process instead (clean allocator state, one more
model load). Per trial: T, ok / oom / error, peak GiB (`max_memory_allocated` and `max_memory_reserved`, reset
before each trial), the pinned host memory's peak (`torch.cuda.host_memory_stats`: offloaded activations), the
memory already held when it started (a leak check), seconds per step, and for axo the planner's choice (provenance
`memory_plan`: choice, kept_layers, offload, predicted_peak_gib, predicted_host_gib). The fraction does
not change what `torch.cuda.mem_get_info` reports (the whole H200 free): `--ballast` also takes the memory beyond
the cap with a driver allocation, so code that sizes itself from free memory sees a card of the cap's size too
(Unsloth enables double-buffered offloading when more than 512 MiB is free; axo's planner reads the cap).

- axo: its real path, `axo.train.run.train(cfg, base_model=base, tokenizer=..., progress=False)` from a YAML
  config per trial with `gradient_checkpointing: true` (use_reentrant unset: axo's planner chooses how many layers
  to recompute and whether to offload) and `gpu_memory_limit: <cap>` (the planner plans within the cap; it sets
  the same memory fraction itself). The base is loaded once with `axo.models.loader.load_model` (4-bit
  quantization once). train() wraps it with PEFT's `get_peft_model`, which injects the LoRA layers INTO the base
  in place; after every trial they are taken out again: the PeftModel train() built is caught by wrapping
  `axo.train.run.model_for_training` (so it is at hand after an out-of-memory error too, when train() returns
  nothing) and `PeftModel.unload()` puts the original base layers back (peft's own code: each LoRA layer is
  replaced by its `base_layer`; no merge); any tuner layer left is replaced by its base layer directly, and
  `peft_config` and `use_cache` on the base are reset. The planner's record is caught the same way by wrapping
  `axo.train.run.memory_plan` (it exists for failed trials too). liger's kernels patch the base itself, the same
  way each time. When axo runs out of memory under a plan that is not its most frugal (full recompute with
  offloading), the failure is axo's plan, not the length: the trial is marked `continue` and longer lengths (for
  which the planner picks a leaner plan) are still tried.
- Unsloth: `FastLanguageModel.from_pretrained(model_name=DIR, max_seq_length=<longest tried>, dtype=bfloat16,
  load_in_4bit=True, local_files_only=True)` and `get_peft_model(r=64, lora_alpha=128, lora_dropout=0,
  bias="none", target_modules=[...], use_gradient_checkpointing="unsloth")` once; per trial a plain transformers
  Trainer as `unsloth_run.plain_trainer` builds it (same recipe, no saving). Unsloth's own defaults stay, among
  them `PYTORCH_ALLOC_CONF=expandable_segments:True`, which it sets on import; axo's child sets what `axo train`
  sets (`axo.train.allocator.choose_allocator`: the same expandable segments since 2026-12-04; the first 24 GiB run
  of that day had torch's default allocator in axo's child) — `--alloc-conf` sets one for both; the child's env
  record says what each ran with.

Writes DIR/longest_sequence.json — {framework: {cap: {"trials": [...], "longest_ok": T, "bounded_by": first
failing T or null, "extrapolated": ..., "env": ..., ...}}} — while each child runs (within ~15 s of each trial)
and after it; a child past `--child-timeout` is killed (its process group) and recorded as `timed_out` with the
length it was running. Each child's output goes to DIR/longest-<framework>-<cap>.log. Ends with the table
"cap | axo longest | Unsloth longest | axo/Unsloth". `T+` in it means every length tried up to T trained (the real
limit is higher); `extrapolated` is a rough linear fit of the last two successful peaks up to the cap.

On the H200 (device tool: carry `.whl-unsloth`, built by `bash ../shared/device/make-unsloth-site.sh`; each call
at most 600 s, so it goes through the background runner):

    # call 1 (timeout_s 600; returns after ~9.5 min, the job goes on)
    mkdir -p /tmp/u && tar -xJf .whl-unsloth/site.tar.xz -C /tmp/u && export PYTHONPATH=/tmp/u:$PWD/src:$PWD/tests \
      UNSLOTH_DISABLE_STATISTICS=1 HF_HUB_OFFLINE=1 && bash benchmarks/device_background.sh start \
      python3 benchmarks/longest_sequence.py --out /tmp/bench --caps 24 --steps 2
    # next call(s), while the machine is warm, until it prints FINISHED
    bash benchmarks/device_background.sh wait

The 24 GiB cap takes ~12 min (writing the random 8B checkpoint ~1 min on a fresh machine, ~5 min per framework).
At 80 GiB the default lengths all train for both (a tie, not a limit): the limits lie between 262,144 and ~400k
tokens, where one step takes 4–7 minutes, so that cap runs as `benchmarks/longest_sequence_80gib.sh` (one step
per length, chosen lengths per framework: ~19 min; docs/BENCHMARKS.md). Positions past max_position_embeddings are
fine for transformers' RoPE; Unsloth scales its RoPE to max_seq_length.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ARCH = "llama-3.1-8b"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # = speed.TARGETS
DEFAULT_LENGTHS = "8192,16384,32768,49152,65536,98304,131072"
STEP = 1024  # bisection points are multiples of this
FRAMEWORKS = ("axo", "unsloth")
REPORT = "longest_sequence.json"


# ---------------------------------------------------------------------------------------------- the search (pure)

def bisect_point(low: int, high: int, step: int = STEP) -> int | None:
    """The multiple of `step` nearest the middle of (low, high), if one lies strictly between them."""
    middle = round((low + high) / 2 / step) * step
    if low < middle < high:
        return middle
    below = (low + high) // 2 // step * step  # rounding went to an end: the multiple just below the middle
    return below if low < below < high else None


def _outcome(length: int, result: bool | dict) -> dict:
    if isinstance(result, bool):
        return {"length": length, "status": "ok" if result else "oom"}
    return {"length": length, **result}


def stopping_failure(trials: list[dict]) -> dict | None:
    """The first failed trial that bounds the length (not marked `continue`), outside the bisection point."""
    return next((t for t in trials if t["status"] != "ok" and not t.get("continue") and not t.get("bisection")),
                None)


def longest_ok(trials: list[dict]) -> int | None:
    return max((t["length"] for t in trials if t["status"] == "ok"), default=None)


def next_bisection(trials: list[dict], step: int = STEP) -> int | None:
    """The point halfway between the stopping out-of-memory failure and the longest success below it."""
    stop = stopping_failure(trials)
    if stop is None or stop["status"] != "oom":
        return None
    below = [t["length"] for t in trials if t["status"] == "ok" and t["length"] < stop["length"]]
    return bisect_point(max(below, default=0), stop["length"], step)


def search_lengths(lengths: list[int], trial: Callable[[int], bool | dict], *, bisect: bool = True,
                   on_trial: Callable[[list[dict]], None] | None = None, step: int = STEP
                   ) -> tuple[list[dict], int | None]:
    """Try `lengths` in ascending order with `trial(T)` (True/False, or a dict with "status": "ok" / "oom" /
    "error"..., and "continue": True for a failure that does not bound the length) until the first failure,
    then (`bisect`) once halfway between the last success and that failure when it ran out of memory.
    Returns (the trials in the order run, the longest length that trained)."""
    trials: list[dict] = []
    for length in sorted(set(lengths)):
        trials.append(_outcome(length, trial(length)))
        if on_trial:
            on_trial(trials)
        if trials[-1]["status"] != "ok" and not trials[-1].get("continue"):
            break
    middle = next_bisection(trials, step) if bisect else None
    if middle is not None:
        trials.append(_outcome(middle, trial(middle)) | {"bisection": True})
        if on_trial:
            on_trial(trials)
    return trials, longest_ok(trials)


def extrapolate(trials: list[dict], cap_gib: float) -> int | None:
    """A rough length at which the peak reaches the cap: a line through the peaks of the two longest successes
    run under the same plan (axo's planner changes plans with T; the peak is ~linear in T under one plan)."""
    ok = sorted((t for t in trials if t["status"] == "ok" and t.get("peak_gib")), key=lambda t: t["length"])
    if len(ok) < 2:
        return None
    a, b = ok[-2], ok[-1]

    def plan(t: dict) -> tuple:
        record = t.get("plan") or {}
        return record.get("kept_layers"), record.get("offload")

    if plan(a) != plan(b) or b["peak_gib"] <= a["peak_gib"]:
        return None
    slope = (b["peak_gib"] - a["peak_gib"]) / (b["length"] - a["length"])
    return int((b["length"] + (cap_gib - b["peak_gib"]) / slope) // STEP * STEP)


def summarize(trials: list[dict], cap_gib: float) -> dict:
    """The longest length that trained, the shortest failure above it that bounds it (the bisection point
    included; None: every length tried trained), and the rough extrapolation."""
    longest = longest_ok(trials)
    bounds = [t for t in trials if t["status"] != "ok" and not t.get("continue")
              and (longest is None or t["length"] > longest)]
    stop = min(bounds, key=lambda t: t["length"]) if bounds else None
    return {"longest_ok": longest, "bounded_by": stop["length"] if stop else None,
            "bounded_status": stop["status"] if stop else None, "extrapolated": extrapolate(trials, cap_gib)}


def notes(entry: dict) -> list[str]:
    """What a reader of the table must know about an entry: timeouts, errors, axo plans that ran out of memory,
    memory held over from earlier trials, adapters that needed help to come out."""
    found = []
    for child in entry.get("children", []):
        if child.get("timed_out"):
            found.append(f"timed out at T={child.get('running_at_timeout')}")
        elif child.get("running_when_it_ended") is not None:
            found.append(f"child died at T={child['running_when_it_ended']} (exit {child.get('exit_code')})")
        elif child.get("error"):
            found.append("child failed: " + child["error"].strip().splitlines()[-1][:120])
    trials = entry.get("trials", [])
    found += [f"error at T={t['length']}" for t in trials if t["status"] not in ("ok", "oom")]
    found += [f"OOM at T={t['length']} under its plan ({(t.get('plan') or {}).get('choice')})"
              for t in trials if t.get("continue")]
    held = [t["start_allocated_gib"] for t in trials if t.get("start_allocated_gib") is not None]
    if held and max(held) - held[0] > 0.5:
        found.append(f"memory held before a trial grew {held[0]:.1f} -> {max(held):.1f} GiB")
    found += [f"T={t['length']}: {'; '.join(t['cleanup'])}" for t in trials if t.get("cleanup")]
    return found


def parse_lengths(text: str) -> list[int]:
    return sorted({int(float(x)) for x in text.split(",") if x.strip()})


def cap_key(cap: float) -> str:
    return f"{cap:g}"


# ---------------------------------------------------------------------------------------------- configs and rows

def rows_path(work: Path, length: int, steps: int) -> Path:
    """Random pre-tokenized rows of `length` tokens, enough for `steps` steps of micro-batch 1 (written once)."""
    folder = work / "longest-rows"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rows-{length}-x{steps + 2}.jsonl"
    if not path.exists():
        rng = random.Random(0)
        partial = path.with_suffix(".tmp")
        with partial.open("w") as handle:
            for _ in range(steps + 2):
                handle.write(json.dumps({"input_ids": [rng.randrange(10, 590) for _ in range(length)]}) + "\n")
        partial.replace(path)
    return path


def config_text(model_dir: Path, rows: Path, length: int, steps: int, cap: float, output_dir: Path,
                prepared: Path) -> str:
    """axo's config for one trial: the user's QLoRA config as written, plus the memory cap."""
    return (f"base_model: {model_dir}\nadapter: qlora\nload_in_4bit: true\nbnb_4bit_quant_type: nf4\n"
            "bnb_4bit_use_double_quant: true\nlora_r: 64\nlora_alpha: 128\nlora_dropout: 0.0\n"
            f"lora_target_modules: {TARGETS}\ndatasets:\n  - path: {rows}\nsequence_len: {length}\n"
            f"micro_batch_size: 1\ngradient_accumulation_steps: 1\nmax_steps: {steps}\nbf16: true\n"
            f"gradient_checkpointing: true\ngpu_memory_limit: {cap_key(cap)}\n"
            "learning_rate: 2e-4\noptimizer: adamw_torch_fused\nlr_scheduler: constant\nwarmup_steps: 0\n"
            "logging_steps: 1\nsave_strategy: 'no'\nseed: 42\nshuffle_merged_datasets: false\n"
            f"output_dir: {output_dir}\ndataset_prepared_path: {prepared}\n")


# ---------------------------------------------------------------------------------------------- the child process

def failure_kind(exc: BaseException) -> str:
    """The failure's kind: "oom" when the GPU ran out of memory (torch's OutOfMemoryError, axo's ConfigError that
    reports it, a CUDA or cuBLAS allocation failure), else "error"."""
    text = f"{type(exc).__name__}: {exc}"
    markers = ("out of memory", "ran out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "cudaErrorMemoryAllocation")
    if type(exc).__name__ == "OutOfMemoryError" or any(m.lower() in text.lower() for m in markers):
        return "oom"
    return "error"


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[-1500:]}"


class ChildState:
    """The child's result file, rewritten atomically after each change (the parent reads it while it runs)."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict = {"trials": [], "running": None, "env": {}, "done": False}
        self.save()

    def save(self) -> None:
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.data, indent=1, default=str))
        partial.replace(self.path)


def _gib(value: float) -> float:
    return round(value / 2**30, 3)


_BALLAST: list = []  # the driver allocation of --ballast, held for the life of the child


def hold_to_cap(torch, cap: float, ballast: bool = False) -> dict:
    """The hard limit, the same for both frameworks: the caching allocator may reserve at most `cap` GiB.
    `ballast`: also take all but cap + 256 MiB of the GPU's free memory with a CUDA driver allocation (outside
    torch's allocator), so that free-memory queries (`torch.cuda.mem_get_info`; Unsloth's double-buffering switch
    reads it) see the cap as a real card of that size would; a failure is recorded, not raised."""
    total = torch.cuda.get_device_properties(0).total_memory
    fraction = min(1.0, cap * 2**30 / total)
    torch.cuda.set_per_process_memory_fraction(fraction, 0)
    record = {"device": torch.cuda.get_device_name(0), "total_gib": _gib(total), "cap_gib": cap,
              "memory_fraction": round(fraction, 5), "torch": torch.__version__,
              "alloc_conf": {k: os.environ.get(k) for k in ("PYTORCH_ALLOC_CONF", "PYTORCH_CUDA_ALLOC_CONF")}}
    if ballast:
        try:
            import ctypes

            torch.zeros(1, device="cuda")  # the primary context exists and is current on this thread
            size = torch.cuda.mem_get_info(0)[0] - int(cap * 2**30) - (256 << 20)
            if size > 0:
                pointer = ctypes.c_uint64()
                code = ctypes.CDLL("libcuda.so.1").cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(size))
                record["ballast_gib"] = _gib(size) if code == 0 else f"cuMemAlloc_v2 returned {code}"
                if code == 0:
                    _BALLAST.append(pointer)
            record["free_gib_after_ballast"] = _gib(torch.cuda.mem_get_info(0)[0])
        except Exception as exc:  # noqa: BLE001 — the cap itself (the fraction) holds without it
            record["ballast_error"] = _error_text(exc)
    return record


def measured(torch, state: ChildState, label: str, run: Callable[[int], dict]) -> Callable[[int], dict]:
    """`run(T)` with the memory bookkeeping around it: the allocator emptied and its peaks reset first, the
    memory already held recorded (a leak check: it should stay at the model's size), the peaks after."""

    def trial(length: int) -> dict:
        state.data["running"] = length
        state.save()
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        if hasattr(torch.cuda, "reset_peak_host_memory_stats"):
            torch.cuda.reset_peak_host_memory_stats()
        start = {"start_allocated_gib": _gib(torch.cuda.memory_allocated()),
                 "start_reserved_gib": _gib(torch.cuda.memory_reserved())}
        began = time.perf_counter()
        print(f"{label}: T={length} ...", flush=True)
        record = run(length)
        record.update(start, seconds=round(time.perf_counter() - began, 1),
                      peak_gib=_gib(torch.cuda.max_memory_allocated()),
                      reserved_peak_gib=_gib(torch.cuda.max_memory_reserved()))
        if hasattr(torch.cuda, "host_memory_stats"):  # pinned host blocks (offloading), power-of-two rounded
            record["host_pinned_peak_gib"] = _gib(torch.cuda.host_memory_stats().get("allocated_bytes.peak", 0))
        steps = record.get("step_s") or []
        if record["status"] == "ok" and steps:
            record["tokens_per_s"] = round(length / steps[-1])
        state.data["running"] = None
        gc.collect()
        torch.cuda.empty_cache()
        if hasattr(torch._C, "_host_emptyCache"):
            torch._C._host_emptyCache()  # pinned host blocks cached by offloading
        shown = {k: v for k, v in record.items() if k not in ("error", "losses")}
        print(f"{label}: T={length} {json.dumps(shown)}" + (f"\n  {record['error'][-400:]}" if "error" in record
                                                             else ""), flush=True)
        return record

    return trial


def _frugal(plan: dict | None) -> bool:
    """Whether axo's plan was its leanest: full recompute with the inputs offloaded (or there was no plan)."""
    return plan is None or (bool(plan.get("offload")) and (plan.get("kept_layers") or 0) <= 1)


def strip_adapters(base, peft_model) -> list[str]:
    """Take the LoRA layers train() injected back out of `base`; returns notes on anything unusual."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    notes = []
    if peft_model is not None and hasattr(peft_model, "unload"):
        try:
            peft_model.unload()  # in place on the base: every LoRA layer replaced by its base_layer, no merge
        except Exception as exc:  # noqa: BLE001 — fall back to replacing the layers directly, below
            notes.append(f"peft unload failed: {_error_text(exc)[:300]}")
    else:
        notes.append("no PeftModel caught")
    left = [(name, module) for name, module in base.named_modules() if isinstance(module, BaseTunerLayer) and name]
    for name, module in left:
        parent, _, child = name.rpartition(".")
        setattr(base.get_submodule(parent) if parent else base, child, module.get_base_layer())
    if left:
        notes.append(f"{len(left)} tuner layers replaced directly")
    if hasattr(base, "peft_config"):
        try:
            del base.peft_config
        except AttributeError:
            pass
    return notes


def axo_child(args: argparse.Namespace, state: ChildState, lengths: list[int]) -> None:
    import shutil

    import torch

    state.data["env"] = hold_to_cap(torch, args.cap, args.ballast)
    from unsloth_run import versions

    from axo.config.load import load_config
    from axo.models.loader import load_model
    from axo.models.tokenizer import load_tokenizer
    from axo.train import run as run_module
    from axo.train.recompute import plan_record

    state.data["env"]["versions"] = versions()
    runs = args.work / "longest-runs"
    runs.mkdir(parents=True, exist_ok=True)
    key = cap_key(args.cap)

    def write_config(length: int) -> tuple[Path, Path]:
        output_dir = runs / f"axo-{key}-{length}"
        shutil.rmtree(output_dir, ignore_errors=True)
        path = runs / f"axo-{key}-{length}.yml"
        path.write_text(config_text(args.model, rows_path(args.work, length, args.steps), length, args.steps,
                                    args.cap, output_dir, args.work / "longest-prepared" / str(length)))
        return path, output_dir

    began = time.perf_counter()
    first = load_config(write_config(lengths[0])[0]).require()
    tokenizer = load_tokenizer(first)
    base, _ = load_model(first, tokenizer)
    generation = getattr(base, "generation_config", None)
    clean_cache_flags = (base.config.use_cache, getattr(generation, "use_cache", None))
    state.data["env"].update(load_s=round(time.perf_counter() - began, 1),
                             allocated_after_load_gib=_gib(torch.cuda.memory_allocated()))
    state.save()

    caught: dict = {}
    setup, plan_of = run_module.model_for_training, run_module.memory_plan

    def recording_setup(*a, **k):
        model, resized = setup(*a, **k)
        caught["model"] = model  # the PeftModel, also reachable after an out-of-memory error
        return model, resized

    def recording_plan(*a, **k):
        plan = plan_of(*a, **k)
        caught["plan"] = plan_record(plan, None)
        return plan

    run_module.model_for_training, run_module.memory_plan = recording_setup, recording_plan

    def run(length: int) -> dict:
        caught.clear()
        record: dict = {}
        path, output_dir = write_config(length)
        try:
            result = run_module.train(load_config(path).require(), progress=False, tokenizer=tokenizer,
                                      base_model=base)
            logged = [r for r in result.metrics if "loss" in r and "elapsed_s" in r]
            elapsed = [r["elapsed_s"] for r in logged]
            record.update(status="ok", step_s=[round(b - a, 3) for a, b in zip([0.0, *elapsed], elapsed, strict=False)],
                          losses=[round(r["loss"], 4) for r in logged])
            del result
        except Exception as exc:  # noqa: BLE001 — an OOM is the answer; anything else ends the search
            record.update(status=failure_kind(exc), error=_error_text(exc))
        plan = caught.get("plan")
        if plan:
            record["plan"] = {k: plan.get(k) for k in ("choice", "kept_layers", "offload", "predicted_peak_gib",
                                                        "predicted_host_gib", "budget_gib")}
        if record["status"] == "oom" and not _frugal(plan):
            record["continue"] = True  # the plan, not the length, ran out: a longer T gets a leaner plan
        notes = strip_adapters(base, caught.pop("model", None))
        if notes:
            record["cleanup"] = notes
        base.config.use_cache = clean_cache_flags[0]  # train() turns the cache on for the saved model
        if generation is not None and clean_cache_flags[1] is not None:
            generation.use_cache = clean_cache_flags[1]
        for weights in output_dir.glob("*.safetensors"):
            weights.unlink()  # the adapter train() saved: ~0.3–0.7 GB a trial
        caught.clear()
        return record

    search(args, state, torch, f"axo cap {key}", run, lengths)


def search(args: argparse.Namespace, state: ChildState, torch, label: str, run: Callable[[int], dict],
           lengths: list[int]) -> None:
    """A child's search over `lengths` with `run` as the trial, its trials saved as each ends."""
    def on_trial(trials: list[dict]) -> None:
        state.data["trials"] = list(trials)
        state.save()

    trials, longest = search_lengths(lengths, measured(torch, state, label, run), bisect=not args.no_bisect,
                                     on_trial=on_trial)
    state.data.update(trials=trials, longest_ok=longest)


def unsloth_child(args: argparse.Namespace, state: ChildState, lengths: list[int]) -> None:
    import unsloth  # first: it patches transformers, peft and trl as they import (and sets its allocator config)

    print(f"Unsloth {unsloth.__version__} from {Path(unsloth.__file__).parent}", flush=True)
    import torch

    state.data["env"] = hold_to_cap(torch, args.cap, args.ballast)
    import unsloth_run
    from speed_tools import Timer
    from unsloth import FastLanguageModel

    state.data["env"].update(versions=unsloth_run.versions(), unsloth_path=str(Path(unsloth.__file__).parent))
    runs = args.work / "longest-runs"
    runs.mkdir(parents=True, exist_ok=True)
    key = cap_key(args.cap)
    began = time.perf_counter()
    model, _ = FastLanguageModel.from_pretrained(model_name=str(args.model), max_seq_length=max(lengths),
                                                 dtype=torch.bfloat16, load_in_4bit=True, local_files_only=True)
    model = FastLanguageModel.get_peft_model(model, r=64, lora_alpha=128, lora_dropout=0, bias="none",
                                             target_modules=TARGETS, random_state=42,
                                             use_gradient_checkpointing="unsloth")
    state.data["env"].update(load_s=round(time.perf_counter() - began, 1), max_seq_length=max(lengths),
                             allocated_after_load_gib=_gib(torch.cuda.memory_allocated()),
                             gradient_checkpointing=str(getattr(model, "_unsloth_gradient_checkpointing", None)))
    state.save()

    def run(length: int) -> dict:
        rows = rows_path(args.work, length, args.steps)
        options = argparse.Namespace(data=rows, out=runs / f"unsloth-{key}-{length}.json", mbs=1,
                                     steps=args.steps, seq=length)
        timer, trainer, record = Timer(), None, {}
        try:
            trainer, _ = unsloth_run.plain_trainer(model, options, [timer.callback])
            trainer.train()
            record["status"] = "ok"
        except Exception as exc:  # noqa: BLE001 — an OOM is the answer; anything else ends the search
            record.update(status=failure_kind(exc), error=_error_text(exc))
        del trainer
        for parameter in model.parameters():
            parameter.grad = None  # a step cut short leaves the LoRA gradients allocated
        record.update(step_s=[round(t, 3) for t in timer.times], losses=[round(x, 4) for x in timer.losses])
        return record

    search(args, state, torch, f"unsloth cap {key}", run, lengths)


def child_main(args: argparse.Namespace) -> int:
    for key in ("UNSLOTH_DISABLE_STATISTICS", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(key, "1")
    sys.path.insert(0, str(HERE))  # unsloth_run, speed_tools
    if args.child == "axo":  # what `axo train` does before torch loads (train/allocator.py); Unsloth sets its own
        from axo.train.allocator import choose_allocator

        choose_allocator()
    state = ChildState(args.result)
    lengths = parse_lengths(args.lengths)
    try:
        (unsloth_child if args.child == "unsloth" else axo_child)(args, state, lengths)
    except BaseException as exc:  # noqa: BLE001 — loading failed, or the search itself: say so in the result
        state.data["error"] = traceback.format_exc()[-4000:]
        state.save()
        print(f"{args.child} child failed: {_error_text(exc)}", flush=True)
        return 1
    state.data["done"] = True
    state.save()
    return 0


# ---------------------------------------------------------------------------------------------- the parent

def run_child(args: argparse.Namespace, framework: str, cap: float, lengths: list[int], *, bisect: bool,
              tag: str, on_progress: Callable[[dict], None]) -> dict:
    """One child process; its result file merged as it runs (`on_progress`), then its outcome."""
    key = cap_key(cap)
    result = args.work / f"longest-{framework}-{key}{tag}.json"
    result.unlink(missing_ok=True)
    log = args.out / f"longest-{framework}-{key}{tag}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", framework, "--cap", str(cap),
               "--lengths", ",".join(map(str, lengths)), "--work", str(args.work), "--steps", str(args.steps),
               "--model", str(args.work / ARCH), "--result", str(result)] + ["--no-bisect"] * (not bisect)
    command += ["--ballast"] * args.ballast
    env = dict(os.environ, UNSLOTH_DISABLE_STATISTICS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    if args.alloc_conf:
        env["PYTORCH_ALLOC_CONF"] = env["PYTORCH_CUDA_ALLOC_CONF"] = args.alloc_conf
    if framework == "unsloth" and args.unsloth_site:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(args.unsloth_site).resolve()),
                                                          env.get("PYTHONPATH")]))
    cwd = args.work / f"longest-cwd-{framework}"  # Unsloth writes its compile cache into the working folder
    cwd.mkdir(parents=True, exist_ok=True)

    def read() -> dict:
        try:
            return json.loads(result.read_text())
        except (OSError, ValueError):
            return {}

    began, timed_out = time.monotonic(), False
    with log.open("w") as handle:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its own process group: a timeout kills compile workers too
        while True:
            try:
                process.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                on_progress(read())
                if time.monotonic() - began > args.child_timeout:
                    timed_out = True
                    try:
                        os.killpg(process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    process.wait()
                    break
    data = read()
    outcome = {"data": data, "exit_code": process.returncode, "timed_out": timed_out,
               "wall_s": round(time.monotonic() - began, 1), "log": str(log)}
    if process.returncode and not timed_out:
        lines = log.read_text(errors="replace").splitlines()
        outcome["log_tail"] = "\n".join(lines[-40:])
    return outcome


def entry_for(outcomes: list[dict], cap: float) -> dict:
    """The report's entry for one framework and cap from its child runs (the search, and a fresh bisection)."""
    trials: list[dict] = []
    entry: dict = {"children": []}
    for index, outcome in enumerate(outcomes):
        data = outcome.get("data") or {}
        found = [dict(t, fresh_process=True, bisection=True) if index else t for t in data.get("trials", [])]
        trials += found
        child = {k: outcome[k] for k in ("exit_code", "timed_out", "wall_s", "log", "log_tail") if k in outcome}
        if data.get("running") is not None:
            child["running_when_it_ended" if not outcome.get("timed_out") else "running_at_timeout"] = data["running"]
        if data.get("error"):
            child["error"] = data["error"]
        entry["children"].append(child)
        if data.get("env") and not entry.get("env"):
            entry["env"] = data["env"]
    entry.update(trials=trials, **summarize(trials, cap))
    return entry


def show(length: int | None, bounded: bool) -> str:
    if length is None:
        return "none"
    return f"{length}" + ("" if bounded else "+")


def table(report: dict) -> str:
    """The markdown summary: per cap, each framework's longest length, their ratio, the peaks at those lengths,
    axo's plan there, the rough extrapolations, and what a reader must know (notes)."""
    caps = sorted({c for fw in report.values() for c in fw}, key=float)
    lines = [("| cap GiB | axo longest | Unsloth longest | axo/Unsloth | axo peak GiB | Unsloth peak GiB "
              "| axo plan at longest | extrapolated axo / Unsloth | notes |"),
             "|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for cap in caps:
        axo, uns = report.get("axo", {}).get(cap, {}), report.get("unsloth", {}).get(cap, {})

        def at_longest(entry: dict) -> dict:
            best = entry.get("longest_ok")
            found = [t for t in entry.get("trials", []) if t["status"] == "ok" and t["length"] == best]
            return found[-1] if found else {}

        def longest(entry: dict) -> str:
            if not entry:
                return "–"
            text = show(entry.get("longest_ok"), entry.get("bounded_by") is not None)
            status = entry.get("bounded_status")
            return text + (f" ({status} at {entry['bounded_by']})" if status not in (None, "oom") else "")

        def peak(entry: dict) -> str:
            value = at_longest(entry).get("peak_gib")
            return f"{value:.1f}" if value is not None else "–"

        a, u = axo.get("longest_ok"), uns.get("longest_ok")
        ratio = f"{a / u:.2f}" if a and u else "–"
        if a and u and axo.get("bounded_by") is None and uns.get("bounded_by") is None:
            ratio += " (neither bounded)"
        plan = (at_longest(axo).get("plan") or {}).get("choice", "")
        remarks = [f"axo: {n}" for n in notes(axo)] + [f"Unsloth: {n}" for n in notes(uns)]
        lines.append(f"| {cap} | {longest(axo)} | {longest(uns)} | {ratio} | {peak(axo)} | {peak(uns)} | {plan} "
                     f"| {axo.get('extrapolated') or '–'} / {uns.get('extrapolated') or '–'} "
                     f"| {'; '.join(remarks)} |")
    return "\n".join(lines)


def parent_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(REPO / "tests"))
    import speed  # the architectures and the random checkpoint writer (imports torch only when called)

    args.work, args.out = args.work.resolve(), args.out.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / REPORT
    try:
        report = json.loads(path.read_text())  # earlier caps/frameworks in the same folder stay
    except (OSError, ValueError):
        report = {}
    began = time.monotonic()
    speed.write_model(ARCH, args.work / ARCH)
    print(f"model {args.work / ARCH} ready in {time.monotonic() - began:.0f} s", flush=True)
    caps = [float(c) for c in args.caps.split(",") if c.strip()]
    per_cap = {cap_key(float(k)): v for k, v in (item.split("=", 1) for item in args.cap_lengths)}
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    for framework in frameworks:
        if framework not in FRAMEWORKS:
            raise SystemExit(f"unknown framework {framework!r}: {', '.join(FRAMEWORKS)}")

    def write() -> None:
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(report, indent=1))
        partial.replace(path)

    for cap in caps:
        lengths = parse_lengths(per_cap.get(cap_key(cap), args.lengths))
        for framework in frameworks:
            key = cap_key(cap)
            settings = {"lengths": lengths, "steps": args.steps, "fresh_bisect": args.fresh_bisect,
                        "bisect": not args.no_bisect, "alloc_conf": args.alloc_conf or None, "ballast": args.ballast}
            outcomes: list[dict] = []
            shown = [0]

            def progress(data: dict, framework=framework, key=key, cap=cap, outcomes=outcomes,
                         settings=settings, shown=shown) -> None:
                report.setdefault(framework, {})[key] = entry_for([*outcomes, {"data": data}], cap) | {
                    "settings": settings, "running": True}
                write()
                for trial in data.get("trials", [])[shown[0]:]:  # the child's trials, as they end, in this log
                    print(f"  {framework} cap {key}: T={trial['length']} {trial['status']} peak "
                          f"{trial.get('peak_gib')} GiB, steps {trial.get('step_s')} s, "
                          f"{(trial.get('plan') or {}).get('choice', '')}", flush=True)
                shown[0] = len(data.get("trials", []))

            print(f"--- {framework}, cap {key} GiB, lengths {lengths}", flush=True)
            outcomes.append(run_child(args, framework, cap, lengths, bisect=not (args.fresh_bisect or args.no_bisect),
                                      tag="", on_progress=progress))
            fresh = args.fresh_bisect and not args.no_bisect
            middle = next_bisection(outcomes[0]["data"].get("trials", [])) if fresh else None
            if middle is not None and not outcomes[0]["timed_out"]:
                outcomes.append(run_child(args, framework, cap, [middle], bisect=False, tag="-bisect",
                                          on_progress=lambda data: None))
            report.setdefault(framework, {})[key] = entry_for(outcomes, cap) | {"settings": settings}
            write()
            entry = report[framework][key]
            print(f"{framework} cap {key}: longest {entry['longest_ok']} (bounded by {entry['bounded_by']}, "
                  f"{entry['bounded_status']}); children {json.dumps(entry['children'])[:1500]}", flush=True)
    print(table(report), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for longest_sequence.json and the children's logs")
    parser.add_argument("--caps", default="24,80", help="GPU memory caps in GiB, comma-separated")
    parser.add_argument("--frameworks", default="axo,unsloth")
    parser.add_argument("--lengths", default=DEFAULT_LENGTHS, help="sequence lengths to try, ascending")
    parser.add_argument("--cap-lengths", action="append", default=[], metavar="CAP=L1,L2,...",
                        help="other lengths for one cap (e.g. 80=65536,131072,196608,262144)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-speed"),
                        help="the random checkpoint (shared with speed.py), rows, run folders")
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps a length must survive")
    parser.add_argument("--child-timeout", type=float, default=900, help="seconds one child may run")
    parser.add_argument("--fresh-bisect", action="store_true", help="run the bisection point in a new process")
    parser.add_argument("--alloc-conf", default="", help="PYTORCH_ALLOC_CONF for both children (default: each "
                        "its own; Unsloth sets expandable_segments:True)")
    parser.add_argument("--ballast", action="store_true",
                        help="also occupy the GPU beyond the cap (a driver allocation), so free-memory queries see it")
    parser.add_argument("--unsloth-site", default=os.environ.get("UNSLOTH_SITE", ""),
                        help="folder put first on the Unsloth child's PYTHONPATH (e.g. /tmp/u)")
    parser.add_argument("--child", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-bisect", action="store_true",
                        help="only the given lengths (e.g. one length for each framework: does it train?)")
    args = parser.parse_args()
    if args.child:
        raise SystemExit(child_main(args))
    if args.out is None:
        parser.error("--out is required")
    parent_main(args)


if __name__ == "__main__":
    main()
