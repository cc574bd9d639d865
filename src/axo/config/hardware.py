"""What accelerator this machine has, found without importing torch.

`bf16: auto` and `tf32: auto` depend on the GPU, but `axo validate` must answer in well under two seconds
and importing torch alone takes about that. The CUDA driver API answers the two questions we need (how
many devices, which compute capability) in milliseconds through ctypes.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass

_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76


@dataclass(frozen=True)
class Hardware:
    """The accelerator facts config resolution needs."""

    cuda_devices: int = 0
    compute_capability: tuple[int, int] | None = None
    device_name: str | None = None  # the first GPU's, e.g. "NVIDIA H200"
    memory_bytes: int | None = None  # the first GPU's total memory

    @property
    def has_cuda(self) -> bool:
        return self.cuda_devices > 0

    @property
    def bf16_supported(self) -> bool:
        """bf16 tensor cores: Ampere (8.0) and newer."""
        return self.compute_capability is not None and self.compute_capability >= (8, 0)

    @property
    def tf32_supported(self) -> bool:
        return self.bf16_supported

    def describe(self) -> str:
        if not self.has_cuda:
            return "no CUDA GPU"
        major, minor = self.compute_capability or (0, 0)
        return f"{self.cuda_devices} CUDA GPU(s), compute capability {major}.{minor}"


CPU_ONLY = Hardware()


@functools.lru_cache(maxsize=1)
def detect_hardware() -> Hardware:
    """Probe the CUDA driver; any failure means no usable GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return CPU_ONLY
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return CPU_ONLY
    try:
        if cuda.cuInit(0) != 0:
            return CPU_ONLY
        count = ctypes.c_int(0)
        if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
            return CPU_ONLY
        device = ctypes.c_int(0)
        if cuda.cuDeviceGet(ctypes.byref(device), 0) != 0:
            return Hardware(cuda_devices=count.value)
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        cuda.cuDeviceGetAttribute(ctypes.byref(major), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device)
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device)
        name = ctypes.create_string_buffer(256)
        memory = ctypes.c_size_t(0)
        named = cuda.cuDeviceGetName(name, 256, device) == 0
        sized = cuda.cuDeviceTotalMem_v2(ctypes.byref(memory), device) == 0
        return Hardware(cuda_devices=count.value, compute_capability=(major.value, minor.value),
                        device_name=name.value.decode(errors="replace") if named else None,
                        memory_bytes=memory.value if sized else None)
    except (AttributeError, OSError):
        return CPU_ONLY


def available_host_memory() -> int | None:
    """Bytes of host memory available to a new allocation (Linux `MemAvailable`: free plus reclaimable caches),
    or None where the system does not say."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
