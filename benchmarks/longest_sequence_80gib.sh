#!/usr/bin/env bash
# The 80 GiB row of docs/BENCHMARKS.md "Longest trainable sequence under a memory cap": three invocations of
# benchmarks/longest_sequence.py, one optimizer step per length (a step at these lengths is 4-7 minutes), each
# into its own folder (a later invocation would replace an earlier one's entry for the same framework and cap),
# copied to /tmp/bench/longest-80-<name>.json for device_background.sh to bring back. ~19 min on an H200:
#   mkdir -p /tmp/u && tar -xJf .whl-unsloth/site.tar.xz -C /tmp/u && export PYTHONPATH=/tmp/u:$PWD/src:$PWD/tests \
#     UNSLOTH_DISABLE_STATISTICS=1 HF_HUB_OFFLINE=1 && bash benchmarks/device_background.sh start \
#     bash benchmarks/longest_sequence_80gib.sh
#   bash benchmarks/device_background.sh wait   # again, while it prints STILL RUNNING
set -uo pipefail
run() {
    name=$1
    shift
    python3 benchmarks/longest_sequence.py --out "/tmp/bench/$name" --caps 80 --steps 1 --no-bisect \
        --child-timeout 900 "$@"
    cp "/tmp/bench/$name/longest_sequence.json" "/tmp/bench/longest-80-$name.json"
    for log in "/tmp/bench/$name"/*.log; do cp "$log" "/tmp/bench/$name-$(basename "$log")"; done
}
run axo --frameworks axo --cap-lengths 80=327680
run unsloth --frameworks unsloth --cap-lengths 80=262144,294912
run axo2 --frameworks axo --cap-lengths 80=393216
