"""Generation: batched prompts, chat conversations, and streaming, with explicit settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from axo.infer.virtual_tokens import generation_inputs

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class GenerationSettings:
    """How to sample. `temperature` 0 (or `greedy`) means greedy decoding."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    greedy: bool = False
    stop: tuple[str, ...] = ()

    def generate_kwargs(self) -> dict[str, Any]:
        sample = not self.greedy and self.temperature > 0
        # The loader switches the model's cache off for packed training; generating without it recomputes the
        # whole prefix for every new token (5x slower for 64 tokens on SmolLM2-135M).
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": sample,
                                  "use_cache": True}
        if sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if self.repetition_penalty is not None:
            kwargs["repetition_penalty"] = self.repetition_penalty
        return kwargs


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    positions = [text.find(s) for s in stop if s and s in text]
    return text[: min(positions)] if positions else text


class _Halt:
    """A transformers stopping criterion: ends a row once its new text holds a stop string, and every row once
    `should_stop()` is true (a client gone, a time limit passed). Without it a "stopped" request runs on to
    `max_new_tokens` and a cancelled one keeps the model busy (issue 15)."""

    def __init__(self, tokenizer: Any, prompt_length: int, stop: tuple[str, ...],
                 should_stop: Callable[[], bool] | None):
        self.tokenizer, self.prompt_length, self.should_stop = tokenizer, prompt_length, should_stop
        self.stop = tuple(s for s in stop if s)
        # Every new token decodes to at least one character, so a stop string that just appeared lies within
        # the last len(stop) tokens; a few more cover tokens that only complete a character.
        self.window = max((len(s) for s in self.stop), default=0) + 4
        self.stopped_at: dict[int, int] = {}  # row -> new tokens it had when its stop string appeared

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        new = input_ids[:, self.prompt_length:]
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row in range(new.shape[0]) if self.stop else ():
            if row not in self.stopped_at:
                tail = self.tokenizer.decode(new[row, -self.window:], skip_special_tokens=True)
                if any(s in tail for s in self.stop):
                    self.stopped_at[row] = new.shape[1]
            done[row] = row in self.stopped_at
        if self.should_stop is not None and self.should_stop():
            done[:] = True
        return done


def _criteria(halt: _Halt) -> Any:
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Criterion(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return halt(input_ids, scores)

    return StoppingCriteriaList([_Criterion()])


def generate_texts(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                   settings: GenerationSettings = GenerationSettings(), batch_size: int = 16,
                   should_stop: Callable[[], bool] | None = None) -> list[dict[str, Any]]:
    """For each prompt: {"text", "prompt_tokens", "completion_tokens", "finish_reason"} (left-padded batches).

    Prompts are used as given (they already carry their template and BOS). A row ends at EOS, at a stop
    string (the text is cut before it; `completion_tokens` counts the tokens generated up to it), or at
    `max_new_tokens`; every row ends at the next token once `should_stop()` returns true."""
    import torch

    if settings.seed is not None:
        torch.manual_seed(settings.seed)
    model.eval()
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    results: list[dict[str, Any]] = []
    try:
        for start in range(0, len(prompts), batch_size):
            batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(model.device)
            generator, inputs = generation_inputs(model, batch, tokenizer.pad_token_id)
            halt = _Halt(tokenizer, inputs["input_ids"].shape[1], settings.stop, should_stop)
            with torch.no_grad():
                output = generator.generate(**inputs, pad_token_id=tokenizer.pad_token_id,
                                            stopping_criteria=_criteria(halt), **settings.generate_kwargs())
            new = output[:, inputs["input_ids"].shape[1]:]
            for index, (row, tokens) in enumerate(zip(batch["attention_mask"], new)):
                results.append(_result(tokenizer, tokens, int(row.sum()), halt.stopped_at.get(index), settings.stop))
    finally:
        tokenizer.padding_side = padding_side
    return results


def _result(tokenizer: Any, tokens: Any, prompt_tokens: int, stopped_at: int | None,
            stop: tuple[str, ...]) -> dict[str, Any]:
    """One row's reply: its tokens up to EOS or the stop string, the text cut before the stop string."""
    ended = tokenizer.eos_token_id is not None and bool((tokens == tokenizer.eos_token_id).any())
    if stopped_at is not None:
        count = stopped_at
    elif ended:
        count = int((tokens == tokenizer.eos_token_id).nonzero()[0][0]) + 1
    else:
        count = int((tokens != tokenizer.pad_token_id).sum())
    text = tokenizer.decode(tokens[:count], skip_special_tokens=True)
    cut = _cut_at_stop(text, stop)
    return {"text": cut, "prompt_tokens": prompt_tokens, "completion_tokens": count,
            "finish_reason": "stop" if stopped_at is not None or ended or cut != text else "length"}


def generate_chat(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, conversations: list[list[dict[str, Any]]],
                  *, max_new_tokens: int = 32, batch_size: int = 16) -> list[str]:
    """Greedy replies to chat conversations through the tokenizer's chat template."""
    prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    settings = GenerationSettings(max_new_tokens=max_new_tokens, greedy=True)
    return [r["text"] for r in generate_texts(model, tokenizer, prompts, settings, batch_size)]


def stream_text(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str,
                settings: GenerationSettings = GenerationSettings(),
                should_stop: Callable[[], bool] | None = None,
                on_finish: Callable[[str], None] | None = None) -> Iterator[str]:
    """Yield the reply to one prompt piece by piece as it is generated.

    Generation stops at a stop string, at the next token once `should_stop()` returns true, and when the
    caller closes the iterator; the model is free again when the iterator is exhausted or closed. An error
    inside `generate` is raised here. Once the reply is complete, `on_finish` gets its finish reason:
    "stop" (EOS or a stop string) or "length" (`max_new_tokens`, or `should_stop()` cut it short)."""
    from threading import Event, Thread

    import torch
    from transformers import TextIteratorStreamer

    if settings.seed is not None:
        torch.manual_seed(settings.seed)
    generator, inputs = generation_inputs(model, tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
                                          .to(model.device), tokenizer.pad_token_id)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    closed = Event()
    halt = _Halt(tokenizer, inputs["input_ids"].shape[1], settings.stop,
                 lambda: closed.is_set() or (should_stop is not None and should_stop()))
    failure: list[BaseException] = []
    output: list[Any] = []

    def work() -> None:
        try:
            with torch.no_grad():
                output.append(generator.generate(**inputs, streamer=streamer, pad_token_id=tokenizer.pad_token_id,
                                                 stopping_criteria=_criteria(halt), **settings.generate_kwargs()))
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread below
            failure.append(exc)
            streamer.end()  # generate ends the streamer only when it returns; without this the reader waits forever

    worker = Thread(target=work, daemon=True)  # daemon: a stuck generation never keeps the process alive
    worker.start()
    emitted, sent = "", 0
    try:
        for piece in streamer:
            emitted += piece
            cut = _cut_at_stop(emitted, settings.stop)
            if cut != emitted:
                if cut[sent:]:
                    yield cut[sent:]
                if on_finish is not None:
                    on_finish("stop")
                return
            # Text that may be the start of a stop string waits until the next pieces show whether it is.
            ready = len(emitted) - _stop_prefix_length(emitted, settings.stop)
            if ready > sent:
                yield emitted[sent:ready]
                sent = ready
    finally:
        closed.set()  # the reader left (done, stop string, or closed early): end generation at the next token
        worker.join()
    if failure:
        raise failure[0]
    # The streamer may hold back the last tokens when a stopping criterion ends generation; the reply ends
    # as `generate_texts` would end it.
    new = output[0][0, inputs["input_ids"].shape[1]:]
    reply = _result(tokenizer, new, 0, halt.stopped_at.get(0), settings.stop)
    final = reply["text"]
    rest = final[sent:] if final.startswith(emitted[:sent]) else emitted[sent:]
    if rest:
        yield rest
    if on_finish is not None:
        on_finish(reply["finish_reason"])


def _stop_prefix_length(text: str, stop: tuple[str, ...]) -> int:
    """The length of the longest end of `text` that begins some stop string (0 when none does)."""
    return max((k for s in stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
