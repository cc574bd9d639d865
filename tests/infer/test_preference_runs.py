"""After preference tuning, the usual commands work on the run: `axo evaluate` scores pairs (a DPO policy against
its base with the adapter disabled; a reward model's pairwise accuracy), `axo inference` makes a reward model
score conversations, and `axo merge-lora` merges a DPO adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from config_helpers import load
from typer.testing import CliRunner

from axo.cli.main import app
from axo.train.run import train

ROWS = [{"question": f"What is {i} plus {i}?", "input": f"What is {i} plus {i}?", "chosen": f"It is {2 * i}.",
         "rejected": f"Maybe {i}."} for i in range(12)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_llama_dir) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("preference-runs")
    (folder / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    out = {}
    for name, head, kind in (("dpo", "rl: dpo\nrl_beta: 0.5\n", "chatml.intel"),
                             ("reward", "reward_model: true\nchat_template: chatml\n", "bradley_terry.chat_template")):
        cfg = load(f"base_model: {tiny_llama_dir}\n{head}learning_rate: 5e-2\nadapter: lora\nlora_r: 4\n"
                   f"lora_target_linear: true\ndatasets:\n  - path: {folder / 'pairs.jsonl'}\n    type: {kind}\n"
                   f"val_set_size: 4\nmicro_batch_size: 4\nmax_steps: 4\nseed: 1\noutput_dir: {folder / name}\n"
                   f"dataset_prepared_path: {folder / 'prepared'}\nsave_strategy: 'no'\n").require()
        out[name] = train(cfg, progress=False).output_dir
    return out


def test_evaluate_scores_a_dpo_policy_against_its_base(runs):
    result = CliRunner().invoke(app, ["evaluate", str(runs["dpo"]), "--compare-base"])
    assert result.exit_code == 0, result.output
    scores = json.loads((runs["dpo"] / "eval_results.json").read_text())
    adapter, base = scores["adapter"]["preference"], scores["base"]["preference"]
    assert adapter["pairs"] == base["pairs"] == 4
    assert adapter["reward_accuracy"] == 1.0 and adapter["reward_margin"] > 0  # 4 steps at lr 5e-2 on 8 pairs
    assert "reward_accuracy" not in base  # the base has no reference to be compared with
    assert 0 <= base["preference_accuracy"] <= adapter["preference_accuracy"] == 1.0


def test_evaluate_pairs_file_and_reward_model_accuracy(runs, tmp_path):
    pairs = tmp_path / "held_out.jsonl"
    pairs.write_text("".join(json.dumps(row) + "\n" for row in ROWS[:6]))
    result = CliRunner().invoke(app, ["evaluate", str(runs["reward"]), "--pairs", str(pairs), "-o",
                                      str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "r.json").read_text())["adapter"]["preference"]
    assert scores["pairs"] == 6 and scores["pairwise_accuracy"] >= 5 / 6 and scores["mean_margin"] > 0


def test_pairs_on_an_sft_run_or_a_missing_file_are_clear_errors(runs, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", str(runs["dpo"]), "--pairs", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1 and "nope.jsonl: no such file" in result.output


def test_inference_with_a_reward_model_writes_scores(runs, tmp_path):
    rows = [{"input": "What is 3 plus 3?", "output": "It is 6."}, {"input": "What is 3 plus 3?", "output": "Maybe 3."},
            {"messages": [{"role": "user", "content": "What is 4 plus 4?"}, {"role": "assistant", "content": "It is 8."}]}]
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = CliRunner().invoke(app, ["inference", str(runs["reward"]), "-i", str(source), "-o", str(target)])
    assert result.exit_code == 0, result.output
    scored = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["output"] if "output" in row else None for row in scored] == ["It is 6.", "Maybe 3.", None]
    assert scored[0]["score"] > scored[1]["score"]


def test_inference_with_a_reward_model_names_a_row_it_cannot_score(runs, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"input": "only a prompt"}) + "\n")
    result = CliRunner().invoke(app, ["inference", str(runs["reward"]), "-i", str(source), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "in.jsonl" in result.output and "scores a conversation" in result.output
    assert not (tmp_path / "o").exists()


def test_merge_lora_merges_a_dpo_adapter(runs, tmp_path):
    result = CliRunner().invoke(app, ["merge-lora", str(runs["dpo"]), "-o", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "merged" / "config.json").is_file()
