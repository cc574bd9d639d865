#!/usr/bin/env bash
# Issue 20's H200 table in one device run: axo against Unsloth (its own process, its defaults) on Llama-3.1-8B
# shapes, then `axo plan`'s predictions beside axo's measurements (benchmarks/plan_check.py). Run from the repo
# root on the GPU machine with `.whl-unsloth` carried (`bash ../shared/device/make-unsloth-site.sh` builds it):
#
#   bash benchmarks/vs_unsloth_h200.sh start     # first device call (returns after ~9.5 min, the job goes on)
#   bash benchmarks/vs_unsloth_h200.sh wait      # next call(s), while the machine is warm
#
# Results: $OUT/speed.json, $OUT/plan_check.json, the log and the Unsloth runs' logs.
set -u
if [ "$1" = start ]; then
    mkdir -p /tmp/u && tar -xJf .whl-unsloth/site.tar.xz -C /tmp/u || exit 1
    export PYTHONPATH=/tmp/u:$PWD/src:$PWD/tests UNSLOTH_DISABLE_STATISTICS=1 HF_HUB_OFFLINE=1
    VARIANTS=${VARIANTS:-unsloth_lora,axo_lora,unsloth_qlora,axo_qlora,unsloth_lora_norecompute,unsloth_lora_long,axo_lora_long,unsloth_lora_varlen,axo_lora_varlen}
    CONFIGS=${CONFIGS:-lora-2k-recompute-plain,lora-2k-recompute,lora-2k-keep16,qlora-2k-recompute,lora-32k-auto,lora-8k-cap40,qlora-16k-offload,full-1b-2k,lora-2k-auto,qlora-2k-auto}
    bash benchmarks/device_background.sh start bash -c "python3 benchmarks/speed.py --out /tmp/bench --steps 14 \
        --varlen-steps 14 --long-steps 8 --variants $VARIANTS; python3 benchmarks/plan_check.py --out /tmp/bench \
        --work /tmp/axo-speed --configs $CONFIGS"
else
    bash benchmarks/device_background.sh wait
fi
