"""`axo serve CONFIG|RUN_DIR`: an OpenAI-compatible server for the base model and its adapters."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from axo.cli.report import print_errors
from axo.config.problems import ConfigError

if TYPE_CHECKING:
    from axo.infer.run_dir import Run
    from axo.infer.server import ServeLimits


def _parse_adapters(values: list[str]) -> dict[str, Path]:
    adapters = {}
    for value in values:
        name, _, path = value.partition("=")
        if not name or not path or not (Path(path) / "adapter_config.json").is_file():
            raise typer.BadParameter(f"{value!r}: expected NAME=PATH with an adapter folder at PATH", param_hint="--adapter")
        adapters[name] = Path(path)
    return adapters


def serve(
    ctx: typer.Context,
    target: Path = typer.Argument(..., help="A run directory or its config file.", show_default=False),
    adapter: list[str] = typer.Option([], "--adapter", help="Another adapter to serve, as NAME=PATH (repeatable)."),
    name: str = typer.Option(None, "--name", help="Model name of the run's adapter (default: the run folder's name)."),
    base_name: str = typer.Option("base", "--base-name", help="Model name of the base model without adapters."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; the default is reachable only from this machine."),
    port: int = typer.Option(8000, "--port"),
    api_key: str = typer.Option(None, "--api-key", envvar="AXO_API_KEY", show_envvar=True,
                                help="Require `Authorization: Bearer KEY`. On the command line it is visible in the "
                                "process list: prefer AXO_API_KEY or --api-key-file."),
    api_key_file: Path = typer.Option(None, "--api-key-file", help="Read the API key from this file (first line).",
                                      show_default=False),
    max_tokens_cap: int = typer.Option(2048, "--max-tokens-cap", min=1,
                                       help="Largest max_tokens a request may ask for (more is a 400); a request "
                                       "waits at most this many tokens' time for each one ahead of it."),
    max_body_bytes: int = typer.Option(1_000_000, "--max-body-bytes", min=1,
                                       help="Largest request body (more is a 400 `request_too_large`)."),
    request_timeout: float = typer.Option(600.0, "--request-timeout", min=0.1,
                                          help="Seconds a request may take, waiting in line included; generation "
                                          "stops there and the reply ends with finish_reason `length`."),
    max_queue: int = typer.Option(64, "--max-queue", min=1, help="Requests that may wait for the model at once "
                                  "(more get 503 `server_busy`)."),
    engine: str = typer.Option("hf", "--engine", help="`hf` (transformers, built in) or `vllm` (hands the model and "
                               "adapters to `vllm serve`; needs vllm installed)."),
) -> None:
    """Serve `/v1/models`, `/v1/completions` and `/v1/chat/completions` (streaming too) for the base model
    and its adapters, each selected by model name; `/v1/queue` reports the requests in line."""
    from axo.infer.run_dir import open_run
    from axo.infer.server import ServeLimits

    err = Console(stderr=True)
    api_key = _api_key(ctx, api_key, api_key_file, host, err)
    limits = ServeLimits(max_tokens_cap=max_tokens_cap, max_body_bytes=max_body_bytes,
                         request_timeout=request_timeout, max_queue=max_queue)
    if target.is_dir() and (target / "config.json").is_file() and not (target / "axo_config.yml").is_file():
        _serve_model_folder(target, name, host, port, api_key, limits, err)  # e.g. the output of `axo merge-lora`
        return
    try:
        run = open_run(target, command="serve")
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    adapters = _parse_adapters(adapter)
    if run.is_adapter:
        adapters = {name or run.output_dir.resolve().name: run.output_dir, **adapters}
    # An adapter run serves its base as `base_name`; a full fine-tune serves the trained model itself.
    base_name = base_name if run.is_adapter else (name or run.output_dir.resolve().name)
    if engine == "vllm":
        _hand_off_to_vllm(run, adapters, host, port, api_key, base_name, err)
    if engine != "hf":
        raise typer.BadParameter("use `hf` or `vllm`", param_hint="--engine")
    _require_server_packages(err)
    from axo.infer.adapter_sets import adapter_kinds
    from axo.infer.server import pool_for_run, run_server

    try:
        adapter_kinds(adapters)  # a damaged adapter is told before the base model loads
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    pool = pool_for_run(run, adapters, base_name, max_queue)
    _announce(err, pool.names, host, port, api_key)
    run_server(pool, host, port, api_key, limits)


def _hand_off_to_vllm(run: Run, adapters: dict[str, Path], host: str, port: int, api_key: str | None,
                      base_name: str, err: Console) -> None:
    """Replace this process with `vllm serve` for the run's base and adapters (see axo.infer.vllm); the
    command is printed first so it can be kept and run by hand."""
    from axo.infer.vllm import vllm_command

    try:
        model = run.base_model if run.is_adapter else str(run.output_dir)
        command = vllm_command(model, adapters, host, port, base_name=base_name,
                               chat_template=run.output_dir / "chat_template.jinja")
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    err.print("running: " + shlex.join(command), highlight=False, soft_wrap=True)
    if importlib.util.find_spec("vllm") is None:
        err.print("[bold red]error[/] --engine vllm needs vLLM installed (pip install vllm, on a CUDA machine); "
                  "the command above is what it would run.", highlight=False)
        raise typer.Exit(1)
    if api_key:
        os.environ["VLLM_API_KEY"] = api_key  # vLLM reads it there; on its command line it would be visible
    os.execvp(command[0], command)


def _api_key(ctx: typer.Context, api_key: str | None, api_key_file: Path | None, host: str, err: Console) -> str | None:
    """The key from --api-key-file, --api-key or AXO_API_KEY, with a warning for a key on the command line
    (any user can read it in the process list) and for a non-loopback address served without a key."""
    if api_key_file is not None:
        try:
            api_key = api_key_file.read_text().strip().splitlines()[0].strip()
        except (OSError, IndexError):
            err.print(f"[bold red]error[/] --api-key-file {api_key_file}: cannot read a key from it.", highlight=False)
            raise typer.Exit(1) from None
    elif api_key is not None and getattr(ctx.get_parameter_source("api_key"), "name", "") == "COMMANDLINE":
        # compared by name: typer 0.29 carries its own copy of click's ParameterSource
        err.print("[yellow]warning[/] --api-key on the command line is visible to every user in the process list; "
                  "use AXO_API_KEY or --api-key-file.", highlight=False, soft_wrap=True)
    if not api_key and not _loopback(host):
        err.print(f"[yellow]warning[/] serving on {host} without an API key: anyone who can reach this machine can "
                  "use the model. Set AXO_API_KEY or --api-key-file.", highlight=False, soft_wrap=True)
    return api_key or None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _require_server_packages(err: Console) -> None:
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        err.print("[bold red]error[/] serving needs fastapi and uvicorn: pip install 'axo[serve]'", highlight=False)
        raise typer.Exit(1)


def _announce(err: Console, names: list[str], host: str, port: int, api_key: str | None) -> None:
    err.print(f"serving {', '.join(names)} on http://{host}:{port}/v1" + (" (API key required)" if api_key else ""),
              highlight=False)


def _serve_model_folder(folder: Path, name: str | None, host: str, port: int, api_key: str | None, limits: ServeLimits,
                        err: Console) -> None:
    """Serve a plain Hugging Face model folder (no run directory around it); safetensors weights only, as
    every other command loads them (pickle can run code when loaded)."""
    _require_server_packages(err)
    from axo.models.loader import refuse_pickle_only
    from axo.models.weights import REDOWNLOAD, check_weight_files

    try:
        refuse_pickle_only(folder, str(folder))
        check_weight_files(folder, "", "model weights", REDOWNLOAD)
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axo.infer.server import ModelPool, run_server

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto", use_safetensors=True)
    pool = ModelPool(model, tokenizer, name or folder.resolve().name, {}, limits.max_queue)
    _announce(err, pool.names, host, port, api_key)
    run_server(pool, host, port, api_key, limits)
