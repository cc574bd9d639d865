"""`axo train --num-gpus N`: start one training process per GPU through torch's own launcher.

The processes are started by `torch.distributed.run` (what `torchrun` is), single node, with a free
rendezvous port; each runs `python -m axo train CONFIG ...` with the launcher's RANK / LOCAL_RANK /
WORLD_SIZE, which is exactly what running under `torchrun` or `accelerate launch` yourself gives. For
several nodes, run torchrun with its rendezvous arguments on each node (docs/TRAINING.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def under_launcher() -> bool:
    """Whether this process was started by torchrun / accelerate / deepspeed (it has a rank)."""
    return "WORLD_SIZE" in os.environ or "LOCAL_RANK" in os.environ


def visible_devices(count: int) -> list[str]:
    """The GPU ids this process may use, as CUDA_VISIBLE_DEVICES lists them (or 0..count-1)."""
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


def launch_command(config: Path, processes: int, arguments: Sequence[str] = ()) -> list[str]:
    """The command that trains `config` with `processes` processes on this machine (one: a plain child)."""
    if processes == 1:
        return [sys.executable, "-m", "axo", "train", str(config), *arguments]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "axo", "train", str(config), *arguments]


def launch(config: Path, processes: int, arguments: Sequence[str] = (), visible: Sequence[str] | None = None) -> int:
    """Run the training processes to the end; returns the exit code (non-zero if any process failed).

    `visible`: the GPU ids the processes may use (CUDA_VISIBLE_DEVICES), one per process.
    """
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default; one BLAS thread pool per process
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(visible)
    return subprocess.run(launch_command(config, processes, arguments), env=env, check=False).returncode
