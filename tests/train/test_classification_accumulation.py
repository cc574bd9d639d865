"""The classification mode's loss under gradient accumulation: 1, 2 or 4 micro-batches of one batch of 16 rows give
the same logged loss, the same gradient norm and the same updated weights (SGD, so the update is the gradient
itself), on a BERT encoder and on a Llama classifier — the two kinds of forward transformers' Trainer treats
differently (before the mode computed its own loss, the loss grew with the accumulation steps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from config_helpers import load
from safetensors.torch import load_file

from axo.train.run import train

ROWS = [{"query": f"What is the capital of France? {i}", "response": "Paris." if i % 3 else "The quick brown fox.",
         "score": i % 3} for i in range(16)]
SPLITS = ((16, 1), (8, 2), (4, 4))  # micro_batch_size × gradient_accumulation_steps = 16 rows per step
NO_DROPOUT = {"bert": "model_config:\n  hidden_dropout_prob: 0.0\n  attention_probs_dropout_prob: 0.0\n", "llama": ""}


def _train(folder: Path, model_dir: Path, arch: str, micro: int, accumulation: int) -> tuple[dict, dict]:
    text = (f"base_model: {model_dir}\nnum_labels: 3\n{NO_DROPOUT[arch]}datasets:\n  - path: {folder / 'rows.jsonl'}\n"
            "    type: classification\n    field: query\n    field_pair: response\n    field_label: score\n"
            f"micro_batch_size: {micro}\ngradient_accumulation_steps: {accumulation}\nmax_steps: 1\n"
            "optimizer: sgd\nlearning_rate: 0.5\nlr_scheduler: constant\nmax_grad_norm: 1.0e9\nlogging_steps: 1\n"
            f"output_dir: {folder / f'{arch}-{micro}'}\ndataset_prepared_path: {folder / 'prepared'}\n"
            "save_strategy: 'no'\nsequence_len: 64\n")
    result = train(load(text).require(), progress=False)
    (step,) = [record for record in result.metrics if "loss" in record]
    return step, load_file(str(folder / f"{arch}-{micro}" / "model.safetensors"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert_dir, tiny_llama_dir) -> dict[str, list[tuple[dict, dict]]]:
    folder = tmp_path_factory.mktemp("accumulation")
    (folder / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    models = {"bert": tiny_bert_dir, "llama": tiny_llama_dir}
    torch.manual_seed(0)
    return {arch: [_train(folder, models[arch], arch, micro, steps) for micro, steps in SPLITS] for arch in models}


@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_accumulation_keeps_loss_gradients_and_weights(runs, arch):
    (one, weights), *split = runs[arch]
    assert one["loss"] > 0.5  # about ln 3 for a fresh head: a real loss, not a sum over micro-batches
    for step, other in split:
        assert step["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-6)
        assert step["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-4)
        assert other.keys() == weights.keys()
        for name, tensor in weights.items():
            torch.testing.assert_close(other[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
