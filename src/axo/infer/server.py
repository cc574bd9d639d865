"""An OpenAI-compatible HTTP server: `/v1/models`, `/v1/completions`, `/v1/chat/completions` (with
streaming), for the base model plus any number of adapters of any kinds, each selected by its model name.

The base model is loaded once; adapters are attached with peft, one module tree per adapter kind sharing the
base's weights (infer/adapter_sets.py), and switched per request; the base itself is served as loaded. Requests
take turns on the model in arrival order (`TurnQueue`); each generation runs in a thread of its own and stops at
the next token when its client goes away, its time limit passes or the server shuts down (issue 15: a dropped
stream used to hold the model for good).
"""


import asyncio
import copy
import json
import secrets
import threading
import time
import uuid
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

from pydantic import BaseModel, Field

from axo.infer.api_errors import ApiError, as_api_error, busy, error_response
from axo.infer.generate import GenerationSettings, generate_texts, stream_text
from axo.infer.turns import Job, TurnQueue

SEED_MAX = 2**64 - 1  # torch.manual_seed takes 0 .. 2**64-1


class CompletionRequest(BaseModel):
    model: str
    prompt: str | list[str]
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    stream: bool = False


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    stream: bool = False


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask for. The longest a request waits behind one other is about
    `max_tokens_cap` x the time per token; `max_queue` requests may wait at once (more get 503)."""

    max_tokens_cap: int = 2048
    max_body_bytes: int = 1_000_000
    request_timeout: float = 600.0
    max_queue: int = 64


class ModelPool:
    """One base model with named adapters of any kinds; `use(name)` makes that name the active model."""

    def __init__(self, model: Any, tokenizer: Any, base_name: str, adapters: dict[str, Path], max_queue: int = 64):
        from axo.infer.adapter_sets import attach_adapters

        self.tokenizer = tokenizer
        self.base_name = base_name
        self.adapters = dict(adapters)  # name -> adapter folder
        self.model = model.eval()
        self.adapted = attach_adapters(model, adapters) if adapters else {}  # name -> its kind's PeftModel
        self.turns = TurnQueue(max_queue)
        # Requests are measured on the event loop while a generation thread may be tokenizing: a fast
        # tokenizer used from two threads at once can fail with "Already borrowed", so each thread has its own.
        self.counting_tokenizer = copy.deepcopy(tokenizer)
        self.context_length: int | None = getattr(self.model.config, "max_position_embeddings", None)

    @property
    def names(self) -> list[str]:
        return [self.base_name, *self.adapters]

    @contextmanager
    def use(self, name: str, job: Job | None = None) -> Iterator[Any]:
        """Wait for the model (in line with the server's requests) and yield it with `name` active.

        Raises:
            ApiError: 503 when the line is full, or `job` is cancelled or expires while waiting."""
        job = job or Job(deadline=float("inf"))
        self.turns.join(job)
        with self.hold(name, job) as model:
            yield model

    @contextmanager
    def hold(self, name: str, job: Job) -> Iterator[Any]:
        """For a `job` already in line: wait for its turn, yield the model with `name` active, then free it.

        Raises:
            ApiError: 503 when `job` is cancelled or expires while waiting."""
        if not self.turns.wait_turn(job):
            raise busy("The server is shutting down." if self.turns.closed
                        else "The request was cancelled while waiting for the model." if job.cancelled.is_set()
                        else "The request timed out waiting for the model.")
        try:
            if name in self.adapted:
                self.adapted[name].set_adapter(name)
                yield self.adapted[name]
            else:
                yield self.model
        finally:
            self.turns.done()


_END = object()


def _run_job(pool: ModelPool, name: str, job: Job, work: Callable[[Any], Iterator[Any]]) -> AsyncIterator[Any]:
    """Run `work(model)` in a thread of its own, in line for the model, and yield what it yields.

    The thread, not the caller, holds the model: whatever happens to the caller (a dropped client, a
    cancelled task), setting `job.cancelled` ends generation at the next token and frees the model. An
    exception in `work` is raised to the caller."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[Any] = asyncio.Queue()
    pool.turns.join(job)  # a full line is refused now, before any response starts

    def send(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(items.put_nowait, item)
        except RuntimeError:  # the event loop has closed (shutdown): nobody is listening any more
            pass

    def produce() -> None:
        try:
            with pool.hold(name, job) as model:
                for item in work(model):
                    send(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the event loop below
            send(exc)
        finally:
            send(_END)

    threading.Thread(target=produce, daemon=True).start()

    async def results() -> AsyncIterator[Any]:
        while (item := await items.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item

    return results()


async def _while_connected(request: Any, job: Job, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """`items`, cancelling `job` (and stopping) as soon as the client disconnects; a client that leaves while
    its request waits in line or generates is noticed within a quarter second."""
    pending = asyncio.ensure_future(anext(items, _END))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=0.25)
            if not done:
                if await request.is_disconnected():
                    return
                continue
            item = pending.result()
            if item is _END:
                return
            yield item
            pending = asyncio.ensure_future(anext(items, _END))
    finally:
        job.cancelled.set()  # no-op when the job finished; otherwise its generation stops at the next token
        pending.cancel()


def _settings(max_tokens: int, request: Any) -> GenerationSettings:
    stop = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ())
    return GenerationSettings(max_new_tokens=max_tokens, temperature=request.temperature, top_p=request.top_p,
                              seed=request.seed, stop=stop)


def _check_lengths(pool: ModelPool, prompts: list[str], max_tokens: int, limits: ServeLimits) -> None:
    """Raise ApiError (400) when `max_tokens` is over the cap or a prompt plus it exceeds the model's context."""
    if max_tokens > limits.max_tokens_cap:
        raise ApiError(400, f"max_tokens is {max_tokens}; this server allows at most {limits.max_tokens_cap}.",
                       param="max_tokens", code="max_tokens_too_large")
    if pool.context_length is None:
        return
    for prompt in prompts:
        length = len(pool.counting_tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if length + max_tokens > pool.context_length:
            raise ApiError(400, f"This model's maximum context length is {pool.context_length} tokens; the prompt has "
                           f"{length} and max_tokens asks for {max_tokens} more.", param="max_tokens",
                           code="context_length_exceeded")


def _prompt_text(pool: ModelPool, prompt: str) -> str:
    """An empty prompt starts from BOS (as OpenAI's starts from its document separator)."""
    if prompt:
        return prompt
    if pool.tokenizer.bos_token is None:
        raise ApiError(400, "The prompt is empty and this model has no BOS token to start from.", param="prompt")
    return pool.tokenizer.bos_token


class _Gate:
    """ASGI middleware in front of everything: the API key, then the body size (from Content-Length before
    anything is read, and counted while reading for a chunked body)."""

    def __init__(self, app: Any, api_key: str | None, max_body_bytes: int):
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.api_key is not None:
            # bytes: compare_digest refuses str with non-ASCII characters, which a client can send
            if not secrets.compare_digest(headers.get(b"authorization", b""), f"Bearer {self.api_key}".encode()):
                error = ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
                return await error_response(error)(scope, receive, send)
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return await error_response(self._too_large())(scope, receive, send)
        from starlette.exceptions import HTTPException

        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                # FastAPI turns anything but an HTTPException raised while reading the body into a bare 400;
                # the handler below gives this one its code
                raise HTTPException(400, self._too_large().message, headers={"x-axo-error": "request_too_large"})
            return message

        await self.app(scope, counted, send)

    def _too_large(self) -> ApiError:
        # 400 like every other request OpenAI's API refuses for its content (issue 15), with its own code
        return ApiError(400, f"The request body is larger than this server's limit of {self.max_body_bytes} bytes.",
                        code="request_too_large")


def create_app(pool: ModelPool, api_key: str | None = None, limits: ServeLimits = ServeLimits()):
    """The FastAPI application serving `pool`; requests must carry `Authorization: Bearer <api_key>` when set.
    Every error, malformed JSON and server faults included, is answered in OpenAI's error shape."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import StreamingResponse
    from starlette.exceptions import HTTPException

    app = FastAPI(title="axo", docs_url=None, redoc_url=None)
    app.add_middleware(_Gate, api_key=api_key, max_body_bytes=limits.max_body_bytes)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        details = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
        loc = exc.errors()[0]["loc"] if exc.errors() else ()
        param = loc[1] if len(loc) > 1 and isinstance(loc[1], str) else None  # the top-level field at fault
        return error_response(ApiError(400, f"Invalid request: {details}", param=param))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        code = (exc.headers or {}).get("x-axo-error")
        return error_response(ApiError(exc.status_code, str(exc.detail), code=code))

    @app.exception_handler(Exception)
    async def _fault(request: Request, exc: Exception):
        return error_response(as_api_error(exc))

    def _check_model(model: str) -> None:
        if model not in pool.names:
            raise ApiError(404, f"The model {model!r} does not exist; available: {', '.join(pool.names)}.",
                           param="model", code="model_not_found")

    def _job() -> Job:
        return Job(deadline=time.monotonic() + limits.request_timeout)

    @app.get("/v1/models")
    def models():
        created = int(time.time())
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "axo"}
                                           for name in pool.names]}

    @app.get("/v1/queue")
    def queue():
        return pool.turns.status()

    def _stream(request: Request, name: str, prompt: str, settings: GenerationSettings, chunk: Callable):
        job = _job()
        finish = {"reason": "stop"}  # written by the generating thread before its last item is sent
        pieces = _run_job(pool, name, job, lambda model: stream_text(
            model, pool.tokenizer, prompt, settings, should_stop=job.should_stop,
            on_finish=lambda reason: finish.update(reason=reason)))

        async def events():
            try:
                async with aclosing(_while_connected(request, job, pieces)) as connected:
                    async for piece in connected:
                        yield f"data: {json.dumps(chunk(piece, None))}\n\n"
                yield f"data: {json.dumps(chunk('', finish['reason']))}\n\n"
            except Exception as exc:  # noqa: BLE001 - the response has started: the error goes in the stream
                yield f"data: {json.dumps(as_api_error(exc).body())}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _generate(request: Request, name: str, prompts: list[str], settings: GenerationSettings):
        job = _job()
        work = lambda model: iter([generate_texts(model, pool.tokenizer, prompts, settings,  # noqa: E731
                                                  should_stop=job.should_stop)])
        async with aclosing(_while_connected(request, job, _run_job(pool, name, job, work))) as connected:
            async for results in connected:
                return results
        return None  # the client left: nobody reads the answer

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        _check_model(body.model)
        prompts = [_prompt_text(pool, p) for p in ([body.prompt] if isinstance(body.prompt, str) else body.prompt)]
        _check_lengths(pool, prompts, body.max_tokens, limits)
        settings = _settings(body.max_tokens, body)
        ident, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if body.stream:
            if len(prompts) != 1:
                raise ApiError(400, "Streaming takes one prompt.", param="prompt")
            return _stream(request, body.model, prompts[0], settings, lambda text, finish: {
                "id": ident, "object": "text_completion", "created": created, "model": body.model,
                "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]})
        results = await _generate(request, body.model, prompts, settings)
        if results is None:
            return None
        return {"id": ident, "object": "text_completion", "created": created, "model": body.model,
                "choices": [{"index": i, "text": r["text"], "finish_reason": r["finish_reason"], "logprobs": None}
                            for i, r in enumerate(results)],
                "usage": _usage(results)}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request):
        _check_model(body.model)
        messages = [m.model_dump() for m in body.messages]
        try:
            prompt = pool.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # the template's own checks (roles must alternate, …)
            raise ApiError(400, f"The chat template refused the messages: {exc}", param="messages") from None
        max_tokens = body.max_completion_tokens or body.max_tokens or min(256, limits.max_tokens_cap)
        _check_lengths(pool, [prompt], max_tokens, limits)
        settings = _settings(max_tokens, body)
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if body.stream:
            return _stream(request, body.model, prompt, settings, lambda text, finish: {
                "id": ident, "object": "chat.completion.chunk", "created": created, "model": body.model,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": text} if text or not finish else {},
                             "finish_reason": finish}]})
        results = await _generate(request, body.model, [prompt], settings)
        if results is None:
            return None
        [result] = results
        return {"id": ident, "object": "chat.completion", "created": created, "model": body.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": result["text"]},
                             "finish_reason": result["finish_reason"]}],
                "usage": _usage([result])}

    return app


def _usage(results: list[dict[str, Any]]) -> dict[str, int]:
    prompt = sum(r["prompt_tokens"] for r in results)
    completion = sum(r["completion_tokens"] for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def pool_for_run(run: Any, adapters: dict[str, Path], base_name: str, max_queue: int = 64) -> ModelPool:
    """Load the run's base model (or its full fine-tune) and attach `adapters` under their names."""
    from transformers import AutoTokenizer

    from axo.infer.loading import load_for_inference

    model, tokenizer = load_for_inference(run, base_only=run.is_adapter)
    if run.is_adapter and (run.output_dir / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(run.output_dir)  # the training's special tokens and template
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    return ModelPool(model, tokenizer, base_name, adapters, max_queue)


SHUTDOWN_GRACE_S = 5  # after SIGTERM/SIGINT, how long uvicorn waits for open connections before closing them


def run_server(pool: ModelPool, host: str, port: int, api_key: str | None, limits: ServeLimits) -> None:
    """Serve `pool` until SIGTERM/SIGINT. The signal cancels every waiting and running generation at once, so
    the process ends within seconds even while clients are streaming."""
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            pool.turns.close()  # uvicorn's graceful shutdown waits for requests; end them first
            super().handle_exit(sig, frame)

    config = uvicorn.Config(create_app(pool, api_key, limits), host=host, port=port, log_level="warning",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    _Server(config).run()
