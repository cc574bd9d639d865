"""examples/meta_learning: the meta-adapter and its SFT baseline train (tiny model in place of SmolLM2), and
`axo evaluate --tasks` adapts both on held-out tasks and compares them with the base model's in-context learning."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner

from axo.cli.main import app
from axo.infer.few_shot import few_shot_evaluation
from axo.infer.run_dir import open_run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "meta_learning"
HELD_OUT = EXAMPLE / "held_out_tasks.jsonl"


def test_committed_tasks_have_the_shape_the_evaluation_needs():
    held_out = [json.loads(line) for line in HELD_OUT.read_text().splitlines()]
    train = [json.loads(line) for line in (EXAMPLE / "train_tasks.jsonl").read_text().splitlines()]
    assert len(held_out) == 104 and len(train) == 624
    assert all(len(t["support_set"]) == 5 and len(t["query_set"]) == 5 for t in held_out + train)
    instructions = {row["instruction"] for t in held_out + train for row in t["support_set"] + t["query_set"]}
    assert instructions == {"Answer as the examples do."}  # only a task's examples say what it asks
    seen = {row["input"] for t in train for row in t["support_set"] + t["query_set"]}
    assert not seen & {row["input"] for t in held_out for row in t["support_set"] + t["query_set"]}


def test_meta_adapter_and_sft_baseline_train_and_adapt_on_held_out_tasks(train_example, tmp_path):
    # The tiny test tokenizer spends more tokens on a row than SmolLM2's, so its 5 support rows and a query need more
    # than the example's 512.
    meta = train_example(EXAMPLE / "config.yml", "run", "--sequence_len", "1024")
    sft = train_example(EXAMPLE / "sft_config.yml", "sft")
    out = tmp_path / "few_shot.json"
    result = CliRunner().invoke(app, ["evaluate", str(meta), "--tasks", str(HELD_OUT), "--shots", "0,1", "--limit", "1",
                                      "--compare-sft", str(sft), "--max-new-tokens", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "few-shot adaptation on 1 held-out task " in result.output
    results = json.loads(out.read_text())
    assert results["tasks"] == 1 and results["queries"] == 5 and results["settings"]["inner_lr"] == 0.3
    # The example trains with `support_in_context`: each method adapted is then asked after the same examples.
    assert results["settings"]["support_in_context"] is True
    methods = results["few_shot"]
    assert set(methods) == {"meta-adapter (adapted, and the examples in context)", "meta-adapter (in context)",
                            "base (in context)", "SFT adapter (adapted, and the examples in context)",
                            "SFT adapter (in context)"}
    for model in ("meta-adapter", "SFT adapter"):
        both, in_context = methods[f"{model} (adapted, and the examples in context)"], methods[f"{model} (in context)"]
        assert both["k=0"] == in_context["k=0"]  # no example yet: the same model on the same prompts
        assert in_context["k=1"]["query_loss"] != in_context["k=0"]["query_loss"]  # the example is in the prompt
        # the example moved the weights too: not the in-context score
        assert both["k=1"]["query_loss"] != in_context["k=1"]["query_loss"]
    assert methods["base (in context)"]["k=0"]["query_loss"] != methods["meta-adapter (in context)"]["k=0"]["query_loss"]
    assert all(0 <= m[k]["normalized_match"] <= 1 for m in methods.values() for k in ("k=0", "k=1"))

    too_many = CliRunner().invoke(app, ["evaluate", str(meta), "--tasks", str(HELD_OUT), "--shots", "9", "--limit", "1"])
    assert too_many.exit_code == 1 and "fewer than 9 support rows" in too_many.output
    not_meta = CliRunner().invoke(app, ["evaluate", str(sft), "--tasks", str(HELD_OUT)])
    assert not_meta.exit_code == 1 and "is not a meta-learning run" in not_meta.output

    # A run trained without `support_in_context` is adapted on the examples and asked without them.
    run = open_run(meta, command="evaluate")
    meta_cfg = run.cfg.meta_learning.model_copy(update={"support_in_context": False})
    plain_run = replace(run, cfg=run.cfg.model_copy(update={"meta_learning": meta_cfg}))
    plain = few_shot_evaluation(plain_run, HELD_OUT, [0, 1], max_new_tokens=4, limit=1, say=lambda _: None)
    found = plain["few_shot"]
    assert set(found) == {"meta-adapter (adapted)", "meta-adapter (in context)", "base (in context)"}
    assert plain["settings"]["support_in_context"] is False
    assert found["meta-adapter (adapted)"]["k=0"] == found["meta-adapter (in context)"]["k=0"]
    assert found["meta-adapter (in context)"] == methods["meta-adapter (in context)"]  # the same prompts
    # adapted on the example, not asked after it: neither the in-context score nor the adapted-and-in-context one
    assert found["meta-adapter (adapted)"]["k=1"]["query_loss"] not in (
        found["meta-adapter (in context)"]["k=1"]["query_loss"],
        methods["meta-adapter (adapted, and the examples in context)"]["k=1"]["query_loss"])
