"""Model loading details that the end-to-end training tests do not reach."""

import torch
from transformers import AutoModelForCausalLM

from axo.models.loader import embedding_rows


def test_embedding_rows_reads_the_full_shape_of_a_zero3_partitioned_weight(tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    rows = model.config.vocab_size
    assert embedding_rows(model) == rows
    # What DeepSpeed ZeRO-3 leaves on each rank after loading: an empty local slice, the full shape in
    # `ds_shape`. Reading `.shape` there once made axo "resize" an 8B model's embeddings to the tokenizer.
    weight = model.get_input_embeddings().weight
    weight.ds_shape = weight.shape
    weight.data = torch.empty(0)
    assert embedding_rows(model) == rows


def test_reinit_weights_builds_the_architecture_with_fresh_random_weights(tiny_llama_dir):
    from config_helpers import load

    from axo.models.loader import load_model
    from axo.models.tokenizer import load_tokenizer

    def weights(flag: bool) -> torch.Tensor:
        cfg = load(f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-3\nreinit_weights: {str(flag).lower()}\n"
                   "datasets:\n  - path: x.jsonl\n    type: alpaca\n").require()
        torch.manual_seed(7)  # tests/tiny_models.py built the saved weights under seed 0
        model, _ = load_model(cfg, load_tokenizer(cfg))
        return model.model.layers[0].self_attn.q_proj.weight.detach().clone()

    trained = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).model.layers[0].self_attn.q_proj.weight
    assert torch.equal(weights(False), trained)
    fresh = weights(True)
    assert fresh.shape == trained.shape and not torch.allclose(fresh, trained)
    assert torch.equal(fresh, weights(True))  # the architecture's own init, under the seed
