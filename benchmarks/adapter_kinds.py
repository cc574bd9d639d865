"""Every adapter kind on the quickstart's task (issue 22), on CPU: trainable parameters, adapter size on disk,
seconds per step and the held-out label accuracy, each kind trained by `axo train` from the quickstart config with
only `adapter:` (and the kind's learning rate) changed, then scored by `axo evaluate`.

    python benchmarks/adapter_kinds.py --out results.json [--kinds lora,ia3,...] [--work /tmp/axo-kinds]

Needs the quickstart's base model (`python examples/quickstart/base_model.py` writes
quickstart-run/SmolLM2-135M-Instruct). Each kind keeps PEFT's defaults for its own sizes and adapts what the
quickstart's LoRA adapts (every linear layer of the top 8 of 30 layers); prefix and prompt tuning have no
targets. Learning rates: the quickstart's 1e-3 for the LoRA family (LoRA, AdaLoRA, LoHa, LoKr, OFT, BOFT), 1e-2 for
IA³ and VeRA (which train scaling vectors only) and prefix tuning, 3e-2 for prompt tuning — the ranges PEFT's
examples use for each. One run of each, on an otherwise idle machine; the step time is the mean over the logged
steps after the first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "examples" / "quickstart"
LEARNING_RATE = {"ia3": 1e-2, "vera": 1e-2, "prefix_tuning": 1e-2, "prompt_tuning": 3e-2}
KINDS = ("lora", "adalora", "ia3", "loha", "lokr", "oft", "boft", "vera", "prefix_tuning", "prompt_tuning")


def config_for(kind: str, work: Path) -> Path:
    """The quickstart config with `adapter: kind`, absolute paths, its own output folder."""
    text = (QUICKSTART / "config.yml").read_text()
    text = text.replace("adapter: lora", f"adapter: {kind}")
    text = text.replace("learning_rate: 1e-3", f"learning_rate: {LEARNING_RATE.get(kind, 1e-3)}")
    text = text.replace("./quickstart-run/SmolLM2-135M-Instruct", str(REPO / "quickstart-run" / "SmolLM2-135M-Instruct"))
    text = text.replace("path: train.jsonl", f"path: {QUICKSTART / 'train.jsonl'}")
    text = text.replace("output_dir: quickstart-run/adapter", f"output_dir: {work / kind}")
    text = text.replace("dataset_prepared_path: quickstart-run/prepared", f"dataset_prepared_path: {work / 'prepared'}")
    if kind in ("prefix_tuning", "prompt_tuning"):  # no layers to choose: the virtual tokens serve every layer
        text = "\n".join(line for line in text.splitlines() if not line.startswith("peft_layers_to_transform"))
    if kind == "ia3":  # peft's IA3Config has no layers_to_transform: the same layers through a regex
        text = "\n".join(line for line in text.splitlines() if not line.startswith("peft_layers_to_transform"))
        text += "\nia3_target_modules: '.*layers\\.(2[2-9])\\..*_proj'\n"
    path = work / f"{kind}.yml"
    path.write_text(text)
    return path


def accuracy(results: dict) -> float | None:
    """The accuracy `axo evaluate` reports over rows with `choices` (the first label each output names)."""
    found = []

    def walk(value, key=""):
        if isinstance(value, dict):
            for name, inner in value.items():
                walk(inner, name)
        elif key == "choice_accuracy" and isinstance(value, int | float):
            found.append(float(value))

    walk(results)
    return found[0] if found else None


def run_kind(kind: str, work: Path) -> dict:
    axo = [sys.executable, "-m", "axo"]
    config = config_for(kind, work)
    started = time.perf_counter()
    trained = subprocess.run([*axo, "train", str(config)], capture_output=True, text=True, check=False)
    train_s = time.perf_counter() - started
    if trained.returncode != 0:
        return {"error": trained.stderr[-2000:]}
    records = [json.loads(line) for line in (work / kind / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "loss" in r and "elapsed_s" in r]
    steps = [(b["elapsed_s"] - a["elapsed_s"]) / (b["step"] - a["step"]) for a, b in itertools.pairwise(logged)]
    weights = work / kind / "adapter_model.safetensors"
    from axo.config.load import load_config
    from axo.plan.shapes import model_shape

    params = model_shape(load_config(config).require()).trainable.count  # the run's model on the meta device
    evaluated = subprocess.run([*axo, "evaluate", str(work / kind), "-r", str(QUICKSTART / "held_out.jsonl"),
                                "--max-new-tokens", "8"], capture_output=True, text=True, check=False)
    results = json.loads((work / kind / "eval_results.json").read_text()) if evaluated.returncode == 0 else {}
    return {"learning_rate": LEARNING_RATE.get(kind, 1e-3), "trainable_params": params,
            "adapter_bytes": weights.stat().st_size, "train_s": round(train_s, 1),
            "step_s": round(sum(steps) / len(steps), 3) if steps else None, "final_loss": logged[-1]["loss"],
            "label_accuracy": accuracy(results), "evaluate_error": evaluated.stderr[-1000:] if evaluated.returncode else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/axo-kinds"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    report = {"machine": "CPU", "kinds": {}}
    for kind in args.kinds.split(","):
        report["kinds"][kind] = run_kind(kind, args.work)
        args.out.write_text(json.dumps(report, indent=1))
        print(kind, json.dumps(report["kinds"][kind]), flush=True)


if __name__ == "__main__":
    main()
