#!/usr/bin/env bash
# Set up .venv with the test dependencies and run the whole test suite (CPU, offline, ~5 min on 2 cores).
#   ./test.sh [pytest arguments]
# CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh dev
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pytest -q "$@"
