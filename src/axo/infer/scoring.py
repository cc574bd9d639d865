"""A reward model's scores for conversations (`axo inference` on a `reward_model: true` run)."""

from __future__ import annotations

from typing import Any

from axo.data.errors import data_error

_PROMPT_FIELDS = ("input", "prompt", "instruction")
_ANSWER_FIELDS = ("output", "response", "completion", "answer")


def conversation(row: dict[str, Any], origin: str = "", line: int | None = None) -> list[dict[str, str]]:
    """The messages a row asks to score: its `messages`, or its prompt (`input`/`prompt`/`instruction`) and
    answer (`output`/`response`/`completion`/`answer`) as one user and one assistant turn."""
    if isinstance(row.get("messages"), list):
        return row["messages"]
    prompt = next((row[f] for f in _PROMPT_FIELDS if isinstance(row.get(f), str)), None)
    answer = next((row[f] for f in _ANSWER_FIELDS if isinstance(row.get(f), str)), None)
    if prompt is None or answer is None:
        raise data_error("a reward model scores a conversation: give `messages`, or a prompt (input/prompt/"
                         "instruction) and an answer (output/response/completion/answer).", origin=origin or None,
                         line=line, hint='e.g. {"input": "What is 2+2?", "output": "4"}')
    system = [{"role": "system", "content": row["system"]}] if isinstance(row.get("system"), str) else []
    return system + [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def score_conversations(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], sequence_len: int,
                        batch_size: int = 8) -> list[float]:
    """One score per conversation: its chat-template rendering, tokenized without added special tokens and cut
    to `sequence_len` — the ids the reward model was trained on (data/preference/bradley_terry.py)."""
    from axo.infer.pairwise import scores

    ids = [tokenizer(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)
           ["input_ids"][:sequence_len] for messages in conversations]
    return scores(model, tokenizer, ids, batch_size)
