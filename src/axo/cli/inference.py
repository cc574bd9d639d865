"""`axo inference CONFIG|RUN_DIR`: chat with the model interactively (streamed), or run a JSONL batch; a reward
model scores conversations instead, and a classifier predicts labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from axo.cli.report import print_errors
from axo.config.problems import ConfigError


def inference(
    target: Path = typer.Argument(..., help="A run directory or its config file.", show_default=False),
    input_file: Path = typer.Option(None, "--input", "-i", help="Batch mode: a JSONL file of requests "
                                    "(`messages`, `instruction`/`input`, or `prompt`)."),
    output_file: Path = typer.Option(None, "--output", "-o", help="Batch mode: where to write the rows with `output`."),
    base_only: bool = typer.Option(False, "--base-only", help="Use the base model without the adapter (also for a "
                                   "run whose training never finished)."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0 = greedy."),
    top_p: float = typer.Option(None, "--top-p", min=0.0, max=1.0),
    top_k: int = typer.Option(None, "--top-k", min=0),
    repetition_penalty: float = typer.Option(None, "--repetition-penalty", min=0.0),
    seed: int = typer.Option(None, "--seed", min=0, max=2**64 - 1, help="Seed for sampling (0 … 2**64-1, what "
                             "torch accepts)."),
    greedy: bool = typer.Option(False, "--greedy", help="Greedy decoding whatever the temperature."),
    system: str = typer.Option(None, "--system", help="Interactive chat: a system message."),
) -> None:
    """Generate with the trained model (base + adapter, or a full fine-tune) using the prompt format it
    was trained with: the chat template, or e.g. the alpaca template. A classifier (`num_labels`) prints the
    predicted label and its probabilities instead (batch rows: the run's text column, and its pair column)."""
    from axo.infer.batch import read_requests, run_batch
    from axo.infer.classify import is_classifier
    from axo.infer.generate import GenerationSettings, stream_text
    from axo.infer.loading import describe_model, load_for_inference
    from axo.infer.prompts import render_prompt, training_format
    from axo.infer.run_dir import open_run

    err = Console(stderr=True)
    settings = GenerationSettings(max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed, greedy)
    if (input_file is None) != (output_file is None):
        err.print("[bold red]error[/] batch mode needs both --input and --output.", highlight=False)
        raise typer.Exit(1)
    try:
        run = open_run(target, finished=not base_only, command="inference")
        # before the model loads (a reward model's rows are conversations to score, read by `_score`)
        scorer = run.cfg.reward_model or is_classifier(run)
        requests = read_requests(input_file) if input_file is not None and not scorer else None
        err.print(f"loading {describe_model(run, base_only)}", highlight=False, soft_wrap=True)
        model, tokenizer = load_for_inference(run, base_only=base_only)
        if is_classifier(run):
            _classify(model, tokenizer, run, input_file, output_file, err)
            return
        if run.cfg.reward_model:
            _score(model, tokenizer, run, input_file, output_file, err)
            return
        if requests is not None:
            count = run_batch(model, tokenizer, run.cfg, requests, output_file, settings)
            Console().print(f"[bold green]wrote[/] {count} rows -> {output_file}", highlight=False)
            return
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    kind, _ = training_format(run.cfg)
    err.print(f"[dim]chatting with {run.output_dir} ({kind} format); /reset clears the history, /exit or Ctrl-D quits[/]")
    history = [{"role": "system", "content": system}] if system else []
    while True:
        try:
            line = input("you> ")
        except EOFError:
            break
        if line.strip() in ("/exit", "/quit"):
            break
        if line.strip() == "/reset":
            history = history[:1] if system else []
            continue
        if kind == "chat":
            history.append({"role": "user", "content": line})
            prompt = render_prompt(run.cfg, tokenizer, {"messages": history})
        else:
            prompt = render_prompt(run.cfg, tokenizer, {"instruction": line} if kind == "alpaca" else {"prompt": line})
        reply = ""
        print("model> ", end="", flush=True)
        for piece in stream_text(model, tokenizer, prompt, settings):
            reply += piece
            print(piece, end="", flush=True)
        print()
        if kind == "chat":
            history.append({"role": "assistant", "content": reply})


def _classify(model: Any, tokenizer: Any, run: Any, input_file: Path | None, output_file: Path | None,
              err: Console) -> None:
    """A classifier predicts a label: each row of --input (the run's text column, and its pair column for a
    pair model) gets `label` and `probabilities` (`score` for regression) in --output; interactively, the
    texts (or one JSON line holding them) are read and the label and probabilities printed."""
    from axo.infer.classify import chat, class_names, encode_rows, is_regression, predict

    if input_file is None:
        chat(run, model, tokenizer, err)
        return
    from axo.data.sources import read_jsonl
    from axo.infer.batch import write_rows_atomically

    rows, lines = read_jsonl(input_file)
    samples = encode_rows(run, tokenizer, rows, str(input_file), lines)
    results = predict(model, tokenizer, samples, class_names(run, model, tokenizer), is_regression(run))
    write_rows_atomically(output_file, [{**row, **result} for row, result in zip(rows, results)])
    Console().print(f"[bold green]wrote[/] {len(rows)} predictions -> {output_file}", highlight=False)


def _score(model: Any, tokenizer: Any, run: Any, input_file: Path | None, output_file: Path | None,
           err: Console) -> None:
    """A reward model scores instead of generating: each row of --input (`messages`, or input + output) gets a
    `score` in --output; interactively, a prompt and an answer are read and their score printed."""
    from axo.data.sources import read_jsonl
    from axo.infer.scoring import conversation, score_conversations

    if input_file is not None:
        rows, lines = read_jsonl(input_file)
        talks = [conversation(row, str(input_file), line) for row, line in zip(rows, lines)]
        values = score_conversations(model, tokenizer, talks, run.cfg.sequence_len)
        from axo.infer.batch import write_rows_atomically

        write_rows_atomically(output_file, [{**row, "score": value} for row, value in zip(rows, values)])
        Console().print(f"[bold green]wrote[/] {len(rows)} scores -> {output_file}", highlight=False)
        return
    err.print(f"[dim]scoring with the reward model in {run.output_dir}: type a prompt, then an answer; /exit or "
              "Ctrl-D quits[/]")
    while True:
        try:
            prompt = input("prompt> ")
            if prompt.strip() in ("/exit", "/quit"):
                break
            answer = input("answer> ")
        except EOFError:
            break
        value = score_conversations(model, tokenizer, [conversation({"input": prompt, "output": answer})],
                                    run.cfg.sequence_len)[0]
        print(f"score: {value:.4f}", flush=True)
