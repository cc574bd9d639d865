"""Few-shot adaptation of a meta-learning run (`axo evaluate RUN --tasks FILE --shots 1,3,5`).

For each held-out task and each k, the first k support rows are what a method may learn from, and the task's query
rows are scored (mean answer-token loss; greedy answers, cut to the expected answer's number of lines, against the
expected ones, exact and normalised match):
- an adapter "adapted": the run's own inner loop (its `inner_lr`, `inner_steps`; train/meta_learning.py) on the k
  rows, then the query rows with the adapted weights (after those k rows too, when the run was trained with
  `support_in_context`) — for the meta-adapter, and for a plain SFT adapter given with `--compare-sft`;
- a model "in context": the k rows (prompt and answer, as trained) placed before each query's prompt — for the base
  model, and for the SFT adapter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.data.formats.base import IGNORE_INDEX
from axo.data.meta import context_ids
from axo.infer.metrics import exact_match, normalized_match
from axo.infer.run_dir import Run
from axo.train.meta_learning import (
    InnerLoop,
    adapted_query_loss,
    adapter_weights,
)

Row = dict[str, list[int]]  # {"input_ids", "labels"}


@dataclass
class _Query:
    prompt: list[int]
    answer: list[int]
    text: str  # the expected answer


def _query(row: Row, tokenizer: Any) -> _Query:
    first = next(i for i, label in enumerate(row["labels"]) if label != IGNORE_INDEX)
    answer = [token for token, label in zip(row["input_ids"], row["labels"]) if label != IGNORE_INDEX]
    return _Query(row["input_ids"][:first], answer, tokenizer.decode(answer, skip_special_tokens=True).strip())


def _strip_bos(ids: list[int], tokenizer: Any, context: list[int]) -> list[int]:
    return ids[1:] if context and tokenizer.bos_token_id is not None and ids[:1] == [tokenizer.bos_token_id] else ids


def _pad(sequences: list[list[int]], labels: list[list[int]] | None, pad: int, device: Any) -> dict[str, torch.Tensor]:
    """Left-padded batch (generation continues from the right edge; the loss ignores padded labels)."""
    width = max(len(s) for s in sequences)
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=device)
    batch = {"input_ids": ids, "attention_mask": mask}
    if labels is not None:
        batch["labels"] = torch.tensor([[IGNORE_INDEX] * (width - len(s)) + lab for s, lab in zip(sequences, labels)],
                                       device=device)
    return batch


def _answers(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
    """Greedy answers, each cut at EOS."""
    from axo.infer.virtual_tokens import generation_inputs

    generator, batch = generation_inputs(model, _pad(prompts, None, tokenizer.pad_token_id, model.device),
                                         tokenizer.pad_token_id)
    with torch.no_grad():
        output = generator.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return [tokenizer.decode(tokens, skip_special_tokens=True).strip()
            for tokens in output[:, batch["input_ids"].shape[1]:]]


def answer_lines(generated: str, expected: str) -> str:
    """The generated answer cut to as many lines as the expected one has: a model answering after examples in
    its context goes on with the next example's turn ("Paris\n\n### Instruction: ..."), which is not part of its
    answer (the usual few-shot stop at a line break; answers that end with EOS are not changed)."""
    lines = generated.strip().split("\n")
    return "\n".join(lines[:expected.count("\n") + 1]).strip()


@contextlib.contextmanager
def _weights(model: Any, weights: dict[str, torch.Tensor]) -> Iterator[None]:
    """The adapter's weights replaced by `weights` for the block (restored after)."""
    params = adapter_weights(model)
    saved = {name: param.detach().clone() for name, param in params.items()}
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(weights[name])
    try:
        yield
    finally:
        with torch.no_grad():
            for name, param in params.items():
                param.copy_(saved[name])


def _score(model: Any, tokenizer: Any, queries: list[_Query], context: list[int], max_new_tokens: int) -> dict[str, Any]:
    """Loss (mean over the answers' tokens) and matches of the queries, each placed after `context`."""
    sequences = [context + _strip_bos(q.prompt, tokenizer, context) + q.answer for q in queries]
    labels = [[IGNORE_INDEX] * (len(s) - len(q.answer)) + q.answer for s, q in zip(sequences, queries)]
    with torch.no_grad():
        loss = float(model(**_pad(sequences, labels, tokenizer.pad_token_id, model.device), use_cache=False).loss)
    generated = _answers(model, tokenizer, [context + _strip_bos(q.prompt, tokenizer, context) for q in queries],
                         max_new_tokens)
    answers = [answer_lines(text, q.text) for text, q in zip(generated, queries)]
    return {"loss": loss, "exact": [exact_match(a, q.text) for a, q in zip(answers, queries)],
            "normalized": [normalized_match(a, q.text) for a, q in zip(answers, queries)]}


def _adapted(model: Any, tokenizer: Any, task: dict[str, Any], k: int, loop: InnerLoop, collate: Any,
             max_new_tokens: int) -> dict[str, Any]:
    """Adapt on the first k support rows, then score the queries: alone, or after those k rows when the run was
    trained with them in context (`collate.support_in_context`)."""
    support = task["support"][:k]
    queries = [_query(row, tokenizer) for row in task["query"]]
    context = context_ids(support, tokenizer.bos_token_id) if collate.support_in_context else []
    if k == 0:
        return _score(model, tokenizer, queries, context, max_new_tokens)
    batches = {"support": collate.rows(support), "query": collate.rows(collate.queries(support, task["query"]))}
    batches = {name: {key: value.to(model.device) for key, value in batch.items()} for name, batch in batches.items()}
    loss, fast = adapted_query_loss(model, batches, loop)
    with _weights(model, fast):
        scored = _score(model, tokenizer, queries, context, max_new_tokens)
    return {**scored, "loss": loss}


def _in_context(model: Any, tokenizer: Any, task: dict[str, Any], k: int, max_new_tokens: int) -> dict[str, Any]:
    queries = [_query(row, tokenizer) for row in task["query"]]
    return _score(model, tokenizer, queries, context_ids(task["support"][:k], tokenizer.bos_token_id), max_new_tokens)


def _summary(scores: list[dict[str, Any]]) -> dict[str, float]:
    exact = [hit for score in scores for hit in score["exact"]]
    normalized = [hit for score in scores for hit in score["normalized"]]
    return {"exact_match": sum(exact) / len(exact), "normalized_match": sum(normalized) / len(normalized),
            "query_loss": sum(score["loss"] for score in scores) / len(scores)}


def _check_shots(tasks: list[dict[str, Any]], shots: list[int], path: Path) -> None:
    short = [task["task_id"] for task in tasks if len(task["support"]) < max(shots)]
    if short:
        raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "--shots", f"{len(short)} task(s) of {path} have "
                                   f"fewer than {max(shots)} support rows (e.g. {short[0]!r}).",
                                   "Ask for fewer shots, or give those tasks more support rows.")])


def _methods(model: Any, tokenizer: Any, tasks: list[dict[str, Any]], shots: list[int], loop: InnerLoop, label: str,
             max_new_tokens: int, support_in_context: bool) -> dict[str, dict[str, dict[str, float]]]:
    """{method: {"k=<k>": summary}} for one loaded adapter model: adapted (and, for a run trained with
    `support_in_context`, asked with the k rows in context as well), in context, and (for the meta-adapter) the
    base model in context (the same model with its adapter disabled)."""
    from axo.train.meta_trainer import TaskCollator

    collate = TaskCollator(tokenizer, reptile=False, support_in_context=support_in_context)
    adapted = "adapted, and the examples in context" if support_in_context else "adapted"

    def table(method: Callable[[dict[str, Any], int], dict[str, Any]]) -> dict[str, dict[str, float]]:
        return {f"k={k}": _summary([method(task, k) for task in tasks]) for k in shots}

    found = {f"{label} ({adapted})": table(lambda task, k: _adapted(model, tokenizer, task, k, loop, collate,
                                                                   max_new_tokens)),
             f"{label} (in context)": table(lambda task, k: _in_context(model, tokenizer, task, k, max_new_tokens))}
    if label == "meta-adapter":
        with model.disable_adapter():
            found["base (in context)"] = table(lambda task, k: _in_context(model, tokenizer, task, k, max_new_tokens))
    return found


def few_shot_evaluation(run: Run, tasks_path: Path, shots: list[int], *, sft: Run | None = None,
                        max_new_tokens: int = 16, limit: int | None = None,
                        say: Callable[[str], None] = print) -> dict[str, Any]:
    """{method: {"k=<k>": {"exact_match", "normalized_match", "query_loss"}}, "tasks": n, "settings": {...}} for
    the held-out tasks of `tasks_path` (read in the run's task format).

    Raises:
        ConfigError: when the run is not a meta-learning run, or a task has fewer support rows than a shot count.
        DataError: for malformed task rows.
    """
    from axo.data.meta import read_tasks
    from axo.infer.loading import describe_model, load_for_inference

    meta = run.cfg.meta_learning
    if meta is None:
        raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "--tasks", f"{run.output_dir} is not a "
                                   "meta-learning run (its config has no `meta_learning:`).", "Evaluate a run trained "
                                   "with `meta_learning:`, and pass a plain SFT run with --compare-sft.")])
    loop = InnerLoop(meta.inner_lr, meta.inner_steps)
    results: dict[str, Any] = {}
    for label, source in [("meta-adapter", run)] + ([("SFT adapter", sft)] if sft is not None else []):
        say(f"loading {describe_model(source)}")
        model, tokenizer = load_for_inference(source, trainable_adapter=True)
        tasks = read_tasks(tasks_path, run.cfg, tokenizer)[:limit]
        _check_shots(tasks, shots, tasks_path)
        results.update(_methods(model, tokenizer, tasks, shots, loop, label, max_new_tokens, meta.support_in_context))
        del model
    return {"few_shot": results, "tasks": len(tasks), "queries": sum(len(t["query"]) for t in tasks),
            "settings": {"shots": shots, "inner_lr": meta.inner_lr, "inner_steps": meta.inner_steps,
                         "algorithm": meta.algorithm, "support_in_context": meta.support_in_context,
                         "tasks_file": str(tasks_path)}}
