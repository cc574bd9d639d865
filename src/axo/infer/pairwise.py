"""Preference metrics of a trained run on chosen/rejected pairs: how often a reward model scores the chosen
answer higher, and how often a preference-tuned policy prefers it (its own log-probabilities, and DPO's
implicit reward against the base with the adapter disabled)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any


def _completion_ids(tokenizer: Any, prompt: str, completion: str) -> tuple[list[int], int]:
    """(prompt+completion ids, where the completion starts), tokenized as TRL's DPO trainer does for text rows:
    EOS appended when missing, the completion starting where the prompt's ids and the full ids diverge."""
    eos = tokenizer.eos_token or ""
    if eos and not completion.endswith(eos):
        completion += eos
    prompt_ids = tokenizer(prompt)["input_ids"]
    full = tokenizer(prompt + completion)["input_ids"]
    start = 0
    while start < min(len(prompt_ids), len(full)) and prompt_ids[start] == full[start]:
        start += 1
    return full, start


def _sequence_logps(model: Any, tokenizer: Any, items: list[tuple[str, str]], batch_size: int) -> list[float]:
    """Sum of the completion tokens' log-probabilities for each (prompt, completion)."""
    import torch

    encoded = [_completion_ids(tokenizer, p, c) for p, c in items]
    out: list[float] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for begin in range(0, len(encoded), batch_size):
        chunk = encoded[begin:begin + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        targets = torch.full((len(chunk), width), -100, dtype=torch.long)
        for row, (sequence, start) in enumerate(chunk):
            ids[row, :len(sequence)] = torch.tensor(sequence)
            mask[row, :len(sequence)] = 1
            targets[row, start:len(sequence)] = torch.tensor(sequence[start:])
        with torch.no_grad():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                           use_cache=False).logits[:, -width:-1].float()  # (prompt tuning's virtual tokens first)
        labels = targets[:, 1:].to(logits.device)
        logps = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        out += (logps * (labels != -100)).sum(-1).tolist()
    return out


def scores(model: Any, tokenizer: Any, sequences: list[list[int]], batch_size: int) -> list[float]:
    """A reward model's score for each token sequence."""
    import torch

    out: list[float] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for begin in range(0, len(sequences), batch_size):
        chunk = sequences[begin:begin + batch_size]
        width = max(len(s) for s in chunk)
        # right padding with a mask: transformers' sequence classifiers read the last non-pad token
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in chunk])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in chunk])
        with torch.no_grad():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        out += logits[:, 0].float().tolist()
    return out


def reward_model_metrics(model: Any, tokenizer: Any, rows: list[dict[str, Any]], sequence_len: int,
                         batch_size: int = 8) -> dict[str, float]:
    """Pairwise accuracy (chosen scored above rejected) and the mean score margin of a reward model."""
    from axo.data.preference.bradley_terry import axolotl_ids

    ids = [axolotl_ids(tokenizer, row, sequence_len) for row in rows]
    chosen = scores(model, tokenizer, [i["chosen_ids"] for i in ids], batch_size)
    rejected = scores(model, tokenizer, [i["rejected_ids"] for i in ids], batch_size)
    margins = [c - r for c, r in zip(chosen, rejected)]
    return {"pairs": len(rows), "pairwise_accuracy": sum(m > 0 for m in margins) / len(rows),
            "mean_margin": sum(margins) / len(rows)}


def policy_metrics(model: Any, tokenizer: Any, rows: list[dict[str, Any]], *, beta: float,
                   has_adapter: bool, batch_size: int = 8) -> dict[str, float]:
    """For a causal LM on pairs: how often its log-probability of the chosen answer beats the rejected one's
    (`preference_accuracy`); with an adapter, also DPO's implicit reward β·(log π − log π_ref) against the
    base with the adapter disabled: how often it ranks chosen first (`reward_accuracy`) and the mean margin."""
    pairs = [(row["prompt"], row[side]) for row in rows for side in ("chosen", "rejected")]
    policy = _sequence_logps(model, tokenizer, pairs, batch_size)
    result: dict[str, float] = {"pairs": len(rows),
                                "preference_accuracy": sum(policy[2 * i] > policy[2 * i + 1]
                                                           for i in range(len(rows))) / len(rows)}
    if has_adapter:
        with model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext():
            reference = _sequence_logps(model, tokenizer, pairs, batch_size)
        margins = [beta * ((policy[2 * i] - reference[2 * i]) - (policy[2 * i + 1] - reference[2 * i + 1]))
                   for i in range(len(rows))]
        result["reward_accuracy"] = sum(m > 0 for m in margins) / len(rows)
        result["reward_margin"] = sum(margins) / len(rows)
    return result


def preference_metrics(run: Any, model: Any, tokenizer: Any, pairs_file: Any, base: bool, err: Any,
                       limit: int | None = None) -> dict[str, Any]:
    """`axo evaluate`'s metrics for a preference or reward-model run: on `pairs_file` (read with the run's first
    dataset `type:`) or else on the run's eval split, the first `limit` pairs when given; an empty dict, with a
    note, when there are no pairs."""
    from axo.train.modes.preference import beta, preference_method

    method = preference_method(run.cfg)
    rows = _pairs(run, tokenizer, pairs_file, method)[:limit]
    if method == "kto" and pairs_file is None:
        err.print("[yellow]note[/] a KTO run's eval split holds single completions, not pairs: give --pairs "
                  "FILE with chosen/rejected rows to compare them.", highlight=False)
        return {}
    if not rows:
        err.print("[yellow]note[/] no pairs to score: the run has no eval split (set val_set_size or "
                  "test_datasets) and no --pairs file was given.", highlight=False)
        return {}
    if method == "reward":
        return {"preference": reward_model_metrics(model, tokenizer, rows, run.cfg.sequence_len)}
    return {"preference": policy_metrics(model, tokenizer, rows, beta=beta(run.cfg) or 0.1,
                                         has_adapter=run.is_adapter and not base)}


def _pairs(run: Any, tokenizer: Any, pairs_file: Any, method: str) -> list[dict[str, Any]]:
    """The pairs to score: `pairs_file` read with the run's first dataset's `type:` (as a pair type: a KTO run's
    file is read as DPO pairs), else the run's prepared eval split."""
    cfg = run.cfg.model_copy(update={"base_model": run.base_model})
    if pairs_file is None:
        from axo.train.modes import mode_for

        return mode_for(cfg).prepare(tokenizer, None).payload.eval
    from axo.data.preference import preference_format_for
    from axo.data.sources import read_rows

    entry = cfg.datasets[0].model_copy(update={"path": str(pairs_file), "split": "train", "data_files": None})
    pair_method = "dpo" if method == "kto" else method
    return preference_format_for(tokenizer, cfg, entry, pair_method).transform(read_rows(entry, None, cfg.seed))
