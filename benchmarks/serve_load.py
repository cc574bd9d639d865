"""`axo serve` under parallel `openai` clients: latency, throughput, hung requests, and how long a short
request waits behind a long one (issue 15).

    python benchmarks/serve_load.py --model quickstart-run/SmolLM2-135M-Instruct --out serve-load.json

It starts the real CLI (`axo serve FOLDER`) in a process of its own and drives it with the `openai` client:

1. **baseline**: every request of the load, one after the other, from one client (the same server);
2. **load**: `--clients` threads at once, each sending `--requests` chat requests: streaming and not,
   `max_tokens` drawn from {8, 32, 96}, and every 8th request a stream the client drops after 3 chunks;
   a request that has no answer within `--hang-after` seconds counts as hung;
3. **short behind long**: on an idle server, a request for `--long-tokens` tokens, then 0.3 s later one for
   8 tokens: how long the short one takes, against the long one's own duration (the bound for a request
   with one ahead of it in axo's first-come line).

Latency is from sending the request to its last byte (the stream's last chunk); tokens/s is the load's
completion tokens (from `usage`, or counted chunks for streams) over its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MESSAGES = [row["messages"] for row in map(json.loads, (REPO / "examples/quickstart/held_out.jsonl").open())]


def plan(clients: int, requests: int, seed: int = 0) -> list[list[dict]]:
    """Each client's requests, fixed by the seed: what to ask and how to read the answer."""
    rng = random.Random(seed)
    work, count = [], 0
    for _ in range(clients):
        mine = []
        for _ in range(requests):
            count += 1
            drop = count % 8 == 0
            mine.append({"messages": rng.choice(MESSAGES), "max_tokens": 96 if drop else rng.choice([8, 32, 96]),
                         "stream": drop or rng.random() < 0.5, "drop": drop})
        work.append(mine)
    return work


def send(api, spec: dict) -> dict:
    """One chat request; returns its latency, completion tokens and how it ended."""
    started = time.perf_counter()
    reply = api.chat.completions.create(model="base", messages=spec["messages"], max_tokens=spec["max_tokens"],
                                        temperature=0, stream=spec["stream"])
    if not spec["stream"]:
        return {"seconds": time.perf_counter() - started, "tokens": reply.usage.completion_tokens,
                "finish": reply.choices[0].finish_reason}
    chunks, first, finish = 0, None, None
    for chunk in reply:
        first = first or time.perf_counter() - started
        chunks += bool(chunk.choices[0].delta.content)
        finish = chunk.choices[0].finish_reason or finish
        if spec["drop"] and chunks >= 3:
            reply.close()
            finish = "dropped"
            break
    return {"seconds": time.perf_counter() - started, "tokens": chunks, "finish": finish,
            "first_chunk_s": first}


def run_clients(api_for, work: list[list[dict]], hang_after: float) -> tuple[list[dict], float]:
    results: list[dict] = []
    lock = threading.Lock()

    def client(mine: list[dict]) -> None:
        api = api_for(hang_after)
        for spec in mine:
            try:
                outcome = send(api, spec)
            except Exception as exc:  # noqa: BLE001 - a timeout is a hung request; anything else is counted too
                outcome = {"seconds": None, "tokens": 0, "finish": f"error: {type(exc).__name__}: {exc}"[:200]}
            with lock:
                results.append({**outcome, "stream": spec["stream"], "drop": spec["drop"],
                                "max_tokens": spec["max_tokens"]})

    threads = [threading.Thread(target=client, args=(mine,)) for mine in work]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def summary(results: list[dict], wall: float) -> dict:
    answered = [r for r in results if r["seconds"] is not None]
    finished = [r["seconds"] for r in answered if r["finish"] != "dropped"]
    quantiles = statistics.quantiles(finished, n=20, method="inclusive") if len(finished) > 1 else finished * 19
    return {"requests": len(results), "answered": len(answered),
            "hung_or_failed": [r["finish"] for r in results if r["seconds"] is None],
            "dropped_by_client": sum(r["finish"] == "dropped" for r in results),
            "finish_reasons": {k: sum(r["finish"] == k for r in answered) for k in {r["finish"] for r in answered}},
            "p50_s": round(statistics.median(finished), 2), "p95_s": round(quantiles[18], 2),
            "max_s": round(max(finished), 2), "wall_s": round(wall, 1),
            "completion_tokens": sum(r["tokens"] for r in results),
            "tokens_per_s": round(sum(r["tokens"] for r in results) / wall, 1)}


def short_behind_long(api, long_tokens: int) -> dict:
    """The long request's duration and the short one's, sent 0.3 s after it (temperature 0; the long one is
    asked to continue a list so it runs to `long_tokens`)."""
    timings: dict = {}

    def long_request() -> None:
        started = time.perf_counter()
        reply = api.completions.create(model="base", prompt="1, 2, 3, 4, 5,", max_tokens=long_tokens, temperature=0)
        timings["long_s"], timings["long_tokens"] = time.perf_counter() - started, reply.usage.completion_tokens

    thread = threading.Thread(target=long_request)
    thread.start()
    time.sleep(0.3)
    started = time.perf_counter()
    reply = api.chat.completions.create(model="base", messages=MESSAGES[0], max_tokens=8, temperature=0)
    timings["short_s"], timings["short_tokens"] = time.perf_counter() - started, reply.usage.completion_tokens
    thread.join()
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in timings.items()}


def seconds_to_idle(port: int, limit: float = 30.0) -> float | None:
    """Seconds until `GET /v1/queue` reports nothing running or waiting (None: not within `limit`)."""
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        queue = httpx.get(f"http://127.0.0.1:{port}/v1/queue", timeout=5).json()
        if queue["running"] == 0 and queue["waiting"] == 0:
            return round(time.perf_counter() - started, 2)
        time.sleep(0.05)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, port: int, extra: list[str]) -> subprocess.Popen:
    axo = Path(sys.executable).parent / "axo"
    server = subprocess.Popen([str(axo), "serve", str(model), "--port", str(port), *extra],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"axo serve exited: {server.stderr.read()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).raise_for_status()
            return server
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit("axo serve did not answer within 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a model folder (`axo serve FOLDER`)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=4, help="requests per client")
    parser.add_argument("--long-tokens", type=int, default=512)
    parser.add_argument("--hang-after", type=float, default=600.0)
    args = parser.parse_args()

    import openai

    port = free_port()
    server = start_server(args.model, port, ["--name", "base", "--max-tokens-cap", str(max(args.long_tokens, 96))])

    def api_for(timeout: float):
        return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=timeout)

    try:
        work = plan(args.clients, args.requests)
        api_for(60).chat.completions.create(model="base", messages=MESSAGES[0], max_tokens=4)  # warm-up
        baseline, baseline_wall = run_clients(api_for, [[spec for mine in work for spec in mine]], args.hang_after)
        print("baseline (1 client):", json.dumps(summary(baseline, baseline_wall)), flush=True)
        load, load_wall = run_clients(api_for, work, args.hang_after)
        print(f"load ({args.clients} clients):", json.dumps(summary(load, load_wall)), flush=True)
        idle_after_s = seconds_to_idle(port)  # a dropped stream's generation ends at its next token
        behind = short_behind_long(api_for(args.hang_after), args.long_tokens)
        print("short behind long:", json.dumps(behind), flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        stopped = time.perf_counter()
        server.wait(60)
        stop_s = time.perf_counter() - stopped
    import torch
    import transformers

    report = {"model": str(args.model), "cpu_cores": os.cpu_count(), "torch": torch.__version__,
              "transformers": transformers.__version__, "clients": args.clients, "requests_per_client": args.requests,
              "baseline_one_client": summary(baseline, baseline_wall), "load": summary(load, load_wall),
              "idle_after_load_s": idle_after_s, "short_behind_long": behind, "sigterm_exit_s": round(stop_s, 2),
              "requests": load}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
