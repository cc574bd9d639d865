"""Benchmark: `axo preprocess` on 20,000 alpaca rows (44-108 tokens each, byte-level BPE), end to end.

Builds the tokenizer and data in a work folder, then times the real CLI in a fresh process (start-up,
imports, reading, tokenizing, masking, caching all included) and reads its peak memory.

    python benchmarks/preprocess_alpaca.py [--rows 20000] [--work /tmp/axo-bench-preprocess]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

WORDS = ("data model train token learn write answer question simple water light house river city music story "
         "number system energy market health science history language computer garden animal planet school "
         "friend morning winter summer travel future money social power value nature family memory change").split()

TEMPLATE_TEXT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
                 "Write a response that appropriately completes the request.\n\n### Instruction:\n\n### Input:\n\n"
                 "### Response:\n Below is an instruction that describes a task.")


def build_tokenizer(folder: Path, corpus: list[str]) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4000, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                            pad_token="<pad>").save_pretrained(folder)


def make_rows(count: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    sentence = lambda n: " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."  # noqa: E731
    rows = []
    for _ in range(count):
        has_input = rng.random() < 0.4
        rows.append({"instruction": sentence(rng.randint(4, 12)), "input": sentence(rng.randint(2, 10)) if has_input else "",
                     "output": sentence(rng.randint(4, 36))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-bench-preprocess"))
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    rows = make_rows(args.rows)
    with (work / "alpaca.jsonl").open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    build_tokenizer(work / "tokenizer", [TEMPLATE_TEXT] * 200 + [" ".join(r.values()) for r in rows[:5000]])
    (work / "config.yml").write_text(
        "base_model: ./tokenizer\nlearning_rate: 2e-4\nsequence_len: 2048\n"
        "datasets:\n  - path: alpaca.jsonl\n    type: alpaca\ndataset_prepared_path: ./prepared\n")
    command = ["axo", "preprocess", "config.yml", "--force"]
    started = time.perf_counter()
    subprocess.run(command, cwd=work, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    meta = json.loads(next((work / "prepared").glob("*/meta.json")).read_text())
    import pyarrow as pa
    import pyarrow.compute  # noqa: F401

    folder = next((work / "prepared").glob("*/meta.json")).parent
    with pa.memory_map(str(folder / "train.arrow")) as source:
        sizes = pa.compute.list_value_length(pa.ipc.open_stream(source).read_all().column("input_ids")).to_pylist()
    print(json.dumps({"rows": args.rows, "wall_s": round(wall, 2), "rows_per_s": round(args.rows / wall),
                      "peak_rss_mib": round(peak_mib), "samples": meta["train"]["samples"],
                      "tokens_min_mean_max": [min(sizes), round(sum(sizes) / len(sizes), 1), max(sizes)],
                      "prepare_s_inside": meta["seconds"], "python": sys.version.split()[0]}, indent=1))


if __name__ == "__main__":
    main()
