"""The classification mode end to end on the tiny BERT: the shipped critique-classifier example trains with only its
base model swapped and evaluates (accuracy, macro-F1, confusion matrix; the fresh head of the base beside it),
class names reach the saved model's `id2label`, and a regression head trains and evaluates with MAE/RMSE."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from axo.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "critique_classifier"


def _train(config: Path, folder: Path, *overrides: str) -> Path:
    run = folder / "run"
    result = CliRunner().invoke(app, ["train", str(config), "--output_dir", str(run), "--dataset_prepared_path",
                                      str(folder / "prepared"), *overrides])
    assert result.exit_code == 0, result.output
    return run


def _evaluate(run: Path, *options: str) -> tuple[dict, str]:
    result = CliRunner().invoke(app, ["evaluate", str(run), *options])
    assert result.exit_code == 0, result.output
    return json.loads((run / "eval_results.json").read_text()), result.output


@pytest.fixture(scope="module")
def example_run(tmp_path_factory, tiny_bert_dir) -> Path:
    return _train(EXAMPLE / "config.yml", tmp_path_factory.mktemp("critique"), "--base_model", str(tiny_bert_dir),
                  "--max_steps", "3")


def test_the_example_is_in_the_plans_shape():
    rows = [json.loads(line) for line in (EXAMPLE / "critiques.jsonl").read_text().splitlines()]
    assert all(set(row) == {"query", "response", "score"} for row in rows)
    assert {row["score"] for row in rows} == set(range(11))


def test_the_example_trains_as_a_pair_classifier(example_run):
    config = json.loads((example_run / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert len(config["id2label"]) == 11
    assert config["problem_type"] == "single_label_classification"
    provenance = json.loads((example_run / "provenance.json").read_text())
    assert (provenance["method"], provenance["train_rows"], provenance["eval_rows"]) == ("classification", 122, 22)
    prepared = next((example_run.parent / "prepared").glob("*/train.arrow"))
    with pa.memory_map(str(prepared)) as source:
        table = pa.ipc.open_stream(source).read_all()
    types = table.column("token_type_ids").to_pylist()
    assert all(0 < sum(row) < len(row) for row in types)  # every row is a pair: segment 1 is the response


def test_the_example_evaluates_against_a_fresh_head(example_run):
    results, output = _evaluate(example_run, "--compare-base")
    for name in ("model", "base"):
        result = results[name]
        assert result["rows"] == 22 and 0.0 <= result["accuracy"] <= 1.0 and 0.0 <= result["macro_f1"] <= 1.0
        matrix = result["confusion_matrix"]
        assert matrix["labels"] == [str(i) for i in range(11)]
        assert len(matrix["counts"]) == 11 and sum(map(sum, matrix["counts"])) == 22
        assert result["accuracy"] == sum(matrix["counts"][i][i] for i in range(11)) / 22
    assert "accuracy" in output and "macro_f1" in output and "confusion matrix (model)" in output


def test_class_names_reach_the_saved_config(tmp_path, tiny_bert_dir):
    rows = [{"text": f"This movie was {'wonderful' if i % 2 else 'bad'}.", "label": ["bad", "good"][i % 2]}
            for i in range(8)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "cfg.yml").write_text(f"base_model: {tiny_bert_dir}\nnum_labels: 2\ndatasets:\n  - path: rows.jsonl\n"
                                      "    type: classification\nmicro_batch_size: 4\nmax_steps: 1\n"
                                      "learning_rate: 1e-3\nsave_strategy: 'no'\n")
    run = _train(tmp_path / "cfg.yml", tmp_path)
    config = json.loads((run / "config.json").read_text())
    assert config["id2label"] == {"0": "bad", "1": "good"} and config["label2id"] == {"bad": 0, "good": 1}


def test_regression_trains_and_evaluates_mae(tmp_path, tiny_bert_dir):
    rows = [{"query": f"Question {i}?", "response": "Paris." if i % 2 else "Hello", "score": float(i % 5)}
            for i in range(16)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "cfg.yml").write_text(f"base_model: {tiny_bert_dir}\nnum_labels: 1\nproblem_type: regression\n"
                                      "datasets:\n  - path: rows.jsonl\n    type: classification\n    field: query\n"
                                      "    field_pair: response\n    field_label: score\nval_set_size: 0.25\n"
                                      "micro_batch_size: 4\nmax_steps: 2\nlearning_rate: 1e-3\nsave_strategy: 'no'\n")
    run = _train(tmp_path / "cfg.yml", tmp_path)
    assert json.loads((run / "config.json").read_text())["problem_type"] == "regression"
    results, _ = _evaluate(run)
    model = results["model"]
    assert model["rows"] == 4 and 0.0 < model["mae"] <= model["rmse"] and "accuracy" not in model


RULE_BASE = "base_model: ./m\nlearning_rate: 1e-4\ndatasets:\n  - path: d.jsonl\n    type: {kind}\n"


@pytest.mark.parametrize(("head", "kind", "key", "fragment"), [
    ("", "classification", "datasets[0].type", "`num_labels` is not set"),
    ("num_labels: 2\nmodel_type: LlamaForCausalLM\n", "classification", "model_type", "has no classification head"),
    ("model_type: BertForSequenceClassification\n", "alpaca", "model_type", "`num_labels` is not set"),
    ("num_labels: 2\n", "alpaca", "datasets[0].type", "is not `classification`"),
    ("num_labels: 3\nproblem_type: regression\n", "classification", "num_labels", "gives each row one number"),
    ("problem_type: regression\n", "alpaca", "problem_type", "without `num_labels`"),
    ("num_labels: 2\nbatch_flattening: true\n", "classification", "batch_flattening", "one row per sample"),
])
def test_classification_settings_that_disagree_are_errors(head, kind, key, fragment):
    from config_helpers import load

    loaded = load(head + RULE_BASE.format(kind=kind))
    assert [(p.key, fragment in p.message) for p in loaded.errors] == [(key, True)]


@pytest.mark.parametrize(("model_type", "expected"), [
    (None, "AutoModelForSequenceClassification"), ("BertForSequenceClassification", "BertForSequenceClassification")])
def test_model_type_is_honoured_with_num_labels(tiny_bert_dir, model_type, expected):
    from config_helpers import load
    from transformers import AutoConfig

    from axo.models.loader import _model_class

    head = "num_labels: 2\n" + (f"model_type: {model_type}\n" if model_type else "")
    cfg = load(head + RULE_BASE.format(kind="classification")).require()
    cls = _model_class(cfg, AutoConfig.from_pretrained(tiny_bert_dir))
    assert cls.__name__ == expected
