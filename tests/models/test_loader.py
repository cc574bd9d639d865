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
