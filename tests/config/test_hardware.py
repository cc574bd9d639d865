"""Accelerator detection without torch."""

from __future__ import annotations

from axo.config.hardware import CPU_ONLY, Hardware, detect_hardware


def test_hidden_gpus_mean_cpu(monkeypatch):
    detect_hardware.cache_clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    try:
        assert detect_hardware() == CPU_ONLY
    finally:
        detect_hardware.cache_clear()


def test_capabilities():
    assert Hardware(1, (8, 0)).bf16_supported and not Hardware(1, (7, 5)).bf16_supported
    assert not CPU_ONLY.has_cuda and "no CUDA" in CPU_ONLY.describe()


def test_detection_agrees_with_torch():
    import torch

    detect_hardware.cache_clear()
    found = detect_hardware()
    assert found.cuda_devices == torch.cuda.device_count()
    if torch.cuda.is_available():
        assert found.compute_capability == torch.cuda.get_device_capability(0)
