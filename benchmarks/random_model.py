"""Random-init checkpoints of any size, written tensor by tensor as bf16 safetensors shards.

A 72B model does not fit one GPU (or fit comfortably in host memory) in fp32, so the benchmarks never build
it: the tensor names and shapes come from a model on the meta device, each tensor is drawn on a GPU in bf16
(normal(0, initializer_range) for weights, ones for norms, zeros for biases, as transformers' init does),
and worker processes — one or two per GPU — write the shards in parallel with a standard index file, so
`from_pretrained` loads the folder like any hub checkpoint.
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

SHARD_BYTES = 5 * 10**9


def _init(name: str) -> str:
    if name.endswith(".bias"):
        return "zeros"
    if "norm" in name.rsplit(".", 2)[-2]:
        return "ones"
    return "normal"


def _write_shard(path: str, entries: list[tuple[str, tuple[int, ...]]], device: str, seed: int, std: float) -> int:
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator(device=device).manual_seed(seed)
    tensors = {}
    for name, shape in entries:
        kind = _init(name)
        if kind == "normal":
            tensor = torch.empty(shape, dtype=torch.bfloat16, device=device).normal_(0.0, std, generator=generator)
        else:
            tensor = (torch.ones if kind == "ones" else torch.zeros)(shape, dtype=torch.bfloat16, device=device)
        tensors[name] = tensor.cpu()
    save_file(tensors, path, metadata={"format": "pt"})
    return sum(t.numel() * 2 for t in tensors.values())


def write_random_checkpoint(config, folder: Path) -> int:
    """Write `config`'s architecture with random bf16 weights into `folder` (config.json, shards, index);
    returns the parameter count."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    entries = [(name, tuple(t.shape)) for name, t in model.state_dict().items()]
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, shape in entries:
        nbytes = 2 * torch.Size(shape).numel()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += nbytes
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    gpus = torch.cuda.device_count()
    devices = [f"cuda:{i % gpus}" for i in range(2 * gpus)] if gpus else ["cpu", "cpu"]
    std = getattr(config, "initializer_range", 0.02)
    with ProcessPoolExecutor(len(devices), mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(_write_shard, str(folder / names[i]), shard, devices[i % len(devices)], i, std)
                for i, shard in enumerate(shards)]
        total = sum(job.result() for job in jobs)
    weight_map = {name: names[i] for i, shard in enumerate(shards) for name, _ in shard}
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
    config.save_pretrained(folder)
    return sum(t.numel() for t in model.parameters())
