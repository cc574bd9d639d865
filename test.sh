#!/usr/bin/env bash
# Set up .venv with the test dependencies and run the whole test suite (CPU, offline, ~4 min on 2 cores).
#   ./test.sh [pytest arguments]
# CI (.ci/run) runs exactly this. One pytest worker per core (pytest-xdist): most of the time goes to tests that
# start training processes, which a second core runs side by side; `worksteal` keeps both cores busy to the end.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh dev
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pytest -q -n auto --dist worksteal "$@"
