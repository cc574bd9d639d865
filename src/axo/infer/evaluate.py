"""`axo evaluate`: loss and perplexity on the eval split, and generation metrics on a reference set."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axo.data.errors import data_error
from axo.data.sources import read_jsonl
from axo.infer import metrics
from axo.infer.generate import GenerationSettings, generate_texts
from axo.infer.progress import generate_with_progress
from axo.infer.prompts import render_prompt

REFERENCE_KEYS = ("ideal", "reference", "answer", "output")


@dataclass
class EvalOptions:
    references: Path | None = None
    json_schema: dict[str, Any] | None = None
    must_match: list[str] = field(default_factory=list)
    must_not_match: list[str] = field(default_factory=list)
    self_consistency: int = 0
    max_new_tokens: int = 128
    limit: int | None = None
    choices: list[str] = field(default_factory=list)


def read_references(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows with a request (`messages`/`input` list, `instruction`, or `prompt`) and an answer
    (`ideal`, `reference`, `answer` or alpaca's `output`; a list means any of them is right), and
    optionally `choices` (a list of labels: the row is a classification question)."""
    rows = []
    for row, number in zip(*read_jsonl(path)):
        if isinstance(row.get("input"), list):  # OpenAI evals rows: {"input": [messages], "ideal": ...}
            row = {**row, "messages": row.pop("input")}
        reference = next((row[k] for k in REFERENCE_KEYS if k in row), None)
        if reference is None or not ({"messages", "instruction", "prompt"} & set(row)):
            raise data_error(f"line {number} needs a request (messages, instruction or prompt) and an answer "
                             f"({', '.join(REFERENCE_KEYS)}).", origin=str(path), line=number)
        choices = row.get("choices")
        if choices is not None and not (isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices)):
            raise data_error(f"line {number}: `choices` must be a non-empty list of strings (the labels), "
                             f"got {choices!r}.", origin=str(path), line=number)
        rows.append({**row, "_reference": reference})
        if limit and len(rows) >= limit:
            break
    return rows


def read_json_schema(path: Path) -> dict[str, Any]:
    """The JSON schema in `path`, read before any model loads; a missing or malformed file is a DataError
    naming it."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise data_error(f"{path} does not exist.", origin=str(path), hint="Give the path of a JSON schema file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise data_error(f"{path} cannot be read: {exc}.", origin=str(path)) from None
    except json.JSONDecodeError as exc:
        raise data_error(f"{path} is not valid JSON: {exc.msg}.", origin=str(path), line=exc.lineno) from None
    if not isinstance(schema, dict):
        raise data_error(f"{path} holds a JSON {type(schema).__name__}, not a schema object.", origin=str(path))
    return schema


def loss_and_perplexity(model: Any, tokenizer: Any, samples: list[Any], batch_size: int = 8) -> dict[str, float]:
    """Mean loss per trained token over `samples`, and its perplexity."""
    import torch

    from axo.data.packing import PackedCollator

    collate = PackedCollator(tokenizer.pad_token_id)
    total, count = 0.0, 0
    model.eval()
    for start in range(0, len(samples), batch_size):
        batch = collate([{"input_ids": s.input_ids, "labels": s.labels} for s in samples[start:start + batch_size]])
        batch = {k: v.to(model.device) for k, v in batch.items()}
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        # a prompt-tuned model's logits also cover its virtual tokens, which come first
        logits = logits[:, -batch["input_ids"].shape[1]:]
        labels = batch["labels"][:, 1:]
        total += torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                                   labels.reshape(-1), ignore_index=-100, reduction="sum").item()
        count += int((labels != -100).sum())
    loss = total / count if count else float("nan")
    return {"eval_loss": loss, "perplexity": math.exp(loss) if count else float("nan"), "eval_tokens": count}


def generation_metrics(model: Any, tokenizer: Any, cfg: Any, rows: list[dict[str, Any]], options: EvalOptions,
                       label: str = "model") -> dict[str, Any]:
    """Exact/normalised match, JSON validity, regex rules and (optionally) self-consistency."""
    prompts = [render_prompt(cfg, tokenizer, row) for row in rows]
    settings = GenerationSettings(options.max_new_tokens)
    outputs = [r["text"] for r in generate_with_progress(model, tokenizer, prompts, settings, f"generating ({label})")]
    references = [row["_reference"] for row in rows]
    n = len(rows)
    result: dict[str, Any] = {
        "rows": n,
        "exact_match": sum(map(metrics.exact_match, outputs, references)) / n,
        "normalized_match": sum(map(metrics.normalized_match, outputs, references)) / n,
        "json_valid_rate": sum(map(metrics.json_valid, outputs)) / n,
    }
    if options.json_schema is not None:
        result["json_schema_valid_rate"] = sum(metrics.schema_valid(o, options.json_schema) for o in outputs) / n
    result.update(_classification_metrics(rows, outputs, options.choices))
    result.update(metrics.regex_rates(outputs, options.must_match, options.must_not_match))
    if options.self_consistency > 1:
        sampled = GenerationSettings(options.max_new_tokens, temperature=0.8, top_p=0.95, seed=0)
        votes, agreement = [], []
        for prompt in prompts:
            answers = [r["text"] for r in generate_texts(model, tokenizer, [prompt] * options.self_consistency, sampled)]
            answer, share = metrics.majority(answers)
            votes.append(answer)
            agreement.append(share)
        result["self_consistency"] = {"samples": options.self_consistency,
                                      "majority_normalized_match": sum(map(metrics.normalized_match, votes, references)) / n,
                                      "agreement_rate": sum(agreement) / n}
    result["examples"] = [{"output": o, "reference": r} for o, r in list(zip(outputs, references))[:5]]
    return result


def _classification_metrics(rows: list[dict[str, Any]], outputs: list[str], choices: list[str]) -> dict[str, Any]:
    """For rows with labels (`choices` in the row, or --choices): accuracy of the first label each output
    names, how often it names none, and the majority-class baseline to compare both with."""
    labelled = [(row, output, row.get("choices") or choices) for row, output in zip(rows, outputs)]
    labelled = [item for item in labelled if item[2]]
    if not labelled:
        return {}
    n = len(labelled)
    label, share = metrics.majority_baseline([row["_reference"] for row, _, _ in labelled])
    return {"choice_accuracy": sum(metrics.choice_match(o, row["_reference"], c) for row, o, c in labelled) / n,
            "no_choice_rate": sum(metrics.first_choice(o, c) is None for _, o, c in labelled) / n,
            "majority_baseline": share, "majority_label": label}


def evaluate_model(model: Any, tokenizer: Any, run: Any, options: EvalOptions, eval_samples: list[Any],
                   references: list[dict[str, Any]] | None = None, label: str = "model") -> dict[str, Any]:
    """Every metric this run and these options allow; `references` are the rows of
    :func:`read_references` (read before the model loads), `label` names the model in the progress line."""
    results: dict[str, Any] = {}
    if eval_samples:
        results.update(loss_and_perplexity(model, tokenizer, eval_samples))
    if references:
        results["generation"] = generation_metrics(model, tokenizer, run.cfg, references, options, label)
    return results
