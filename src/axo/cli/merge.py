"""`axo merge CONFIG|RUN_DIR` (also `axo merge-lora`): a standalone safetensors model from base + adapter."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from axo.cli.report import print_errors
from axo.config.problems import ConfigError


def merge_lora(
    target: Path = typer.Argument(..., help="A run directory (output_dir of `axo train`) or its config file.",
                                  show_default=False),
    lora_model_dir: Path = typer.Option(None, "--lora-model-dir", help="Merge this adapter instead of the run's."),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the merged model (default: output_dir/merged)."),
    nf4_roundtrip: bool = typer.Option(False, "--nf4-roundtrip",
                                       help="Merge into the NF4-quantized-then-dequantized base, as a QLoRA adapter "
                                            "saw it in training (needs bitsandbytes)."),
) -> None:
    """Merge the adapter into its base model and write safetensors plus tokenizer and chat template: LoRA/DoRA
    shard by shard on CPU, the other kinds (IA3, LoHa, LoKr, OFT, BOFT, VeRA, AdaLoRA) through peft's
    merge_and_unload; prefix/prompt tuning has nothing to merge."""
    from axo.infer.merge import merge_lora as run_merge

    err = Console(stderr=True)
    try:
        report = run_merge(target, lora_model_dir=lora_model_dir, output=output, nf4_roundtrip=nf4_roundtrip)
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    Console().print(f"[bold green]merged[/] {report.merged_modules} adapted layers, {report.replaced_tensors} replaced "
                    f"tensors, {report.shards} shard(s) -> {report.output_dir}", highlight=False)
