"""`axo evaluate` on a trained tiny run: the loss matches the Trainer's, metrics and files are written."""

from __future__ import annotations

import json

import pytest
from config_helpers import load
from typer.testing import CliRunner

from axo.cli.main import app
from axo.train.run import train


def _train_with_eval_split(folder, model_dir, adapter_lines: str):
    """2 steps on 12 alpaca rows, a quarter held out for the Trainer's eval loss; `adapter_lines` pick the kind."""
    (folder / "data.jsonl").write_text("".join(json.dumps({"instruction": f"Say {i}.", "output": f"{i}"}) + "\n"
                                               for i in range(12)))
    cfg = load(f"base_model: {model_dir}\n{adapter_lines}datasets:\n"
               f"  - path: {folder / 'data.jsonl'}\n    type: alpaca\nval_set_size: 0.25\nmicro_batch_size: 4\n"
               f"max_steps: 2\noutput_dir: {folder / 'run'}\ndataset_prepared_path: {folder / 'prepared'}\n"
               "save_strategy: 'no'\n").require()
    return train(cfg, progress=False)


@pytest.fixture(scope="module")
def run_with_eval(tmp_path_factory, tiny_llama_dir):
    folder = tmp_path_factory.mktemp("eval-run")
    return folder, _train_with_eval_split(folder, tiny_llama_dir, "learning_rate: 1e-3\nadapter: lora\nlora_r: 4\n")


def test_loss_equals_the_trainers_eval_loss_and_files_are_written(run_with_eval):
    folder, result = run_with_eval
    references = folder / "refs.jsonl"
    references.write_text(json.dumps({"instruction": "Say 1.", "output": "1"}) + "\n" +
                          json.dumps({"input": [{"role": "user", "content": "Say 2."}], "ideal": ["2", "two"]}) + "\n")
    outcome = CliRunner().invoke(app, ["evaluate", str(result.output_dir), "-r", str(references), "--max-new-tokens", "3",
                                       "--must-not-match", "rm -rf", "--compare-base"])
    assert outcome.exit_code == 0, outcome.output
    saved = json.loads((result.output_dir / "eval_results.json").read_text())
    assert set(saved) == {"adapter", "base"}
    adapter = saved["adapter"]
    assert adapter["eval_loss"] == pytest.approx(result.eval_loss, rel=1e-4)
    assert adapter["perplexity"] == pytest.approx(2.718281828 ** adapter["eval_loss"], rel=1e-6)
    generation = adapter["generation"]
    assert generation["rows"] == 2 and 0.0 <= generation["exact_match"] <= 1.0
    assert generation["must_not_match_violation_rate"] == 0.0
    assert saved["base"]["eval_loss"] != adapter["eval_loss"]


def test_nothing_to_evaluate_is_a_clear_error(tmp_path, tiny_llama_dir):
    (tmp_path / "data.jsonl").write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n")
    cfg = load(f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-3\nadapter: lora\nlora_r: 4\ndatasets:\n"
               f"  - path: {tmp_path / 'data.jsonl'}\n    type: alpaca\nmax_steps: 1\noutput_dir: {tmp_path / 'run'}\n"
               f"dataset_prepared_path: {tmp_path / 'prepared'}\nsave_strategy: 'no'\n").require()
    train(cfg, progress=False)
    outcome = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run")])
    assert outcome.exit_code == 1 and "nothing to evaluate" in outcome.stderr


@pytest.mark.parametrize(("kind", "keys"), [("ia3", ""), ("loha", "loha_r: 4\n"), ("prefix_tuning", ""),
                                            ("prompt_tuning", "prompt_tuning_num_virtual_tokens: 3\n")])
def test_every_adapter_kind_evaluates_to_the_trainers_loss(kind, keys, tmp_path, tiny_llama_dir):
    """The loss `axo evaluate` computes is the one the Trainer reported, for kinds that scale, replace or prepend
    (prompt tuning's logits include its virtual tokens' positions), and generation metrics run."""
    result = _train_with_eval_split(tmp_path, tiny_llama_dir, f"learning_rate: 1e-2\nadapter: {kind}\n{keys}")
    (tmp_path / "refs.jsonl").write_text(json.dumps({"instruction": "Say 1.", "output": "1"}) + "\n")
    outcome = CliRunner().invoke(app, ["evaluate", str(result.output_dir), "-r", str(tmp_path / "refs.jsonl"),
                                       "--max-new-tokens", "3"])
    assert outcome.exit_code == 0, outcome.output
    saved = json.loads((result.output_dir / "eval_results.json").read_text())["adapter"]
    assert saved["eval_loss"] == pytest.approx(result.eval_loss, rel=1e-4)
    assert saved["generation"]["rows"] == 1
