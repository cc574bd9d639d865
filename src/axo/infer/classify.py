"""Sequence classifiers (runs with `num_labels`) at inference: predictions with probabilities, and the metrics
`axo evaluate` reports for them (accuracy, macro-F1 and the confusion matrix; MAE and RMSE for regression)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from axo.data.errors import DataError, data_error
from axo.infer.run_dir import Run


def is_classifier(run: Run) -> bool:
    """Whether `run` trained a sequence classifier or regressor (reward models have their own metrics)."""
    return run.cfg.num_labels is not None and not run.cfg.reward_model and not run.cfg.rl


def is_regression(run: Run) -> bool:
    return run.cfg.problem_type == "regression"


def class_names(run: Run, model: Any, tokenizer: Any) -> list[str]:
    """The name of each class id: the saved model's `id2label` (a full fine-tune), else the names the prepared
    data recorded (an adapter run saves no model config), else the ids themselves."""
    count = run.cfg.num_labels or 1
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    names = [str(id2label.get(index, index)) for index in range(count)]
    if names != [f"LABEL_{index}" for index in range(count)]:
        return names
    from axo.train.modes.classification import label_names

    found = prepared_data(run, tokenizer)
    prepared = label_names(found[1]) if found else None
    named = list(prepared or [])
    return named + [str(index) for index in range(len(named), count)]


def prepared_data(run: Run, tokenizer: Any) -> tuple[dict[str, list[Any]], dict[str, Any]] | None:
    """The run's prepared splits and meta: the cache training wrote (its fingerprint and working directory are in
    provenance.json, so relative data paths need not resolve from here), else prepared again; None when neither
    works (the data is gone)."""
    import json

    from axo.data.cache import load_prepared
    from axo.data.prepare import prepare_data

    provenance_file = run.output_dir / "provenance.json"
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
    cwd = Path(provenance["cwd"]) if provenance.get("cwd") else None
    root = Path(run.cfg.dataset_prepared_path or "last_run_prepared")
    if cwd is not None and not root.is_absolute():
        root = cwd / root
    if provenance.get("config_fingerprint"):
        cached = load_prepared(root / provenance["config_fingerprint"])
        if cached is not None:
            return cached
    try:
        prepared = prepare_data(run.cfg.model_copy(update={"base_model": run.base_model,
                                                           "dataset_prepared_path": str(root)}),
                                tokenizer, config_dir=cwd)
    except DataError:
        return None
    return {"train": prepared.train, "eval": prepared.eval}, prepared.meta


def reference_samples(run: Run, path: Path, tokenizer: Any) -> list[Any]:
    """`--references` for a classifier: rows in the shape of the run's first dataset (its columns, pair and label
    field), tokenized by its format as training did."""
    from axo.data.formats.base import format_for
    from axo.data.sources import read_rows

    if not path.is_file():
        raise data_error(f"{path}: no such file.", origin=str(path), key="--references", hint="Check the path.")
    entry = run.cfg.datasets[0].model_copy(update={"path": str(path), "ds_type": None, "split": "train",
                                                   "data_files": None})
    return format_for(tokenizer, run.cfg, entry).tokenize(read_rows(entry))


def logits_of(model: Any, tokenizer: Any, samples: list[Any], batch_size: int = 16) -> Any:
    """The head's logits for each sample (padded batches, as the training collator pads them), on the CPU."""
    import torch
    from transformers import DataCollatorWithPadding

    collate = DataCollatorWithPadding(tokenizer)
    chunks = []
    model.eval()
    for start in range(0, len(samples), batch_size):
        rows = [{"input_ids": s.input_ids, **({"token_type_ids": s.token_type_ids}
                                              if getattr(s, "token_type_ids", None) is not None else {})}
                for s in samples[start:start + batch_size]]
        batch = {key: value.to(model.device) for key, value in collate(rows).items()}
        with torch.no_grad():
            chunks.append(model(**batch).logits.float().cpu())
    return torch.cat(chunks) if chunks else torch.zeros(0, 1)


def classifier_metrics(model: Any, tokenizer: Any, samples: list[Any], names: list[str],
                       regression: bool) -> dict[str, Any]:
    """Accuracy, macro-F1 (the mean over classes of each class's F1; a class neither present nor predicted is
    left out) and the confusion matrix (rows: true class, columns: predicted) — or MAE and RMSE for regression."""
    logits = logits_of(model, tokenizer, samples)
    truth = [s.label for s in samples]
    if regression:
        errors = [float(p) - float(t) for p, t in zip(logits.view(-1).tolist(), truth)]
        return {"rows": len(samples), "mae": sum(map(abs, errors)) / len(errors),
                "rmse": math.sqrt(sum(e * e for e in errors) / len(errors))}
    predicted = logits.argmax(-1).tolist()
    count = len(names)
    matrix = [[0] * count for _ in range(count)]
    for t, p in zip(truth, predicted):
        matrix[t][p] += 1
    scores = []
    for c in range(count):
        hits, actual, guessed = matrix[c][c], sum(matrix[c]), sum(row[c] for row in matrix)
        if actual or guessed:
            scores.append(2 * hits / (actual + guessed))
    return {"rows": len(samples), "accuracy": sum(t == p for t, p in zip(truth, predicted)) / len(samples),
            "macro_f1": sum(scores) / len(scores) if scores else 0.0,
            "confusion_matrix": {"labels": names, "counts": matrix}}


def predict(model: Any, tokenizer: Any, samples: list[Any], names: list[str], regression: bool) -> list[dict[str, Any]]:
    """For each sample: the predicted label and each label's probability (softmax), or the score (regression)."""
    logits = logits_of(model, tokenizer, samples)
    if regression:
        return [{"score": value} for value in logits.view(-1).tolist()]
    out = []
    for row in logits.softmax(-1).tolist():
        best = max(range(len(row)), key=row.__getitem__)
        out.append({"label": names[best], "probabilities": dict(zip(names, row))})
    return out


def encode_rows(run: Run, tokenizer: Any, rows: list[dict[str, Any]], source: str = "input",
                lines: list[int] | None = None) -> list[Any]:
    """Requests for a classifier: rows with the text column of the run's first dataset (`field`, default `text`)
    and, for a pair model, its `field_pair` column; tokenized as training did (no label needed)."""
    from axo.data.formats.base import format_for
    from axo.data.sources import Rows

    entry = run.cfg.datasets[0]
    return format_for(tokenizer, run.cfg, entry).encode(Rows(source, rows, lines or []))


def columns(run: Run) -> tuple[str, str | None]:
    """(the text column, the pair column or None) a classifier run reads."""
    entry = run.cfg.datasets[0]
    return entry.field or "text", entry.field_pair


def chat(run: Run, model: Any, tokenizer: Any, err: Any) -> None:
    """Interactive classification: read the text (and, for a pair model, the second text) or one JSON line with
    the fields, print the predicted label and every label's probability (the score, for regression)."""
    import json

    names, regression = class_names(run, model, tokenizer), is_regression(run)
    text, pair = columns(run)
    err.print(f"[dim]classifying with {run.output_dir}: type the {text}" + (f", then the {pair}" if pair else "")
              + f" (or one JSON line with {'both fields' if pair else 'the field'}); /exit or Ctrl-D quits[/]")
    while True:
        try:
            line = input(f"{text}> ")
            if line.strip() in ("/exit", "/quit"):
                break
            row = _json_row(line, json) or {text: line}
            if pair and pair not in row:
                row[pair] = input(f"{pair}> ")
        except EOFError:
            break
        try:
            (result,) = predict(model, tokenizer, encode_rows(run, tokenizer, [row]), names, regression)
        except DataError as exc:  # a field of the wrong type: told, and the loop goes on
            err.print(exc.problems[0].render(), highlight=False)
            continue
        print(format_prediction(result), flush=True)


def _json_row(line: str, json: Any) -> dict[str, Any] | None:
    stripped = line.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def format_prediction(result: dict[str, Any]) -> str:
    """`label: positive` then each label's probability, most likely first (or `score: 7.2310`)."""
    if "score" in result:
        return f"score: {result['score']:.4f}"
    ranked = sorted(result["probabilities"].items(), key=lambda item: -item[1])
    return f"label: {result['label']}\n" + "\n".join(f"  {name}: {value:.4f}" for name, value in ranked)


def evaluate_classifier(run: Run, model: Any, tokenizer: Any, references: Path | None = None,
                        limit: int | None = None) -> dict[str, Any]:
    """`axo evaluate` of a classifier: its metrics on `references` (rows in the shape of the run's first
    dataset) or else on the run's eval split; {} when there is neither."""
    if references is not None:
        samples = reference_samples(run, references, tokenizer)
    elif run.cfg.val_set_size > 0 or run.cfg.test_datasets:
        found = prepared_data(run, tokenizer)
        samples = found[0].get("eval", []) if found else []
    else:
        return {}
    samples = samples[:limit] if limit else samples
    if not samples:
        return {}
    return classifier_metrics(model, tokenizer, samples, class_names(run, model, tokenizer), is_regression(run))


def confusion_table(title: str, matrix: dict[str, Any]) -> Any:
    """A rich table of a confusion matrix (rows: true label, columns: predicted label)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("true \\ predicted")
    for name in matrix["labels"]:
        table.add_column(str(name), justify="right")
    for name, counts in zip(matrix["labels"], matrix["counts"]):
        table.add_row(str(name), *map(str, counts))
    return table
