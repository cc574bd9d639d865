"""Generation metrics on outputs with known answers; pure functions, each returning a rate in [0, 1]."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the SQuAD normalisation)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def _answers(reference: str | list[str]) -> list[str]:
    return [reference] if isinstance(reference, str) else [str(r) for r in reference]


def exact_match(prediction: str, reference: str | list[str]) -> bool:
    return prediction.strip() in [r.strip() for r in _answers(reference)]


def normalized_match(prediction: str, reference: str | list[str]) -> bool:
    return normalize(prediction) in [normalize(r) for r in _answers(reference)]


def first_choice(prediction: str, choices: list[str]) -> str | None:
    """The choice an output names first, as whole words after normalisation (so "This message is about
    billing." names `billing`), or None when it names none. A longer choice wins over one it contains."""
    text = f" {normalize(prediction)} "
    found = []
    for choice in choices:
        position = text.find(f" {normalize(choice)} ")
        if position >= 0 and normalize(choice):
            found.append((position, -len(normalize(choice)), choice))
    return min(found)[2] if found else None


def choice_match(prediction: str, reference: str | list[str], choices: list[str]) -> bool:
    """Whether the first choice the output names is (one of) the reference answer(s)."""
    chosen = first_choice(prediction, choices)
    return chosen is not None and normalize(chosen) in [normalize(r) for r in _answers(reference)]


def majority_baseline(references: list[str | list[str]]) -> tuple[str, float]:
    """The most common answer among references and the score of always giving it (the majority-class
    baseline a classifier has to beat)."""
    counts = Counter(normalize(_answers(r)[0]) for r in references)
    answer, hits = counts.most_common(1)[0]
    return answer, hits / len(references)


def parse_json(prediction: str) -> Any:
    """The JSON value of an output (a ```json fence around it is allowed); raises ValueError if none."""
    text = prediction.strip()
    fenced = _FENCE.match(text)
    return json.loads(fenced.group(1) if fenced else text)


def json_valid(prediction: str) -> bool:
    try:
        parse_json(prediction)
    except ValueError:
        return False
    return True


def schema_valid(prediction: str, schema: dict[str, Any]) -> bool:
    try:
        import jsonschema
    except ImportError:
        from axo.config.problems import ConfigError, Kind, Problem, Severity

        raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "json_schema",
                                   "--json-schema needs the jsonschema package.", "pip install 'axo[eval]'")]) from None

    try:
        jsonschema.validate(parse_json(prediction), schema)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


def regex_rates(predictions: list[str], must_match: list[str], must_not_match: list[str]) -> dict[str, float]:
    """Share of outputs matching every required pattern, and share matching any forbidden one."""
    required = [re.compile(p) for p in must_match]
    forbidden = [re.compile(p) for p in must_not_match]
    n = max(len(predictions), 1)
    rates = {}
    if required:
        rates["must_match_rate"] = sum(all(r.search(p) for r in required) for p in predictions) / n
    if forbidden:
        rates["must_not_match_violation_rate"] = sum(any(f.search(p) for f in forbidden) for p in predictions) / n
    return rates


def majority(samples: list[str]) -> tuple[str, float]:
    """The most common normalised answer among samples, and the share of samples that gave it."""
    counts = Counter(normalize(s) for s in samples)
    answer, votes = counts.most_common(1)[0]
    original = next(s for s in samples if normalize(s) == answer)
    return original, votes / len(samples)
