"""The GPU memory cap a config sets (`gpu_memory_limit`, or Axolotl's `max_memory` map), in GiB."""

from __future__ import annotations

from axo.config.schema import AxoConfig


def memory_cap_gib(cfg: AxoConfig) -> float | None:
    """The GPU memory cap the config sets: `gpu_memory_limit` (GiB, or a string such as "20GiB"), or the first
    GPU's entry of `max_memory` (Axolotl's per-device mapping)."""
    value = cfg.gpu_memory_limit
    if value is None and cfg.max_memory:
        value = next((v for k, v in cfg.max_memory.items() if str(k) != "cpu"), None)
    return None if value is None else parse_gib(value)


def parse_gib(value: float | str) -> float:
    """GiB from a number (GiB) or a size string: "20GiB", "20GB", "20000MiB"."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip().upper().replace(" ", "")
    units = {"GIB": 1.0, "GB": 1e9 / 2**30, "MIB": 1 / 1024, "MB": 1e6 / 2**30, "TIB": 1024.0}
    for unit, scale in units.items():
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * scale
    return float(text)
