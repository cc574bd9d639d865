"""GPU check of the recompute plan `axo train` chooses (train/recompute.py, plan/): with room to spare nothing is
recomputed; under a `gpu_memory_limit` only as many layers keep their activations as fit, and the run stays
under the cap; the run log and provenance say which plan, its predicted and its measured peak."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    import tiny_models

    return tiny_models.build_llama_bf16(tmp_path_factory.mktemp("plan-model"), vocab_size=32000, hidden_size=1024,
                                        intermediate_size=2816, num_hidden_layers=8, num_attention_heads=16,
                                        num_key_value_heads=4)


def _train(tmp_path: Path, model_dir: Path, extra: str, capsys) -> tuple[dict, str]:
    from axo.config.load import load_config
    from axo.train.run import train

    tmp_path.mkdir(parents=True, exist_ok=True)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"input_ids": [10 + i % 500 for i in range(4096)]}) + "\n" for _ in range(12)))
    (tmp_path / "c.yml").write_text(
        f"base_model: {model_dir}\nlearning_rate: 2e-4\nadapter: lora\nlora_r: 16\nlora_alpha: 32\n"
        f"lora_target_linear: true\ndatasets:\n  - path: {rows}\nsequence_len: 4096\nmicro_batch_size: 2\n"
        f"max_steps: 3\nbf16: true\ngradient_checkpointing: true\nsave_strategy: 'no'\n"
        f"output_dir: {tmp_path / 'out'}\ndataset_prepared_path: {tmp_path / 'prepared'}\n{extra}")
    torch.cuda.reset_peak_memory_stats()
    try:
        train(load_config(tmp_path / "c.yml").require(), progress=False)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, 0)
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    return provenance["memory_plan"], capsys.readouterr().out


def test_nothing_is_recomputed_when_every_layer_fits(tmp_path: Path, model_dir: Path, capsys):
    plan, log = _train(tmp_path, model_dir, "", capsys)
    assert plan["kept_layers"] == plan["layers"] == 8
    assert "memory plan: no recompute (every layer's activations fit the budget" in log
    assert 0 < plan["measured_peak_gib"] <= plan["budget_gib"]


def test_a_memory_cap_keeps_only_the_layers_that_fit(tmp_path: Path, model_dir: Path, capsys):
    first, _ = _train(tmp_path / "first", model_dir, "", capsys)
    cap = round((first["predicted_peak_gib"] + first["predicted_parts_gib"]["weights"]) / 2, 2)  # between the two
    plan, log = _train(tmp_path / "capped", model_dir, f"gpu_memory_limit: {cap}GiB\n", capsys)
    assert 1 <= plan["kept_layers"] < plan["layers"], plan
    assert f"(max_memory {cap:g} GiB)" in log
    assert plan["measured_peak_gib"] <= cap


def test_offloading_recomputes_every_layer_and_pins_what_the_plan_says(tmp_path: Path, model_dir: Path, capsys):
    torch._C._host_emptyCache()  # pinned blocks an earlier test freed would be reused, not counted
    torch.cuda.reset_peak_host_memory_stats()
    plan, log = _train(tmp_path, model_dir, "activation_offloading: true\n", capsys)
    pinned = torch.cuda.host_memory_stats()["allocated_bytes.peak"] / 2**30
    assert plan["offload"] and plan["kept_layers"] == 0, plan
    assert "inputs offloaded" in log
    assert abs(pinned - plan["predicted_host_gib"]) <= 0.1 * pinned, (pinned, plan)
