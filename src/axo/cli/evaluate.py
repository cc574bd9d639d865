"""`axo evaluate CONFIG|RUN_DIR`: loss/perplexity and generation metrics, optionally base vs adapter."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from axo.cli.report import print_errors
from axo.config.problems import ConfigError, Kind, Problem, Severity


def _rows(results: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in results.items():
        if isinstance(value, dict):
            flat.update(_rows(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)):
            flat[prefix + key] = value
    return flat


def evaluate(
    target: Path = typer.Argument(..., help="A run directory or its config file.", show_default=False),
    references: Path = typer.Option(None, "--references", "-r", help="JSONL with requests and answers "
                                    "(`ideal`/`reference`/`answer`/`output`) for generation metrics."),
    json_schema: Path = typer.Option(None, "--json-schema", help="A JSON schema the outputs should satisfy."),
    must_match: list[str] = typer.Option([], "--must-match", help="A regex every output should match (repeatable)."),
    must_not_match: list[str] = typer.Option([], "--must-not-match", help="A regex no output may match, e.g. a "
                                             "dangerous shell command (repeatable)."),
    self_consistency: int = typer.Option(0, "--self-consistency", help="Sample N answers per row; report the "
                                         "majority vote's accuracy and the agreement rate."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", min=1),
    limit: int = typer.Option(None, "--limit", help="Use only the first N reference rows (or pairs)."),
    choices: str = typer.Option(None, "--choices", help="Comma-separated labels for classification rows without a "
                                "`choices` field: reports the accuracy of the first label each output names, and "
                                "the majority-class baseline.", show_default=False),
    compare_base: bool = typer.Option(False, "--compare-base", help="Also evaluate the base model without the adapter."),
    base_only: bool = typer.Option(False, "--base-only", help="Evaluate only the base model, without the adapter (also "
                                   "for a run whose training never finished)."),
    pairs: Path = typer.Option(None, "--pairs", help="Preference runs: a JSONL file of chosen/rejected pairs in the "
                               "shape of the run's first dataset (its `type:` reads them), scored instead of the "
                               "run's eval split.", show_default=False),
    tasks: Path = typer.Option(None, "--tasks", help="Meta-learning runs: a JSONL file of held-out tasks (support and "
                               "query rows) for few-shot adaptation.", show_default=False),
    shots: str = typer.Option("1,3,5", "--shots", help="With --tasks: the support rows each method may learn from, "
                              "comma-separated."),
    compare_sft: Path = typer.Option(None, "--compare-sft", help="With --tasks: also a plain SFT run (its adapter "
                                     "adapted the same way, and given the examples in context).", show_default=False),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write eval_results.json (default: the run directory)."),
) -> None:
    """Evaluate a trained run: loss and perplexity on its eval split, and on a reference set exact match,
    normalised match, label accuracy against the majority-class baseline (rows with `choices`), JSON(-schema)
    validity, regex must/must-not rates and self-consistency. Preference runs (`rl:`): how often the policy
    prefers the chosen answer, and DPO's implicit-reward accuracy against the base; reward models: pairwise
    accuracy (chosen scored above rejected). Classifiers (`num_labels`): accuracy, macro-F1 and the confusion matrix
    (MAE and RMSE for regression) on the eval split, or on --references rows in the dataset's shape. Meta-learning runs (`--tasks`): few-shot adaptation of the
    meta-adapter against the base model's in-context learning (and a plain SFT adapter's, `--compare-sft`)."""
    from axo.data.errors import DataError
    from axo.data.prepare import prepare_data
    from axo.infer.classify import confusion_table, evaluate_classifier, is_classifier
    from axo.infer.evaluate import (
        EvalOptions,
        evaluate_model,
        read_json_schema,
        read_references,
    )
    from axo.infer.loading import describe_model, load_for_inference
    from axo.infer.pairwise import preference_metrics
    from axo.infer.run_dir import open_run

    err = Console(stderr=True)
    try:
        run = open_run(target, finished=not base_only, command="evaluate")
        if tasks is not None:
            return _few_shot(run, tasks, shots, compare_sft, max_new_tokens, limit, output, err)
        if pairs is not None and not (run.cfg.rl or run.cfg.reward_model):
            raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "--pairs", f"{run.output_dir} is not a "
                                       "preference or reward-model run; --pairs scores chosen/rejected pairs.",
                                       "Use --references for generation metrics.")])
        if pairs is not None and not pairs.is_file():
            raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "--pairs", f"{pairs}: no such file.",
                                       "Check the path.")])
        # Every input file is read before a model loads (seconds to minutes): a typo fails at once.
        schema = read_json_schema(json_schema) if json_schema else None
        classifier = is_classifier(run)
        if classifier and references is not None and not references.is_file():
            raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "--references", f"{references}: no "
                                       "such file.", "Check the path.")])
        rows = read_references(references, limit) if references and not classifier else None
        labels = [c.strip() for c in choices.split(",") if c.strip()] if choices else []
        options = EvalOptions(references, schema, list(must_match), list(must_not_match), self_consistency,
                              max_new_tokens, limit, labels)
        variants = {} if base_only else {"adapter" if run.is_adapter else "model": False}
        if compare_base or base_only:
            variants["base"] = True
        results = {}
        for name, bare in variants.items():
            err.print(f"loading {describe_model(run, bare)}", highlight=False, soft_wrap=True)
            model, tokenizer = load_for_inference(run, base_only=bare)
            preference = bool(run.cfg.rl or run.cfg.reward_model)
            samples = []
            if preference:
                results[name] = preference_metrics(run, model, tokenizer, pairs, bare, err, limit)
            elif classifier:  # accuracy, macro-F1, confusion matrix (MAE/RMSE for regression); base = fresh head
                results[name] = evaluate_classifier(run, model, tokenizer, references, limit)
            elif run.cfg.val_set_size > 0 or run.cfg.test_datasets:
                try:
                    cfg = run.cfg.model_copy(update={"base_model": run.base_model})
                    samples = prepare_data(cfg, tokenizer).eval
                except DataError as exc:
                    err.print(f"[yellow]note[/] no eval split: {exc.problems[0].render()}", highlight=False)
            if not classifier:
                results.setdefault(name, {}).update(evaluate_model(model, tokenizer, run, options, samples, rows,
                                                                   label=name))
            del model
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    if not any(_rows(r) for r in results.values()):
        err.print("[bold red]error[/] nothing to evaluate: the run has no eval split"
                  + (" of pairs and no --pairs file" if run.cfg.rl or run.cfg.reward_model else "")
                  + " and no --references were given.", highlight=False)
        raise typer.Exit(1)
    destination = output or run.output_dir / "eval_results.json"
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(json.dumps(results, indent=2))
    except OSError as exc:
        err.print(f"[bold red]error[/] cannot write {destination}: {exc.strerror}. Choose another file with -o.",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    table = Table(title=f"evaluation of {run.output_dir}")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    flat = {name: _rows(result) for name, result in results.items()}
    for metric in dict.fromkeys(k for rows in flat.values() for k in rows):
        table.add_row(metric, *[f"{flat[name].get(metric, float('nan')):.4g}" for name in results])
    Console().print(table)
    for name, result in results.items():
        if "confusion_matrix" in result:
            Console().print(confusion_table(f"confusion matrix ({name})", result["confusion_matrix"]))
    Console().print(f"results -> {destination}", highlight=False)


def _few_shot(run, tasks: Path, shots: str, compare_sft: Path | None, max_new_tokens: int, limit: int | None,
              output: Path | None, err: Console) -> None:
    """`--tasks`: the few-shot table (infer/few_shot.py), printed and written to eval_results.json."""
    from axo.infer.few_shot import few_shot_evaluation
    from axo.infer.run_dir import open_run

    if not tasks.is_file():
        raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "--tasks", f"{tasks}: no such file.",
                                   "Check the path.")])
    try:
        counts = sorted({int(part) for part in shots.split(",") if part.strip()})
    except ValueError:
        counts = []
    if not counts or counts[0] < 0:
        raise ConfigError([Problem(Severity.ERROR, Kind.TYPE, "--shots", f"{shots!r} is not a list of shot counts.",
                                   "Write them like --shots 1,3,5.")])
    sft = open_run(compare_sft, command="evaluate") if compare_sft is not None else None
    results = few_shot_evaluation(run, tasks, counts, sft=sft, max_new_tokens=max_new_tokens, limit=limit,
                                  say=lambda line: err.print(line, highlight=False, soft_wrap=True))
    destination = output or run.output_dir / "eval_results.json"
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(json.dumps(results, indent=2))
    tasks_word = "task" if results["tasks"] == 1 else "tasks"
    table = Table(title=f"few-shot adaptation on {results['tasks']} held-out {tasks_word} ({results['queries']} queries; "
                  f"{results['settings']['inner_steps']} inner steps at lr {results['settings']['inner_lr']:g})")
    table.add_column("method")
    for count in counts:
        table.add_column(f"{count}-shot match", justify="right")
        table.add_column(f"{count}-shot loss", justify="right")
    for method, by_shots in results["few_shot"].items():
        cells = [f"{by_shots[f'k={c}'][m]:.3f}" for c in counts for m in ("normalized_match", "query_loss")]
        table.add_row(method, *cells)
    Console().print(table)
    Console().print(f"results -> {destination}", highlight=False)
