#!/usr/bin/env bash
# Set up .venv with the test dependencies and run the whole test suite (CPU, offline, ~4 min on 2 cores).
#   ./test.sh [pytest arguments]
# CI (.ci/run) runs exactly this. One pytest worker per core (pytest-xdist): most of the time goes to tests that
# start training processes, which a second core runs side by side; `worksteal` keeps both cores busy to the end.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh dev
# The GGUF round-trip tests through llama.cpp itself (tests/export/) need llama-cpp-python, which builds llama.cpp
# from source (~4 min on 2 cores): opt in with AXO_TEST_LLAMA_CPP=1; without it they are skipped.
if [ "${AXO_TEST_LLAMA_CPP:-0}" = 1 ] && ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
    CMAKE_ARGS="-DLLAVA_BUILD=OFF" .venv/bin/python -m pip install -qq --disable-pip-version-check "llama-cpp-python==0.3.36"
fi
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pytest -q -n auto --dist worksteal "$@"
