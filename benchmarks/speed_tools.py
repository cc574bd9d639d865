"""Helpers of the speed harness (`speed.py`) that import nothing heavy at module level: the step timer every
runner shares (`unsloth_run.py` too, which must import Unsloth before transformers) and the kernel profile table."""

from __future__ import annotations

import itertools
import time


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
    gaps = [(b.time_range.start - a.time_range.end, a.name[:60], b.name[:60]) for a, b in itertools.pairwise(kernels)]
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
