"""Batch inference: a JSONL file of requests in, a JSONL file of the same rows with `output` added out."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from axo.data.errors import data_error
from axo.infer.generate import GenerationSettings, generate_texts
from axo.infer.prompts import render_prompt


def read_requests(path: Path) -> list[dict[str, Any]]:
    """JSONL rows; each needs `messages`, `instruction` or `prompt`. Errors name the file and line."""
    rows = []
    if not path.is_file():
        raise data_error("no such file.", origin=str(path), hint="Give a .jsonl file of requests.")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise data_error(f"line {number} is not valid JSON: {exc.msg}.", origin=str(path), line=number) from None
            if not isinstance(row, dict) or not ({"messages", "instruction", "prompt"} & set(row)):
                raise data_error(f"line {number} needs `messages`, `instruction` or `prompt`.", origin=str(path),
                                 line=number, hint='e.g. {"messages": [{"role": "user", "content": "Hi"}]}')
            rows.append(row)
    return rows


def run_batch(model: Any, tokenizer: Any, cfg: Any, source: Path, target: Path, settings: GenerationSettings,
              batch_size: int = 16) -> int:
    """Generate for every request in `source`, write `target` atomically; returns the number of rows."""
    rows = read_requests(source)
    prompts = [render_prompt(cfg, tokenizer, row) for row in rows]
    results = generate_texts(model, tokenizer, prompts, settings, batch_size)
    temporary = target.with_name(target.name + ".tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    with temporary.open("w", encoding="utf-8") as handle:
        for row, result in zip(rows, results):
            handle.write(json.dumps({**row, "output": result["text"]}, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(target)
    return len(rows)
