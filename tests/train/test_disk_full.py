"""A disk that fills up while axo writes: a checkpoint's optimizer state (torch's RuntimeError) or its adapter
(safetensors' SafetensorError), the final model, the prepared-data cache. Each is a clear error naming the
folder, the free space and the fix; the half-written files are gone at once; the last good state is intact.
The full disk is injected at the library call that writes (torch.save, safetensors' save_file, the file write):
it writes part of the file, then raises exactly what that library raises on a full disk."""

from __future__ import annotations

import errno
import io
import json
import os
import pathlib
from pathlib import Path

import pytest
import torch
from config_helpers import load
from safetensors import SafetensorError
from train_helpers import tiny_lora_config
from typer.testing import CliRunner

from axo.cli.main import app
from axo.train import checkpoints
from axo.train.run import train

TORCH_FULL = ("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file data/3: file write "
              "failed")
SAFETENSORS_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"  # safetensors 0.8


def _config(folder: Path, model: Path, steps: int = 2) -> Path:
    path = folder / "cfg.yml"
    path.write_text(tiny_lora_config(folder, model, "out", "save_strategy: steps\nsave_steps: 1\n",
                                     steps=f"max_steps: {steps}"))
    return path


def _half(path: Path, data: bytes) -> None:
    path.write_bytes(data[: len(data) // 2])  # what fitted before the disk was full


def _assert_last_good_state(out: Path, newest: str) -> None:
    assert [p.name for p in checkpoints.valid_checkpoints(out)] == [newest]
    assert checkpoints.problems(out / newest) == []
    assert not (out / checkpoints.STAGING).exists()
    assert not (out / "adapter_model.safetensors").exists()


def test_disk_full_while_torch_writes_the_optimizer_state(tmp_path, tiny_llama_dir, monkeypatch):
    real = torch.save

    def full_disk(obj, f, *args, **kwargs):
        path = Path(f) if isinstance(f, (str, os.PathLike)) else None
        if path is not None and path.name == "optimizer.pt" and path.parent.name == "checkpoint-2":
            buffer = io.BytesIO()
            real(obj, buffer, *args, **kwargs)
            _half(path, buffer.getvalue())
            raise RuntimeError(TORCH_FULL)
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", str(_config(tmp_path, tiny_llama_dir))])
    output = result.stdout + result.stderr
    assert result.exit_code == 1, output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    flat = " ".join(output.split())
    assert f"saving checkpoint 2 in {tmp_path / 'out'} failed: torch could not write the file" in flat
    assert "GiB free" in flat and "save_total_limit" in flat and "save_only_model: true" in flat
    assert "checkpoint-1) is intact" in flat and "--resume" in flat
    _assert_last_good_state(tmp_path / "out", "checkpoint-1")


def test_disk_full_while_safetensors_writes_the_adapter(tmp_path, tiny_llama_dir, monkeypatch):
    import peft.peft_model

    real = peft.peft_model.safe_save_file

    def full_disk(tensors, filename, *args, **kwargs):
        if Path(filename).parent.name == "checkpoint-2":
            _half(Path(filename), b"\0" * 4096)
            raise SafetensorError(SAFETENSORS_FULL)
        return real(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(peft.peft_model, "safe_save_file", full_disk)  # peft's own name for safetensors' save_file
    cfg = load(_config(tmp_path, tiny_llama_dir).read_text()).require()
    with pytest.raises(checkpoints.CheckpointError, match="saving checkpoint 2 .* failed: No space left on device"):
        train(cfg, progress=False)
    _assert_last_good_state(tmp_path / "out", "checkpoint-1")


def test_disk_full_during_the_final_save_removes_the_partial_weights(tmp_path, tiny_llama_dir, monkeypatch):
    import peft.peft_model

    real = peft.peft_model.safe_save_file
    out = tmp_path / "out"

    def full_disk(tensors, filename, *args, **kwargs):
        if Path(filename).parent == out:
            _half(Path(filename), b"\0" * 4096)
            raise SafetensorError(SAFETENSORS_FULL)
        return real(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(peft.peft_model, "safe_save_file", full_disk)
    cfg = load(_config(tmp_path, tiny_llama_dir).read_text()).require()
    with pytest.raises(checkpoints.CheckpointError, match="saving the trained model in .* failed") as info:
        train(cfg, progress=False)
    assert "checkpoint-2) is intact" in info.value.problems[0].message
    assert [p.name for p in checkpoints.valid_checkpoints(out)] == ["checkpoint-1", "checkpoint-2"]
    assert not (out / "adapter_model.safetensors").exists()


def test_a_failure_that_is_not_a_full_disk_is_not_disguised(tmp_path, tiny_llama_dir, monkeypatch):
    real = torch.save

    def broken(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and Path(f).name == "scheduler.pt":
            raise ValueError("a bug, not a disk")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", broken)
    cfg = load(_config(tmp_path, tiny_llama_dir).read_text()).require()
    with pytest.raises(ValueError, match="a bug, not a disk"):
        train(cfg, progress=False)
    assert not (tmp_path / "out" / checkpoints.STAGING).exists()  # the half-written checkpoint is gone all the same


def test_disk_full_while_preparing_data_keeps_the_earlier_cache(tmp_path, tiny_llama_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, tiny_llama_dir)
    assert CliRunner().invoke(app, ["preprocess", str(config)]).exit_code == 0
    prepared = tmp_path / "prepared"
    earlier = {p: p.read_bytes() for p in prepared.rglob("*") if p.is_file()}
    with (tmp_path / "data.jsonl").open("a") as handle:  # new data: a new cache folder is written
        handle.write(json.dumps({"instruction": "One more?", "output": "Yes."}) + "\n")
    real = pathlib.Path.write_text

    def full_disk(self, data, *args, **kwargs):
        if self.name == "meta.json" and self.parent.name.endswith(".partial"):
            real(self, data[: len(data) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full_disk)
    result = CliRunner().invoke(app, ["preprocess", str(config)])
    flat = " ".join((result.stdout + result.stderr).split())
    assert result.exit_code == 1 and "Traceback" not in flat, flat
    assert f"writing the prepared dataset to {prepared} failed: No space left on device" in flat
    assert "GiB free" in flat and "dataset_prepared_path" in flat
    assert {p: p.read_bytes() for p in prepared.rglob("*") if p.is_file()} == earlier  # nothing new, nothing lost


def test_each_library_write_failure_is_recognised_as_it_really_reads(tmp_path):
    """Not a hand-written message: torch, safetensors and pyarrow each write past a file-size limit (the
    kernel fails them as it fails a full disk, errno EFBIG instead of ENOSPC) in a child process, and
    `write_failure` must recognise what each library really raised; a changed format upstream fails here."""
    import subprocess
    import sys

    script = f"""
import resource, signal, torch, pyarrow as pa
from safetensors.torch import save_file
from axo.storage import write_failure
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (10000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
def arrow(path):
    table = pa.table({{"a": list(range(100000))}})
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
for name, write in (("torch", lambda p: torch.save({{"x": torch.ones(100000)}}, p)),
                    ("safetensors", lambda p: save_file({{"x": torch.ones(100000)}}, p)), ("pyarrow", arrow)):
    try:
        write(r"{tmp_path}/" + name)
        print(name, "wrote")
    except Exception as exc:
        print(name, "->", write_failure(exc), "|", type(exc).__name__)
    try:
        raise RuntimeError("a bug")
    except RuntimeError as exc:
        assert write_failure(exc) is None
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert done.returncode == 0, done.stderr
    assert lines["torch"].startswith("-> torch could not write the file"), lines
    assert lines["safetensors"].startswith("-> File too large | SafetensorError"), lines
    assert lines["pyarrow"].startswith("-> File too large | "), lines
