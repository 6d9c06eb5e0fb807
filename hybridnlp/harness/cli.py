"""``hybridnlp bench`` and ``hybridnlp select`` as typer command functions.

hybridnlp/cli.py registers them on the main app (``app.command()(bench)``,
``app.command()(select)``). Heavy imports happen inside the commands, so
``hybridnlp --help`` stays fast.
"""

import shlex
from pathlib import Path
from typing import Optional

import typer


def _split(values: str):
    return [v.strip() for v in values.split(",") if v.strip()]


def command_line(ctx: typer.Context) -> str:
    """The command as a user would retype it: ``hybridnlp bench`` and every option that
    differs from its default (rebuilt from the parsed values, so it is right however the
    command was invoked)."""
    parts = ["hybridnlp", ctx.info_name or "bench"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value == param.default or not param.opts:
            continue
        if isinstance(value, bool):
            flag = param.opts[0] if value else (param.secondary_opts or param.opts)[0]
            parts.append(flag)
        else:
            long_opts = [o for o in param.opts if o.startswith("--")] or param.opts
            parts += [long_opts[0], shlex.quote(str(value))]
    parts += [shlex.quote(arg) for arg in ctx.args]  # config overrides
    return " ".join(parts)


def bench(
    ctx: typer.Context,
    corpus: str = typer.Option(
        ..., "--corpus", "-c", help="Corpus names under $HYBRIDNLP_DATA or paths, comma-separated."),
    systems: str = typer.Option(
        "fast,accurate,hybrid,cascade", "--systems", "-s",
        help="Profile names or config paths, comma-separated (NAME=PATH names one; '{task}' in a path "
             "picks a config per task)."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Directory for results.json, results.md, the chart and models/."),
    models: Optional[Path] = typer.Option(
        None, "--models", "-m", help="Reuse pipelines from MODELS/CORPUS/SYSTEM (e.g. an earlier OUTPUT/models)."),
    split: str = typer.Option("test", "--split", help="Split every system is scored on."),
    batch_size: int = typer.Option(
        128, "--batch-size", "-b", help="Batch size for scoring, throughput and the memory probe."),
    threads: int = typer.Option(1, "--threads", help="Threads for numeric libraries (BLAS, OpenMP, torch)."),
    n_resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples and paired-test permutations."),
    seed: int = typer.Option(0, "--seed", help="Seed of the resampling."),
    rounds: int = typer.Option(3, "--rounds", help="Timed throughput rounds (the median is reported)."),
    speed_docs: int = typer.Option(
        1000, "--speed-docs", help="Documents timed for throughput (spread over the split)."),
    latency_docs: int = typer.Option(100, "--latency-docs", help="Documents timed one at a time for latency."),
    limit: int = typer.Option(0, "--limit", help="Score only the first N documents of the split (0 = all)."),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU for training and inference; -1 for CPU."),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="Measure serving memory in a fresh process."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show training logs and tracebacks of failed systems."),
):
    # Extra ``--section.key value`` arguments override every trained system's config, as
    # with ``python -m spacy train`` (e.g. ``--training.max_steps 150``).
    """Train (or reuse) each system on each corpus, score all of them on the same split with
    the same code path, measure speed, memory and size, and write results.json, results.md
    and quality_vs_speed.png to OUTPUT. Exits with 1 if a system failed or none finished
    (skipped systems alone do not fail the run). Extra --section.key value options override
    every trained system's config (e.g. --training.max_steps 150, --paths.lm DIR_OR_URL)."""
    from rich.console import Console

    from spacy.cli._util import parse_config_overrides

    from .runner import BenchSettings, run_bench

    console = Console()
    if not console.is_terminal:
        # Logs and CI: wide enough that the table's intervals are not cut.
        console = Console(width=180)
    settings = BenchSettings(split=split, batch_size=batch_size, threads=threads, n_resamples=n_resamples,
                             seed=seed, rounds=rounds, speed_docs=speed_docs, latency_docs=latency_docs,
                             limit=limit, gpu_id=gpu_id, measure_memory=memory, verbose=verbose,
                             overrides=parse_config_overrides(list(ctx.args)))  # it consumes the list
    command = command_line(ctx)
    try:
        results = run_bench(_split(corpus), _split(systems), output, models=models, settings=settings,
                            command=command, console=console)
    except ValueError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2)
    if any(run.get("status") == "failed" for run in results["runs"]):
        console.print("[red]Some systems failed[/] (see above and results.json); "
                      "rerun with --verbose for tracebacks.")
        raise typer.Exit(1)
    if not any(run.get("status") == "ok" for run in results["runs"]):
        console.print("[red]No system finished[/]: every run was skipped (reasons above).")
        raise typer.Exit(1)


def select(
    results: Path = typer.Argument(..., help="results.json written by 'hybridnlp bench'."),
    max_latency_ms: Optional[float] = typer.Option(
        None, "--max-latency-ms", help="Latency budget per document (batch size 1)."),
    min_words_per_second: Optional[float] = typer.Option(
        None, "--min-words-per-second", help="Throughput budget (words per second)."),
    corpus: Optional[str] = typer.Option(
        None, "--corpus", "-c", help="Only this corpus (default: every corpus in the results)."),
    percentile: int = typer.Option(95, "--percentile", help="Latency percentile the budget applies to: 50 or 95."),
):
    """Print the most accurate system that fits the budget and the path to load it
    (spacy.load(PATH)). Exits with 1 when no system fits."""
    from rich.console import Console

    from .report import load_results
    from .selection import select_systems

    console = Console()
    try:
        data = load_results(results)
        choices = select_systems(data, max_latency_ms=max_latency_ms, min_words_per_second=min_words_per_second,
                                 corpus=corpus, latency_percentile=percentile)
    except ValueError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2)
    missing = False
    for choice in choices:
        if choice.run is None:
            missing = True
            console.print(f"{choice.corpus}: {choice.message}", style="red", markup=False)
            continue
        run = choice.run
        score = run["scores"][choice.metric]
        console.print(
            f"{choice.corpus}: {run['system']} — {choice.metric} {score['value']:.4f}"
            + (f" [{score['low']:.4f}, {score['high']:.4f}]" if score.get("low") is not None else "")
            + f", p{percentile} {run.get(f'latency_ms_p{percentile}') or float('nan'):.2f} ms"
            + f", {run.get('words_per_second') or 0:,.0f} words/s",
            markup=False, highlight=False,
        )
        console.print(f"  load with: spacy.load({run.get('model_path')!r})", highlight=False)
    if missing:
        raise typer.Exit(1)
