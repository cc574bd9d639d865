"""Generation over many prompts with a live progress line (rows done, rows/s, time left) on stderr."""

from __future__ import annotations

from typing import Any

from axo.infer.generate import GenerationSettings, generate_texts


def generate_with_progress(model: Any, tokenizer: Any, prompts: list[str], settings: GenerationSettings,
                           label: str, batch_size: int = 16) -> list[dict[str, Any]]:
    """`generate_texts` over `prompts` in left-padded batches of `batch_size`, showing `label` with a bar,
    the rate and the estimated time left; same results as one `generate_texts` call."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    results: list[dict[str, Any]] = []
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(label, total=len(prompts), rate="")
        for start in range(0, len(prompts), batch_size):
            results += generate_texts(model, tokenizer, prompts[start:start + batch_size], settings, batch_size)
            elapsed = progress.tasks[0].elapsed or 0.0
            progress.update(task, completed=len(results),
                            rate=f"{len(results) / elapsed:.2f} rows/s" if elapsed else "")
    return results
