#!/usr/bin/env bash
# Run a benchmark longer than one device call (10 minutes) on the device machine: `start` launches it in
# its own session (it outlives the call) and waits; `wait` (in the next call, while the machine is warm)
# waits again. Both copy the reports (*.json, *.tar), the log and up to 5 run logs to $OUT when it ends or the call
# nears its limit.
#
#   bash benchmarks/device_background.sh start python3 benchmarks/multi_gpu.py --out /tmp/bench ...
#   bash benchmarks/device_background.sh wait
set -u
DIR=/tmp/bench
WAIT_S=${WAIT_S:-560}
if [ "$1" = start ]; then
    shift
    mkdir -p "$DIR"
    PYTHONUNBUFFERED=1 setsid nohup "$@" > "$DIR/log" 2>&1 < /dev/null &
    echo $! > "$DIR/pid"
fi
started=$SECONDS
while kill -0 "$(cat "$DIR/pid")" 2> /dev/null && [ $((SECONDS - started)) -lt "$WAIT_S" ]; do sleep 5; done
if kill -0 "$(cat "$DIR/pid")" 2> /dev/null; then echo "STILL RUNNING after ${WAIT_S}s: call again with 'wait'"; else echo "FINISHED"; fi
cp "$DIR"/*.json "$DIR"/*.tar "$DIR/log" "$OUT/" 2> /dev/null
ls "$DIR"/*.log 2> /dev/null | head -5 | xargs -r -I{} cp {} "$OUT/"
tail -c 6000 "$DIR/log"
df -h / /dev/shm | tail -2
