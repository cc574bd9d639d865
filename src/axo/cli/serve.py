"""`axo serve CONFIG|RUN_DIR`: an OpenAI-compatible server for the base model and its adapters."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import typer
from rich.console import Console

from axo.cli.report import print_errors
from axo.config.problems import ConfigError


def _parse_adapters(values: list[str]) -> dict[str, Path]:
    adapters = {}
    for value in values:
        name, _, path = value.partition("=")
        if not name or not path or not (Path(path) / "adapter_config.json").is_file():
            raise typer.BadParameter(f"{value!r}: expected NAME=PATH with an adapter folder at PATH", param_hint="--adapter")
        adapters[name] = Path(path)
    return adapters


def serve(
    target: Path = typer.Argument(..., help="A run directory or its config file.", show_default=False),
    adapter: list[str] = typer.Option([], "--adapter", help="Another adapter to serve, as NAME=PATH (repeatable)."),
    name: str = typer.Option(None, "--name", help="Model name of the run's adapter (default: the run folder's name)."),
    base_name: str = typer.Option("base", "--base-name", help="Model name of the base model without adapters."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; the default is reachable only from this machine."),
    port: int = typer.Option(8000, "--port"),
    api_key: str = typer.Option(None, "--api-key", envvar="AXO_API_KEY", show_envvar=True,
                                help="Require `Authorization: Bearer KEY` (prefer the AXO_API_KEY variable)."),
    engine: str = typer.Option("hf", "--engine", help="`hf` (transformers, built in) or `vllm` (hands the model and "
                               "adapters to `vllm serve`; needs vllm installed)."),
) -> None:
    """Serve `/v1/models`, `/v1/completions` and `/v1/chat/completions` (streaming too) for the base model
    and its adapters, each selected by model name."""
    from axo.infer.run_dir import open_run

    err = Console(stderr=True)
    if target.is_dir() and (target / "config.json").is_file() and not (target / "axo_config.yml").is_file():
        _serve_model_folder(target, name, host, port, api_key, err)  # e.g. the output of `axo merge-lora`
        return
    try:
        run = open_run(target)
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    adapters = _parse_adapters(adapter)
    if run.is_adapter:
        adapters = {name or run.output_dir.resolve().name: run.output_dir, **adapters}
    if engine == "vllm":
        from axo.infer.server import vllm_command

        if importlib.util.find_spec("vllm") is None:
            err.print("[bold red]error[/] --engine vllm needs vLLM installed (pip install vllm, on a CUDA machine).",
                      highlight=False)
            raise typer.Exit(1)
        command = vllm_command(run.base_model, adapters, host, port, api_key)
        os.execvp(command[0], command)
    if engine != "hf":
        raise typer.BadParameter("use `hf` or `vllm`", param_hint="--engine")
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        err.print("[bold red]error[/] serving needs fastapi and uvicorn: pip install 'axo[serve]'", highlight=False)
        raise typer.Exit(1)
    import uvicorn

    from axo.infer.server import create_app, pool_for_run

    pool = pool_for_run(run, adapters, base_name if run.is_adapter else (name or run.output_dir.resolve().name))
    err.print(f"serving {', '.join(pool.names)} on http://{host}:{port}/v1"
              + (" (API key required)" if api_key else ""), highlight=False)
    uvicorn.run(create_app(pool, api_key), host=host, port=port, log_level="warning")


def _serve_model_folder(folder: Path, name: str | None, host: str, port: int, api_key: str | None, err: Console) -> None:
    """Serve a plain Hugging Face model folder (no run directory around it)."""
    import uvicorn
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axo.infer.server import ModelPool, create_app

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
    pool = ModelPool(model, tokenizer, name or folder.resolve().name, {})
    err.print(f"serving {pool.names[0]} on http://{host}:{port}/v1" + (" (API key required)" if api_key else ""),
              highlight=False)
    uvicorn.run(create_app(pool, api_key), host=host, port=port, log_level="warning")
