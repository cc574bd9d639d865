"""`axo serve` against clients that misbehave (issue 15): dropped streams and impatient clients free the
model, `stop` ends generation, limits and every error answer in OpenAI's shape, a full line gets 503, and
SIGTERM ends the process with a stream in flight. One real uvicorn server over the tiny llama (~17 ms a
token on 2 cores, so a 480-token request holds the model ~8 s unless it is cancelled)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
from typer.testing import CliRunner

from axo.cli.main import app as cli
from axo.infer.server import ModelPool, ServeLimits, create_app

LONG = 480  # the tiny llama's context is 512 tokens
LIMITS = ServeLimits(max_tokens_cap=LONG, max_body_bytes=20_000, request_timeout=20.0, max_queue=2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _serving(app):
    """`app` on a real uvicorn server in a thread; yields an httpx client for its /v1."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=30) as client:
        yield client
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def pool(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    return ModelPool(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), tokenizer, "tiny", {}, LIMITS.max_queue)


@pytest.fixture(scope="module")
def base(pool):
    app = create_app(pool, limits=LIMITS)

    @app.get("/v1/fault")
    def fault():  # a route that fails, to see the catch-all answer
        raise RuntimeError("disk on fire")

    with _serving(app) as client:
        yield client


def _complete(client: httpx.Client, **body) -> dict:
    reply = client.post("/completions", json={"model": "tiny", "prompt": "The quick brown", "temperature": 0, **body})
    assert reply.status_code == 200, reply.text
    return reply.json()


def _idle_within(client: httpx.Client, seconds: float) -> float:
    """Seconds until `/v1/queue` shows no request running or waiting; fails after `seconds`."""
    start = time.monotonic()
    while {**client.get("/queue").json(), "max_queue": None} != {"running": 0, "waiting": 0, "max_queue": None}:
        assert time.monotonic() - start < seconds, client.get("/queue").json()
        time.sleep(0.05)
    return time.monotonic() - start


def _open_stream(client: httpx.Client, chunks: int, opened: threading.Event | None = None,
                 release: threading.Event | None = None) -> None:
    """Start a long streaming completion, read `chunks` events, wait for `release`, and close the connection
    mid-stream."""
    body = {"model": "tiny", "prompt": "The quick brown", "max_tokens": LONG, "temperature": 0, "stream": True}
    with client.stream("POST", "/completions", json=body) as reply:
        assert reply.status_code == 200
        if opened is not None:
            opened.set()
        lines = reply.iter_lines()
        read = 0
        while read < chunks:
            read += next(lines).startswith("data: ")
        if release is not None:
            release.wait(10)


def test_dropped_streams_free_the_model(base):
    """Three long streams at once (one generating, two in line), each dropped after its first events: the
    model is free again within a second or two, not after 3 x 8 s."""
    start = time.monotonic()
    threads = [threading.Thread(target=_open_stream, args=(base, 3)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    _idle_within(base, 2)
    short = _complete(base, max_tokens=2)
    assert short["usage"]["completion_tokens"] == 2
    assert time.monotonic() - start < 8  # one uncancelled 480-token generation alone takes ~8 s


def test_a_stream_dropped_while_waiting_leaves_the_line(base):
    holder = threading.Thread(target=_open_stream, args=(base, 40))
    holder.start()
    opened = threading.Event()
    waiter = threading.Thread(target=_open_stream, args=(base, 0, opened))
    waiter.start()  # reads nothing: its client closes while it still waits for the model
    assert opened.wait(5)
    waiter.join(5)
    holder.join(20)
    assert _idle_within(base, 2) < 2


def test_an_impatient_non_streaming_client_frees_the_model(base):
    with pytest.raises(httpx.ReadTimeout):
        base.post("/completions", json={"model": "tiny", "prompt": "The quick brown", "max_tokens": LONG,
                                        "temperature": 0}, timeout=0.5)
    assert _idle_within(base, 2) < 2
    assert _complete(base, max_tokens=2)["usage"]["completion_tokens"] == 2


def test_stop_ends_generation_itself(base):
    full = _complete(base, max_tokens=30)["choices"][0]["text"]
    stop = full[10:14]
    stopped = _complete(base, max_tokens=LONG, stop=[stop])
    assert stopped["choices"][0] == {"index": 0, "text": full[:full.index(stop)], "finish_reason": "stop",
                                     "logprobs": None}
    assert stopped["usage"]["completion_tokens"] < 12  # the tokens up to the stop string, not 480
    events = base.post("/completions", json={"model": "tiny", "prompt": "The quick brown", "max_tokens": LONG,
                                             "temperature": 0, "stop": stop, "stream": True}).text
    pieces = [json.loads(line[6:]) for line in events.splitlines() if line.startswith("data: {")]
    assert "".join(p["choices"][0]["text"] for p in pieces) == full[:full.index(stop)]
    assert [p["choices"][0]["finish_reason"] for p in pieces][-2:] == [None, "stop"]


def test_a_stream_cut_by_max_tokens_ends_with_length(base):
    events = base.post("/completions", json={"model": "tiny", "prompt": "The quick brown", "max_tokens": 5,
                                             "temperature": 0, "stream": True}).text
    pieces = [json.loads(line[6:]) for line in events.splitlines() if line.startswith("data: {")]
    assert [p["choices"][0]["finish_reason"] for p in pieces][-1] == "length"
    assert "".join(p["choices"][0]["text"] for p in pieces) == _complete(base, max_tokens=5)["choices"][0]["text"]


def test_the_request_time_limit_cuts_generation(pool):
    with _serving(create_app(pool, limits=ServeLimits(request_timeout=0.5))) as client:
        start = time.monotonic()
        reply = _complete(client, max_tokens=LONG)
        assert time.monotonic() - start < 2  # 480 tokens take 3 to 8 s here
    assert reply["choices"][0]["finish_reason"] == "length" and reply["usage"]["completion_tokens"] < LONG


def _error_of(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(reply.json()) == {"error"} and set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize("body, param, code", [
    ({"max_tokens": LONG + 1}, "max_tokens", "max_tokens_too_large"),
    ({"max_tokens": LONG, "prompt": "France " * 40}, "max_tokens", "context_length_exceeded"),
    ({"max_tokens": 0}, "max_tokens", None),
    ({"seed": 2**70}, "seed", None),
    ({"seed": -1}, "seed", None),
    ({"prompt": None}, "prompt", None),
])
def test_bad_requests_are_openai_400s(base, body, param, code):
    reply = base.post("/completions", json={"model": "tiny", "prompt": "Hi", "max_tokens": 2, **body})
    error = _error_of(reply, 400)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_every_other_error_has_the_openai_shape(base):
    malformed = base.post("/completions", content=b'{"model": "tiny", "prompt": ',
                          headers={"content-type": "application/json"})
    assert _error_of(malformed, 400)["type"] == "invalid_request_error"
    assert _error_of(base.post("/completions", json={"model": "nope", "prompt": "x"}), 404)["code"] == "model_not_found"
    assert _error_of(base.get("/nowhere"), 404)["type"] == "invalid_request_error"
    assert _error_of(base.get("/completions"), 405)["type"] == "invalid_request_error"
    assert _error_of(base.get("/fault"), 500)["type"] == "server_error"


def test_a_large_body_is_refused_before_it_is_read(base):
    """Only the headers are sent: the 400 comes from Content-Length alone (a client that went on sending
    could see the connection reset before reading the answer)."""
    host, port = base.base_url.host, base.base_url.port
    with socket.create_connection((host, port)) as raw:
        raw.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {LIMITS.max_body_bytes + 1}\r\n\r\n".encode())
        answer = b""
        while b"}}" not in answer:
            answer += raw.recv(4096)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_a_large_chunked_body_is_counted_and_refused(base):
    """No Content-Length (chunked transfer): the body is counted while it is read."""
    prompt = "x" * (LIMITS.max_body_bytes + 10)
    payload = json.dumps({"model": "tiny", "prompt": prompt, "max_tokens": 2}).encode()
    reply = base.post("/completions", content=iter([payload[i:i + 65536] for i in range(0, len(payload), 65536)]),
                      headers={"Content-Type": "application/json"})
    assert _error_of(reply, 400)["code"] == "request_too_large"


def test_empty_prompt_and_the_largest_seed_are_answered(base):
    assert _complete(base, prompt="", max_tokens=3)["usage"] == {"prompt_tokens": 1, "completion_tokens": 3,
                                                                  "total_tokens": 4}
    first = _complete(base, max_tokens=4, temperature=1.0, seed=2**64 - 1)["choices"][0]["text"]
    assert _complete(base, max_tokens=4, temperature=1.0, seed=2**64 - 1)["choices"][0]["text"] == first


def test_a_full_line_is_a_503_and_the_queue_is_reported(base):
    release = threading.Event()
    threads = [threading.Thread(target=_open_stream, args=(base, chunks, None, release)) for chunks in (1, 0, 0)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)  # arrive in order: one generating, two in line
    try:
        assert base.get("/queue").json() == {"running": 1, "waiting": 2, "max_queue": 2}
        error = _error_of(base.post("/completions", json={"model": "tiny", "prompt": "Hi", "max_tokens": 2}), 503)
        assert (error["type"], error["code"]) == ("server_error", "server_busy")
    finally:
        release.set()
        for thread in threads:
            thread.join(20)
    _idle_within(base, 2)


def test_sigterm_stops_the_server_with_a_stream_in_flight(tiny_llama_dir):
    """`axo serve` in its own process: SIGTERM while a long stream is generating ends it within seconds; a
    key on the command line is warned about."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "axo", "serve", str(tiny_llama_dir), "--name", "tiny",
                                "--port", str(port), "--api-key", "k"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        body = {"model": "tiny", "prompt": "The quick brown", "max_tokens": 480, "temperature": 0, "stream": True}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", headers={"Authorization": "Bearer k"}) as client:
            for _ in range(300):
                try:
                    client.get("/models")
                    break
                except httpx.ConnectError:
                    time.sleep(0.1)
            with client.stream("POST", "/completions", json=body, timeout=30) as reply:
                next(line for line in reply.iter_lines() if line.startswith("data: "))
                sent = time.monotonic()
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=10)
        assert time.monotonic() - sent < 8  # the stream alone would run ~8 s more
        assert process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
        assert "visible to every user in the process list" in process.stdout.read()
    finally:
        process.kill()


def test_cli_refuses_pickle_weights_and_warns_about_an_open_host(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    result = CliRunner().invoke(cli, ["serve", str(folder), "--host", "0.0.0.0"], env={"AXO_API_KEY": ""})
    assert result.exit_code == 1
    assert "only pickle (.bin) weights" in result.output and "without an API key" in result.output
    key = tmp_path / "key"
    key.write_text("from-a-file\n")
    result = CliRunner().invoke(cli, ["serve", str(folder), "--host", "0.0.0.0", "--api-key-file", str(key)])
    assert result.exit_code == 1 and "only pickle" in result.output
    assert "without an API key" not in result.output and "process list" not in result.output


def test_a_burst_of_openai_clients_with_one_dropped_stream(pool):
    """The issue's case: many `openai` clients at once, one closing its stream mid-way; every other request
    is answered and the model is free at the end."""
    import openai

    busy = ModelPool(pool.model, pool.tokenizer, "tiny", {}, max_queue=16)
    with _serving(create_app(busy, limits=LIMITS)) as client:
        api = openai.OpenAI(base_url=str(client.base_url), api_key="none", max_retries=0)
        answers: list[str] = []

        def short(i: int) -> None:
            if i % 2:
                reply = api.completions.create(model="tiny", prompt=f"Say {i}", max_tokens=4, temperature=0)
                answers.append(reply.choices[0].finish_reason)
            else:
                stream = api.completions.create(model="tiny", prompt=f"Say {i}", max_tokens=4, temperature=0,
                                                stream=True)
                answers.append([c.choices[0].finish_reason for c in stream][-1])

        def dropped() -> None:
            stream = api.completions.create(model="tiny", prompt="The quick brown", max_tokens=LONG,
                                            temperature=0, stream=True)
            for _, _ in zip(range(3), stream):
                pass
            stream.close()

        threads = [threading.Thread(target=dropped)] + [threading.Thread(target=short, args=(i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert answers == ["length"] * 10  # 4 tokens, streamed or not, end at max_tokens
        assert _idle_within(client, 2) < 2
        assert client.get("/queue").json()["max_queue"] == 16
