"""The GPUs the planner knows: usable memory, dense bf16 tensor throughput, and how fast axo's training
steps run on them.

`efficiency` is the fraction of the dense bf16 peak that axo's training steps reach (model FLOPs as counted
in plan/timing.py, divided by step time). Entries with a `measured` source were measured by
`benchmarks/plan_check.py` on that GPU (docs/BENCHMARKS.md, "axo plan"); the others carry the H200's
fractions scaled by nothing but the spec sheet — they are estimates and `axo plan` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from axo.plan.memory import GIB


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float  # what torch reports as total memory
    bf16_tflops: float  # dense bf16 tensor-core peak, spec sheet
    efficiency: dict[str, float]  # training kind ("lora", "qlora", "full") -> fraction of the peak reached
    source: str  # "measured …" or "estimate …"

    @property
    def measured(self) -> bool:
        return self.source.startswith("measured")

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * GIB)


# Measured on one H200 (benchmarks/plan_check.py, 2026-12-04): Llama-3.1-8B shapes, 4 × 2048 tokens, bf16.
H200_EFFICIENCY = {"lora": 0.52, "qlora": 0.50, "full": 0.47}
# Without fused kernels (no liger RMSNorm/SwiGLU/RoPE, transformers' loss) the same steps ran at this fraction.
PLAIN_KERNELS = 0.80
_ESTIMATE = "estimate: the H200's measured fractions of peak applied to this GPU's spec-sheet bf16 rate"

GPUS = {gpu.name: gpu for gpu in (
    Gpu("h200", 139.8, 989.0, H200_EFFICIENCY, "measured on an H200 141 GB (benchmarks/plan_check.py, 2026-12-04)"),
    Gpu("h100", 79.1, 989.0, H200_EFFICIENCY, _ESTIMATE + " (H100 SXM 80 GB)"),
    Gpu("h100-pcie", 79.1, 756.0, H200_EFFICIENCY, _ESTIMATE + " (H100 PCIe 80 GB)"),
    Gpu("b200", 178.4, 2250.0, H200_EFFICIENCY, _ESTIMATE + " (B200 192 GB)"),
    Gpu("a100-80gb", 79.1, 312.0, H200_EFFICIENCY, _ESTIMATE + " (A100 SXM 80 GB)"),
    Gpu("a100-40gb", 39.4, 312.0, H200_EFFICIENCY, _ESTIMATE + " (A100 40 GB)"),
    Gpu("l40s", 44.4, 362.0, H200_EFFICIENCY, _ESTIMATE + " (L40S 48 GB)"),
    Gpu("a10g", 22.0, 70.0, H200_EFFICIENCY, _ESTIMATE + " (A10G 24 GB)"),
    Gpu("l4", 22.0, 121.0, H200_EFFICIENCY, _ESTIMATE + " (L4 24 GB)"),
    Gpu("rtx4090", 23.6, 165.0, H200_EFFICIENCY, _ESTIMATE + " (GeForce RTX 4090 24 GB)"),
    Gpu("rtx3090", 23.6, 71.0, H200_EFFICIENCY, _ESTIMATE + " (GeForce RTX 3090 24 GB)"),
)}

_ALIASES = {"4090": "rtx4090", "3090": "rtx3090", "a100": "a100-80gb", "h100sxm": "h100", "h200sxm": "h200",
            "h100pcie": "h100-pcie", "a10": "a10g"}


def _key(text: str) -> str:
    key = text.lower()
    for noise in (" ", "_", "-", "nvidia", "geforce", "tesla"):
        key = key.replace(noise, "")
    return key


_LOOKUP = {_key(name): gpu for name, gpu in GPUS.items()} | {_key(a): GPUS[n] for a, n in _ALIASES.items()}


def find_gpu(name: str) -> Gpu | None:
    """The table entry for a name as users write it (`H100`, `rtx4090`, `RTX 4090`, `a100-40gb`)."""
    return _LOOKUP.get(_key(name))


def gpu_from_device_name(device_name: str, memory_gib: float) -> Gpu:
    """The table entry for a detected device (`NVIDIA H200`, `NVIDIA A100-SXM4-40GB`), with the memory it
    really has; an unknown GPU gets the H100's rate, as an estimate said as such."""
    key = _key(device_name)
    matches = sorted((k for k in _LOOKUP if key.startswith(k)), key=len, reverse=True)
    if matches:
        gpu = _LOOKUP[matches[0]]
        if gpu.name.startswith("a100"):
            gpu = GPUS["a100-40gb" if memory_gib < 60 else "a100-80gb"]
        return replace(gpu, memory_gib=memory_gib)
    return Gpu(device_name, memory_gib, 989.0, H200_EFFICIENCY,
               f"estimate: {device_name} is not in axo's table; the H100's rate is assumed")
