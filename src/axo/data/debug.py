"""Show prepared samples the way a person checks them: each token coloured by whether it is trained."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from axo.data.formats.base import IGNORE_INDEX, Sample

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def render_sample(console: Console, sample: Sample, tokenizer: PreTrainedTokenizerBase, number: int,
                  plain: bool = False) -> None:
    """Print one sample: trained tokens green, masked tokens dim; `plain` adds a log-friendly form
    where trained spans are wrapped in [[ ]]."""
    pieces, plain_pieces, trained_open = [], [], False
    for token, label in zip(sample.input_ids, sample.labels):
        text = tokenizer.decode([token])
        trained = label != IGNORE_INDEX
        pieces.append(f"[bold green]{escape(text)}[/]" if trained else f"[dim]{escape(text)}[/]")
        if trained != trained_open:
            plain_pieces.append("[[" if trained else "]]")
            trained_open = trained
        plain_pieces.append(text)
    if trained_open:
        plain_pieces.append("]]")
    trained_count = sum(label != IGNORE_INDEX for label in sample.labels)
    console.rule(f"sample {number}: {len(sample.input_ids)} tokens, {trained_count} trained"
                 + (f", class {sample.label}" if sample.label is not None else ""))
    console.print("".join(pieces), soft_wrap=True, highlight=False)
    if plain:
        console.print("plain: " + escape("".join(plain_pieces)), soft_wrap=True, highlight=False, markup=True)


def print_summary(console: Console, meta: dict[str, Any], from_cache: bool, folder: str) -> None:
    """Rows in/out per dataset, drops by reason, token counts and the length histogram."""
    table = Table(title=f"prepared data ({'from cache' if from_cache else 'prepared now'}: {folder})")
    for column in ("dataset", "rows in", "samples out", "dropped", "truncated"):
        table.add_column(column)
    for section in ("datasets", "test_datasets"):
        for report in meta.get(section, []):
            dropped = ", ".join(f"{count} {why}" for why, count in report["dropped"].items()) or "0"
            table.add_row(report["path"], str(report["rows"]), str(report["samples"]), dropped, str(report["truncated"]))
    console.print(table)
    for split in ("train", "eval"):
        stats = meta[split]
        if not stats.get("samples"):  # preference rows are text: their modes print their own counts
            continue
        histogram = "  ".join(f"≤{bucket}: {count}" for bucket, count in stats["length_histogram"].items())
        console.print(f"[bold]{split}[/]: {stats['samples']} samples, {stats['tokens']:,} tokens, "
                      f"{stats['trained_tokens']:,} trained ({stats['trained_fraction']:.1%}), "
                      f"mean length {stats['mean_length']:.1f}, max {stats['max_length']}", highlight=False)
        untrained = stats.get("untrained_samples", 0)  # absent from caches written before issue 16
        if untrained:
            which = "1 sample has" if untrained == 1 else f"{untrained} samples have"
            console.print(f"  [yellow]{which} no trained token[/]: they teach nothing, and a training step made "
                          "only of them has a NaN loss (0/0). `sample_packing: true` drops them.", highlight=False)
        console.print(f"  lengths: {histogram}", highlight=False)


def print_rows(console: Console, rows: list[dict[str, Any]]) -> None:
    """Print prepared text rows (preference data: prompt and chosen/rejected, or completion and label), each
    field in full, so the rendering of the template can be checked by eye."""
    for number, row in enumerate(rows):
        console.rule(f"row {number}")
        for name, value in row.items():
            console.print(f"[bold]{name}[/]: " + escape(repr(value)), soft_wrap=True, highlight=False)
