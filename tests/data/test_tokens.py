"""The direct Rust batch encoder gives exactly what the transformers tokenizer call gives."""

from __future__ import annotations

from axo.data.tokens import encode_batch, encode_batch_with_offsets

TEXTS = ["Give three tips for staying healthy.", "", "  spaces  and\nnewlines\n", "<|im_start|>user\nHi<|im_end|>\n",
         "Unicode: café, 東京, 🙂"]


def test_ids_match_the_tokenizer_call(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    for special in (True, False):
        assert encode_batch(tokenizer, TEXTS, add_special_tokens=special) == \
            tokenizer(TEXTS, add_special_tokens=special)["input_ids"]


def test_offsets_match_the_tokenizer_call(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    ids, offsets = encode_batch_with_offsets(tokenizer, TEXTS)
    expected = tokenizer(TEXTS, add_special_tokens=False, return_offsets_mapping=True)
    assert ids == expected["input_ids"]
    assert [[tuple(o) for o in row] for row in offsets] == [[tuple(o) for o in row] for row in expected["offset_mapping"]]


def test_truncation_set_in_the_tokenizer_file_is_ignored_as_transformers_does(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    tokenizer.backend_tokenizer.enable_truncation(3)
    long_text = ["The quick brown fox jumps over the lazy dog."]
    assert len(encode_batch(tokenizer, long_text)[0]) > 3
