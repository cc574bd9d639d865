"""The `axo` command line: one thin command per stage, each calling into its package."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from axo import __version__
from axo.cli.evaluate import evaluate
from axo.cli.export import export
from axo.cli.inference import inference
from axo.cli.init import init
from axo.cli.merge import merge_lora
from axo.cli.plan import plan
from axo.cli.preprocess import preprocess
from axo.cli.schema import config_schema
from axo.cli.serve import serve
from axo.cli.train import train
from axo.cli.validate import OVERRIDES_HELP, validate
from axo.config.problems import ConfigError

app = typer.Typer(
    name="axo",
    help="Fine-tune large language models from one Axolotl-compatible YAML file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_OVERRIDABLE = {"allow_extra_args": True, "ignore_unknown_options": True}

app.command("validate", context_settings=_OVERRIDABLE, epilog=OVERRIDES_HELP)(validate)
app.command("preprocess", context_settings=_OVERRIDABLE, epilog=OVERRIDES_HELP)(preprocess)
app.command("plan", context_settings=_OVERRIDABLE, epilog=OVERRIDES_HELP)(plan)
app.command("train", context_settings=_OVERRIDABLE, epilog=OVERRIDES_HELP)(train)
app.command("init")(init)
app.command("merge")(merge_lora)
app.command("merge-lora")(merge_lora)  # Axolotl's name
app.command("inference")(inference)
app.command("evaluate")(evaluate)
app.command("serve")(serve)
app.command("export")(export)
app.command("config-schema")(config_schema)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"axo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
) -> None:
    if debug:
        os.environ["AXO_DEBUG"] = "1"


# Exit status of an axo bug (sysexits' EX_SOFTWARE), so scripts can tell it from a user mistake (1) and from
# a usage error found by the command-line parser (2).
BUG_EXIT = 70
REPORT = ("This is a bug in axo, not a mistake in your input. Please report it on axo's issue tracker with the "
          "command you ran, the traceback above and the output of `axo --version` (axo {version}).")


def main() -> None:
    """Entry point: run the CLI. A user mistake (`ConfigError`) ends in its message and exit 1, never a
    traceback; anything else is a bug in axo and ends in the full traceback, a line asking for a report, and
    exit `BUG_EXIT`."""
    from axo.config.redact import install_redaction, redact_text
    from axo.torch_free import hide_torch_for
    from axo.train.allocator import choose_allocator
    from axo.train.upstream_warnings import silence_upstream_deprecations

    silence_upstream_deprecations()  # every command that builds a peft model would print them
    choose_allocator()  # expandable segments unless the user set torch's allocator (train/allocator.py)
    install_redaction()  # no log line or traceback shows a password or token (config/redact.py)
    try:
        hide_torch_for(sys.argv[1:])  # `axo preprocess` tokenizes without importing torch (torch_free.py)
        app(standalone_mode=True)
    except ConfigError as exc:
        if os.environ.get("AXO_DEBUG"):
            raise
        for problem in exc.problems:
            typer.echo(problem.render(), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception:  # noqa: BLE001 - the backstop: shown whole, never reworded into a vague message
        sys.stderr.write(redact_text(traceback.format_exc()))
        typer.echo("\n" + REPORT.format(version=__version__), err=True)
        sys.exit(BUG_EXIT)
