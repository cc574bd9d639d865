#!/usr/bin/env bash
# Create .venv (if missing) and install axo into it with the extras named in $1 (default: none).
# Idempotent: a second run checks the installs and changes nothing. Used by ./quickstart.sh and ./test.sh.
#   TORCH_SPEC   the torch requirement to install first (default torch==2.13.0, the CPU build on the dev machines;
#                on a GPU machine install the CUDA build of your choice into .venv before running this)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
# torch first: a bare `torch` requirement (from transformers, peft, ...) would otherwise pull several GB of
# CUDA packages.
if ! python -c "import torch" 2>/dev/null; then
    python -m pip install -qq --disable-pip-version-check "${TORCH_SPEC:-torch==2.13.0}"
fi
python -m pip install -qq --disable-pip-version-check -e ".${extras:+[$extras]}"
