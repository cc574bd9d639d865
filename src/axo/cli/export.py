"""`axo export RUN_DIR --format gguf`: the run's model as one GGUF file for llama.cpp and Ollama (export/gguf.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from axo.cli.report import print_errors
from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.export.llama_cpp import QUANT_TYPES


def export(
    target: Path = typer.Argument(..., help="A run directory (output_dir of `axo train`) or its config file.",
                                  show_default=False),
    export_format: str = typer.Option("gguf", "--format", help="The file format; `gguf` (llama.cpp, Ollama)."),
    quant: str = typer.Option("f16", "--quant", help="GGUF type: " + ", ".join(QUANT_TYPES) + ". f32/f16/bf16/q8_0 "
                              "come from llama.cpp's converter; the others from its quantizer (needs the "
                              "llama-cpp-python package)."),
    output: Path = typer.Option(None, "--output", "-o", help="The GGUF file to write (default: "
                                "RUN_DIR/gguf/model-<quant>.gguf).", show_default=False),
    ollama: bool = typer.Option(False, "--ollama", help="Also write an Ollama Modelfile beside the GGUF."),
    llama_cpp_dir: Path = typer.Option(None, "--llama-cpp", help="Use the converter of this llama.cpp checkout "
                                       "instead of the pinned one (fetched once from the package index).",
                                       show_default=False),
) -> None:
    """Merge the run's adapter, convert with llama.cpp's own converter (and quantizer), and check that the GGUF
    carries the run's chat template and end-of-sequence token."""
    from axo.export.gguf import export_gguf

    err = Console(stderr=True)
    if export_format.lower() != "gguf":
        print_errors(err, [Problem(Severity.ERROR, Kind.TYPE, "--format", f"--format {export_format}: axo exports gguf",
                                   "Use --format gguf; `axo merge-lora` writes a safetensors model.")])
        raise typer.Exit(1)
    try:
        report = export_gguf(target, quant=quant, output=output, ollama=ollama, llama_cpp_dir=llama_cpp_dir,
                             say=lambda text: err.print(f"[dim]{text}[/]", highlight=False))
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    out = Console()
    out.print(f"[bold green]exported[/] {report.path} ({report.quant}, {report.size / 2**20:.1f} MiB, "
              f"{report.seconds} s; sha256 {report.sha256[:16]}…; chat template "
              f"{'embedded' if report.chat_template else 'none in the run'}, EOS {report.eos_token!r})",
              highlight=False, soft_wrap=True)
    if report.ollama_create:
        out.print(f"Ollama: {report.ollama_create}", highlight=False, soft_wrap=True)  # a line to copy whole
