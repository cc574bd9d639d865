"""Row order and the eval split match a real Axolotl 0.21.0 (tests/fixtures/row_order.json).

The fixture was produced once by tests/fixtures/row_order_oracle.py (`axolotl preprocess` + Axolotl's own
`load_datasets`): alpaca rows tagged "Item a07." and, per scenario, the tags of the train and eval rows in
order. Scenarios: one dataset with over-long rows dropped, two merged datasets shuffled or not, `val_set_size`
as a fraction and as a count, `dataset_exact_deduplication`, and `test_datasets`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from axo.data.errors import DataError
from axo.data.prepare import prepare_data

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "row_order.json").read_text(encoding="utf-8"))


def _entry(folder: Path, spec: str | dict) -> dict:
    """The `datasets:` entry of a fixture file name, or of {"file": name, other entry keys}."""
    spec = {"file": spec} if isinstance(spec, str) else spec
    return {"path": str(folder / f"{spec['file']}.jsonl"), "type": "alpaca",
            **{key: value for key, value in spec.items() if key != "file"}}


def _tags(tok, samples) -> list[str]:
    return [re.search(r"Item ([abd]\d\d)\.", tok.decode(s.input_ids))[1] for s in samples]


def _write_files(folder: Path) -> None:
    for file, rows in FIXTURE["rows"].items():
        (folder / f"{file}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.mark.parametrize("name", sorted(FIXTURE["expected"]))
def test_same_train_and_eval_rows_in_the_same_order_as_axolotl(name, tok, make_cfg, tmp_path):
    _write_files(tmp_path)
    scenario = FIXTURE["scenarios"][name]
    body = {"sequence_len": FIXTURE["sequence_len"], **scenario["settings"],
            "datasets": [_entry(tmp_path, spec) for spec in scenario["train"]]}
    if scenario["test"]:
        body["test_datasets"] = [_entry(tmp_path, spec) for spec in scenario["test"]]
    prepared = prepare_data(make_cfg(yaml.safe_dump(body)), tok)
    expected = FIXTURE["expected"][name]
    assert _tags(tok, prepared.train) == expected["train"]
    assert _tags(tok, prepared.eval) == expected["eval"]


def test_drops_and_duplicates_are_counted_per_dataset(tok, make_cfg, tmp_path):
    _write_files(tmp_path)
    body = {"sequence_len": FIXTURE["sequence_len"], "dataset_exact_deduplication": True, "val_set_size": 0.15,
            "datasets": [_entry(tmp_path, name) for name in ("d", "b")]}
    prepared = prepare_data(make_cfg(yaml.safe_dump(body)), tok)
    d, b = prepared.meta["datasets"]
    # d: 30 rows, 4 over-long (one of them a repeat), 3 short repeats; b: 25 rows, 2 over-long
    assert (d["rows"], d["samples"], d["dropped"]) == (30, 23, {"longer than sequence_len": 4, "exact duplicate": 3})
    assert (b["rows"], b["samples"], b["dropped"]) == (25, 23, {"longer than sequence_len": 2})
    assert len(prepared.train) + len(prepared.eval) == 46


def test_a_dataset_that_only_repeats_another_is_an_error(tok, make_cfg, tmp_path, write_jsonl):
    rows = [{"instruction": "Say hi", "output": "hi"}, {"instruction": "Say bye", "output": "bye"}]
    first, second = write_jsonl(rows, "first.jsonl"), write_jsonl(rows, "second.jsonl")
    body = {"dataset_exact_deduplication": True, "shuffle_merged_datasets": False,
            "datasets": [{"path": str(first), "type": "alpaca"}, {"path": str(second), "type": "alpaca"}]}
    with pytest.raises(DataError) as caught:
        prepare_data(make_cfg(yaml.safe_dump(body)), tok)
    (problem,) = caught.value.problems
    assert problem.key == "datasets[1]" and "2 exact duplicate" in problem.message
