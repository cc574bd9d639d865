"""An OpenAI-compatible HTTP server: `/v1/models`, `/v1/completions`, `/v1/chat/completions` (with
streaming), for the base model plus any number of LoRA adapters, each selected by its model name.

The base model is loaded once; adapters are attached to it with peft and switched per request (the base
itself is served with the adapters disabled). Requests are served one at a time: generation holds the
model, so a lock keeps concurrent requests from interleaving adapter switches.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, Field

from axo.infer.generate import GenerationSettings, generate_texts, stream_text


class CompletionRequest(BaseModel):
    model: str
    prompt: str | list[str]
    max_tokens: int = Field(16, ge=1, le=32768)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(None, ge=1, le=32768)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False


class ModelPool:
    """One base model with named adapters; `use(name)` makes that name the active model."""

    def __init__(self, model: Any, tokenizer: Any, base_name: str, adapters: dict[str, Path]):
        self.tokenizer = tokenizer
        self.base_name = base_name
        self.adapter_names = list(adapters)
        self.model = model
        if adapters:
            from peft import PeftModel

            first, *rest = adapters.items()
            self.model = PeftModel.from_pretrained(model, first[1], adapter_name=first[0])
            for name, path in rest:
                self.model.load_adapter(path, adapter_name=name)
        self.model.eval()
        self.lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return [self.base_name, *self.adapter_names]

    @contextmanager
    def use(self, name: str) -> Iterator[Any]:
        with self.lock:
            if name == self.base_name and self.adapter_names:
                with self.model.disable_adapter():
                    yield self.model
            else:
                if self.adapter_names:
                    self.model.set_adapter(name)
                yield self.model


def _settings(max_tokens: int, request: Any) -> GenerationSettings:
    stop = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ())
    return GenerationSettings(max_new_tokens=max_tokens, temperature=request.temperature, top_p=request.top_p,
                              seed=request.seed, stop=stop)


def _error(status: int, message: str, kind: str, code: str | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)


def create_app(pool: ModelPool, api_key: str | None = None):
    """The FastAPI application serving `pool`; requests must carry `Authorization: Bearer <api_key>` when set."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import StreamingResponse

    app = FastAPI(title="axo", docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def _authorize(request: Request, call_next):
        if api_key is not None:
            sent = request.headers.get("authorization", "")
            if not secrets.compare_digest(sent, f"Bearer {api_key}"):
                return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        details = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
        return _error(400, f"Invalid request: {details}", "invalid_request_error")

    def _unknown(model: str):
        return _error(404, f"The model {model!r} does not exist; available: {', '.join(pool.names)}.",
                      "invalid_request_error", "model_not_found")

    @app.get("/v1/models")
    def models():
        created = int(time.time())
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "axo"}
                                           for name in pool.names]}

    def _stream(name: str, prompt: str, settings: GenerationSettings, chunk: Any):
        def events():
            with pool.use(name) as model:
                for piece in stream_text(model, pool.tokenizer, prompt, settings):
                    yield f"data: {json.dumps(chunk(piece, None))}\n\n"
            yield f"data: {json.dumps(chunk('', 'stop'))}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/completions")
    def completions(body: CompletionRequest):
        if body.model not in pool.names:
            return _unknown(body.model)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        settings = _settings(body.max_tokens, body)
        ident, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if body.stream:
            if len(prompts) != 1:
                return _error(400, "Streaming takes one prompt.", "invalid_request_error")
            return _stream(body.model, prompts[0], settings, lambda text, finish: {
                "id": ident, "object": "text_completion", "created": created, "model": body.model,
                "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]})
        with pool.use(body.model) as model:
            results = generate_texts(model, pool.tokenizer, prompts, settings)
        return {"id": ident, "object": "text_completion", "created": created, "model": body.model,
                "choices": [{"index": i, "text": r["text"], "finish_reason": r["finish_reason"], "logprobs": None}
                            for i, r in enumerate(results)],
                "usage": _usage(results)}

    @app.post("/v1/chat/completions")
    def chat(body: ChatRequest):
        if body.model not in pool.names:
            return _unknown(body.model)
        messages = [m.model_dump() for m in body.messages]
        try:
            prompt = pool.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # the template's own checks (roles must alternate, …)
            return _error(400, f"The chat template refused the messages: {exc}", "invalid_request_error")
        settings = _settings(body.max_completion_tokens or body.max_tokens or 256, body)
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if body.stream:
            return _stream(body.model, prompt, settings, lambda text, finish: {
                "id": ident, "object": "chat.completion.chunk", "created": created, "model": body.model,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": text} if text or not finish else {},
                             "finish_reason": finish}]})
        with pool.use(body.model) as model:
            [result] = generate_texts(model, pool.tokenizer, [prompt], settings)
        return {"id": ident, "object": "chat.completion", "created": created, "model": body.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": result["text"]},
                             "finish_reason": result["finish_reason"]}],
                "usage": _usage([result])}

    return app


def _usage(results: list[dict[str, Any]]) -> dict[str, int]:
    prompt = sum(r["prompt_tokens"] for r in results)
    completion = sum(r["completion_tokens"] for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def vllm_command(base_model: str, adapters: dict[str, Path], host: str, port: int, api_key: str | None) -> list[str]:
    """The `vllm serve` command that serves the same base and adapters (LoRA modules by name)."""
    command = ["vllm", "serve", base_model, "--host", host, "--port", str(port)]
    if adapters:
        command += ["--enable-lora", "--lora-modules", *[f"{name}={path}" for name, path in adapters.items()]]
    if api_key:
        command += ["--api-key", api_key]
    return command


def pool_for_run(run: Any, adapters: dict[str, Path], base_name: str) -> ModelPool:
    """Load the run's base model (or its full fine-tune) and attach `adapters` under their names."""
    from transformers import AutoTokenizer

    from axo.infer.loading import load_for_inference

    model, tokenizer = load_for_inference(run, base_only=run.is_adapter)
    if run.is_adapter and (run.output_dir / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(run.output_dir)  # the training's special tokens and template
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    return ModelPool(model, tokenizer, base_name, adapters)
