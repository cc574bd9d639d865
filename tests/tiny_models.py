"""Tiny real-format models and a locally trained tokenizer, built on CPU in seconds.

Everything is saved with `save_pretrained`, so tests load it back through the same code paths as a
real model directory (AutoTokenizer / AutoModelForCausalLM / axo's loaders). No network is needed.

- Tokenizer: byte-level BPE trained here with `tokenizers`; BOS `<s>` is added to every encoded text
  (like Llama), EOS `</s>`, PAD `<pad>`, and ChatML turn markers `<|im_start|>` / `<|im_end|>` with a
  ChatML chat template. End-of-turn (`<|im_end|>`) and end-of-sequence (`</s>`) are different tokens, so
  the eos/eot masking rules are observable.
- Models: Llama, Qwen2 and Mistral architectures, 2 layers, hidden size 64, grouped-query attention.
"""

from __future__ import annotations

from pathlib import Path

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, IM_START, IM_END]
VOCAB_SIZE = 600

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

ARCHITECTURES = ("llama", "qwen2", "mistral")

_CORPUS_LINES = [
    "Below is an instruction that describes a task, paired with an input that provides further context.",
    "Write a response that appropriately completes the request.",
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "### Instruction:", "### Input:", "### Response:",
    "system", "user", "assistant", "You are a helpful assistant.",
    "Give three tips for staying healthy.", "Eat a balanced diet and make sure to include plenty of fruits.",
    "Translate the sentence into French.", "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "Summarize the following text in one sentence.", "Write a short poem about the sea.",
    "Classify the sentiment of this review as positive or negative.", "This movie was wonderful.",
    "def add(a, b):\n    return a + b", "import numpy as np", "SELECT name FROM users WHERE id = 1;",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 100 1000",
    "Hello, how are you today? I am fine, thank you. And you?",
]


def _corpus() -> list[str]:
    # Repetition with small variations gives BPE enough pair statistics to learn real merges.
    return [f"{line} {index}" for index in range(20) for line in _CORPUS_LINES]


def build_tokenizer(directory: Path):
    """Train and save the tiny tokenizer in `directory`; return it loaded through AutoTokenizer."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        # An explicit unk token: without one, transformers' Qwen2Tokenizer (picked by model_type when the
        # tokenizer is loaded from a Qwen2 model folder) appends its own `<|endoftext|>`, changing the vocab size.
        unk_token=UNK,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=512,
    )
    wrapped.chat_template = CHATML_TEMPLATE
    directory.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def _config(architecture: str, tokenizer):
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    if architecture == "llama":
        return LlamaConfig(**common)
    if architecture == "qwen2":
        return Qwen2Config(**common, use_sliding_window=False)
    if architecture == "mistral":
        return MistralConfig(**common, sliding_window=None)
    raise ValueError(f"unknown architecture {architecture!r}; choose from {ARCHITECTURES}")


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def real_tokenizer(name: str, directory: Path) -> Path:
    """A real model's tokenizer kept in fixtures/<name>_tokenizer (`smollm2`, `qwen2`; README there), unpacked into
    `directory`: tokenizers llama.cpp's converter knows, for the GGUF export tests."""
    import gzip
    import shutil

    source = FIXTURES / f"{name}_tokenizer"
    directory.mkdir(parents=True, exist_ok=True)
    for name_ in ("tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(source / name_, directory / name_)
    (directory / "tokenizer.json").write_bytes(gzip.decompress((source / "tokenizer.json.gz").read_bytes()))
    return directory


def build_model(architecture: str, directory: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """Random-init a tiny model of `architecture`, save it with the tokenizer in `directory`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(architecture, tokenizer), dtype=torch.float32)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_llama_bf16(directory: Path, seed: int = 0, **shape) -> Path:
    """A random-init bf16 Llama of the given `shape` (config keys; the vocabulary is the tiny tokenizer's unless
    given) with the tiny tokenizer, saved in `directory`: the GPU tests' models, larger than `build_model`'s."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = build_tokenizer(directory)
    config = AutoConfig.for_model("llama", **{"vocab_size": len(tokenizer), "tie_word_embeddings": False, **shape},
                                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                  pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(directory)
    return directory


BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_bert(directory: Path, seed: int = 0) -> Path:
    """A tiny uncased BERT encoder (2 layers, hidden size 32) with a WordPiece tokenizer trained here, saved as
    a real `bert` folder (BertModel weights, BertTokenizerFast): `AutoModelForSequenceClassification` loads it
    with a new `classifier.` head, as it does bert-base-uncased. Pairs encode as `[CLS] A [SEP] B [SEP]` with
    token type ids 0 then 1."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=VOCAB_SIZE, special_tokens=BERT_SPECIAL_TOKENS,
                                        show_progress=False)
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    wrapped = BertTokenizerFast(tokenizer_object=tokenizer, do_lower_case=True, unk_token="[UNK]", sep_token="[SEP]",
                                pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]", model_max_length=128)
    config = BertConfig(vocab_size=len(wrapped), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=wrapped.pad_token_id)
    torch.manual_seed(seed)
    model = BertModel(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    wrapped.save_pretrained(directory)
    return directory
