"""A LoRA classifier run (tiny BERT, text pairs, class names) at inference: `axo inference` prints the label and its
probabilities (batch and interactive), `axo evaluate --references` scores rows in the dataset's shape, and
`axo merge-lora` gives a model whose logits are the adapter model's (the head comes from `modules_to_save`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from config_helpers import load
from typer.testing import CliRunner

from axo.cli.main import app
from axo.train.run import train

ROWS = [{"question": f"What is the capital of France? {i}", "answer": "Paris." if i % 2 else "Berlin.",
         "verdict": "right" if i % 2 else "wrong"} for i in range(16)]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_bert_dir) -> Path:
    folder = tmp_path_factory.mktemp("lora-classifier")
    (folder / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    text = (f"base_model: {tiny_bert_dir}\nnum_labels: 2\nadapter: lora\nlora_r: 4\nlora_alpha: 8\n"
            f"lora_target_linear: true\ndatasets:\n  - path: {folder / 'rows.jsonl'}\n    type: classification\n"
            "    field: question\n    field_pair: answer\n    field_label: verdict\nval_set_size: 0.25\n"
            f"micro_batch_size: 4\nmax_steps: 2\nlearning_rate: 1e-2\noutput_dir: {folder / 'run'}\n"
            f"dataset_prepared_path: {folder / 'prepared'}\nsave_strategy: 'no'\n")
    train(load(text).require(), progress=False)
    return folder / "run"


def test_batch_inference_writes_labels_and_probabilities(lora_run, tmp_path):
    requests = tmp_path / "in.jsonl"
    requests.write_text("".join(json.dumps({"question": row["question"], "answer": row["answer"]}) + "\n"
                                for row in ROWS[:3]))
    result = CliRunner().invoke(app, ["inference", str(lora_run), "-i", str(requests), "-o",
                                      str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert set(row["probabilities"]) == {"right", "wrong"}
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)


def test_interactive_inference_reads_both_texts_or_a_json_line(lora_run):
    typed = "What is the capital of France?\nParis.\n" + json.dumps({"question": "Hi", "answer": "Berlin."}) + "\n"
    result = CliRunner().invoke(app, ["inference", str(lora_run)], input=typed)
    assert result.exit_code == 0, result.output
    assert "question> " in result.output and "answer> " in result.output
    assert result.output.count("label: ") == 2 and "  right: 0." in result.output and "  wrong: 0." in result.output


def test_evaluate_reads_references_in_the_datasets_shape(lora_run, tmp_path):
    references = tmp_path / "held_out.jsonl"
    references.write_text("".join(json.dumps(row) + "\n" for row in ROWS[:6]))
    result = CliRunner().invoke(app, ["evaluate", str(lora_run), "--references", str(references), "-o",
                                      str(tmp_path / "results.json")])
    assert result.exit_code == 0, result.output
    adapter = json.loads((tmp_path / "results.json").read_text())["adapter"]
    assert adapter["rows"] == 6 and adapter["confusion_matrix"]["labels"] == ["right", "wrong"]
    assert sum(map(sum, adapter["confusion_matrix"]["counts"])) == 6
    assert adapter["confusion_matrix"]["counts"][0][0] + adapter["confusion_matrix"]["counts"][1][1] == round(
        adapter["accuracy"] * 6)


def test_merged_classifier_gives_the_adapter_models_logits(lora_run, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from axo.infer.loading import load_for_inference
    from axo.infer.run_dir import open_run

    result = CliRunner().invoke(app, ["merge-lora", str(lora_run), "-o", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    adapter_model, tokenizer = load_for_inference(open_run(lora_run), device="cpu")
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    assert merged.config.id2label == {0: "right", 1: "wrong"}
    batch = AutoTokenizer.from_pretrained(tmp_path / "merged")([r["question"] for r in ROWS[:4]],
                                                               [r["answer"] for r in ROWS[:4]], padding=True,
                                                               return_tensors="pt")
    with torch.no_grad():
        expected, got = adapter_model(**batch).logits, merged(**batch).logits
    assert expected.abs().max() > 1e-3  # a trained head, not zeros
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
