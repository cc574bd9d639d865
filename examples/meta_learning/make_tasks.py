"""Write the meta-learning example's task family: facts about countries, one kind of fact per task.

    pip install countryinfo==1.0.1               # only to regenerate; axo does not depend on it
    python examples/meta_learning/make_tasks.py  # rewrites the three JSONL files beside this file

The data are the country records that ship inside the `countryinfo` package on PyPI (version 1.0.1, pinned:
another version may hold other records, and the committed files would change). Every row asks about one
country by its English name; what the answer is depends on the task's *attribute*: its capital, region,
currency code, ISO code, top-level domain, name in German, ... (`ATTRIBUTES`). Every row has the same
instruction, so a task can be told only from its examples: "France" must become "Paris" in one task,
"EUR" in another and "Frankreich" in a third. Answers are short (one to three words) and never the question
itself (a task-blind copy of the country name would otherwise pass many translation rows). Calling codes are
left out: SmolLM2-135M knows almost none, so they would only dilute the comparison.

A task is one attribute and ten countries: `support_set` (5 rows, so 1/3/5-shot runs take the first k) and
`query_set` (5 rows). The countries are split once, by a seeded shuffle, into a training pool (3/4) and a
held-out pool (1/4): `train_tasks.jsonl` draws from the first, `held_out_tasks.jsonl` from the second. So
every attribute is met in training, but no held-out question (nor its answer, for country-specific
attributes) is ever trained on: a held-out task tests whether the model recognises the attribute from the
support rows and recalls it for countries it was not tuned on. `sft_rows.jsonl` is every training task's
support and query rows as plain alpaca rows, for the baseline "a plain LoRA trained on the same rows".
The output is deterministic (a fixed seed) and committed, so the example needs no download.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE, PINNED = "countryinfo", "1.0.1"
SEED = 19
INSTRUCTION = "Answer as the examples do."
SUPPORT, QUERY = 5, 5
TRAIN_TASKS_PER_ATTRIBUTE, HELD_OUT_TASKS_PER_ATTRIBUTE = 48, 8
HELD_OUT_SHARE = 0.25
MAX_WORDS, MAX_CHARS = 3, 24  # keeps answers short enough for exact match to mean something


def _first(value: object) -> str | None:
    """The first entry of a list field (capital, currencies, ... are lists in some records), else the text."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value.strip() else None


def _translation(lang: str) -> Callable[[dict], str | None]:
    return lambda info: _first((info.get("translations") or {}).get(lang))


ATTRIBUTES: dict[str, Callable[[dict], str | None]] = {
    "capital": lambda info: _first(info.get("capital")),
    "region": lambda info: _first(info.get("region")),
    "subregion": lambda info: _first(info.get("subregion")),
    "currency": lambda info: _first(info.get("currencies")),
    "demonym": lambda info: _first(info.get("demonym")),
    "tld": lambda info: _first(info.get("tld")),
    "alpha2": lambda info: _first((info.get("ISO") or {}).get("alpha2")),
    "alpha3": lambda info: _first((info.get("ISO") or {}).get("alpha3")),
    "language": lambda info: _first(info.get("languages")),
    "german": _translation("de"),
    "spanish": _translation("es"),
    "french": _translation("fr"),
    "italian": _translation("it"),
}


def load_countries() -> list[dict]:
    """Every country record of the pinned package whose English name is a plain, short name, sorted by name."""
    try:
        found = version(PACKAGE)
    except PackageNotFoundError:
        raise SystemExit(f"{PACKAGE} is not installed: pip install {PACKAGE}=={PINNED}") from None
    if found != PINNED:
        raise SystemExit(f"{PACKAGE} {found} is installed; the committed files come from {PINNED}: "
                         f"pip install {PACKAGE}=={PINNED}")
    # Imported here, after the check that says which version to install.
    from countryinfo import all_countries

    records = [country.info() for country in all_countries()]
    plain = [info for info in records
             if _short(info.get("name"), words=3) and not any(mark in info["name"] for mark in ",()")]
    return sorted({info["name"]: info for info in plain}.values(), key=lambda info: info["name"])


def _short(text: str | None, words: int = MAX_WORDS) -> bool:
    return bool(text) and len(text.split()) <= words and len(text) <= MAX_CHARS


def make_task(task_id: str, attribute: str, countries: list[dict], rng: random.Random) -> dict:
    """One task: SUPPORT + QUERY distinct countries of `countries` that have a short value for `attribute`."""
    answers = [(info["name"], ATTRIBUTES[attribute](info)) for info in countries]
    # An answer equal to the question ("Iran" is "Iran" in German) could be guessed without knowing the task.
    usable = [(name, answer.strip()) for name, answer in answers
              if _short(answer) and answer.strip().lower() != name.lower()]
    chosen = rng.sample(usable, SUPPORT + QUERY)
    rows = [{"instruction": INSTRUCTION, "input": name, "output": answer} for name, answer in chosen]
    return {"task_id": task_id, "support_set": rows[:SUPPORT], "query_set": rows[SUPPORT:]}


def make_family(countries: list[dict], prefix: str, per_attribute: int, rng: random.Random) -> list[dict]:
    """`per_attribute` tasks for every attribute, interleaved (capital, region, ..., capital, region, ...)."""
    return [make_task(f"{prefix}-{attribute}-{n:02d}", attribute, countries, rng)
            for n in range(per_attribute) for attribute in ATTRIBUTES]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(SEED)
    countries = load_countries()
    rng.shuffle(countries)
    cut = round(len(countries) * HELD_OUT_SHARE)
    held_pool, train_pool = countries[:cut], countries[cut:]
    train = make_family(train_pool, "train", TRAIN_TASKS_PER_ATTRIBUTE, rng)
    held_out = make_family(held_pool, "held", HELD_OUT_TASKS_PER_ATTRIBUTE, rng)
    rng.shuffle(train)
    sft_rows = [row for task in train for row in task["support_set"] + task["query_set"]]
    write_jsonl(HERE / "train_tasks.jsonl", train)
    write_jsonl(HERE / "held_out_tasks.jsonl", held_out)
    write_jsonl(HERE / "sft_rows.jsonl", sft_rows)
    print(f"{len(countries)} countries ({len(train_pool)} train, {len(held_pool)} held out); "
          f"{len(train)} training tasks, {len(held_out)} held-out tasks, {len(sft_rows)} SFT rows")


if __name__ == "__main__":
    main()
