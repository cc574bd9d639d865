"""Batch inference: a JSONL file of requests in, a JSONL file of the same rows with `output` added out."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from axo.data.errors import data_error
from axo.data.sources import read_jsonl
from axo.infer.generate import GenerationSettings
from axo.infer.progress import generate_with_progress
from axo.infer.prompts import render_prompt


def read_requests(path: Path) -> list[dict[str, Any]]:
    """JSONL rows; each needs `messages`, `instruction` or `prompt`. Errors name the file and line."""
    rows, lines = read_jsonl(path)
    for row, number in zip(rows, lines):
        if not ({"messages", "instruction", "prompt"} & set(row)):
            raise data_error(f"line {number} needs `messages`, `instruction` or `prompt`.", origin=str(path),
                             line=number, hint='e.g. {"messages": [{"role": "user", "content": "Hi"}]}')
    return rows


def run_batch(model: Any, tokenizer: Any, cfg: Any, rows: list[dict[str, Any]], target: Path,
              settings: GenerationSettings, batch_size: int = 16) -> int:
    """Generate for every request (rows from :func:`read_requests`, read before the model loads, so a bad
    file fails in a second), with a progress line; write `target` atomically; returns the number of rows."""
    prompts = [render_prompt(cfg, tokenizer, row) for row in rows]
    results = generate_with_progress(model, tokenizer, prompts, settings, "generating", batch_size)
    write_rows_atomically(target, [{**row, "output": result["text"]} for row, result in zip(rows, results)])
    return len(rows)


def write_rows_atomically(target: Path, rows: list[dict[str, Any]]) -> None:
    """Write `rows` as JSONL to `target` through a synced temporary file and a rename: never half a file."""
    temporary = target.with_name(target.name + ".tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    with temporary.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(target)
