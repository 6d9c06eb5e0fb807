"""The ``hybridnlp`` command line: train, evaluate, bench and select.

Extra ``--section.key value`` arguments override the profile's config, as with
``python -m spacy train``.
"""

import json
from pathlib import Path
from typing import Dict, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import Errors
from .harness.cli import bench, select

app = typer.Typer(
    help="Classical and transformer NLP pipelines for spaCy: train, evaluate, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command(context_settings=OVERRIDES)
def train(
    ctx: typer.Context,
    profile: str = typer.Argument(..., help="Profile name (fast, accurate, ...) or a config path."),
    corpus: str = typer.Option(..., "--corpus", "-c", help="Corpus name under $HYBRIDNLP_DATA or a path."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for the trained pipeline."),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to train on; -1 for CPU."),
):
    """Train PROFILE on the corpus's train split (dev scored as it trains); save a pipeline that
    ``spacy.load(OUTPUT)`` opens. Extra --section.key value options override the profile's
    config, as with spaCy's train (e.g. --training.max_steps 300, --paths.transformer DIR)."""
    from spacy.cli._util import parse_config_overrides

    from .corpora import resolve_corpus
    from .training import train as train_pipeline

    info = resolve_corpus(corpus)
    overrides = parse_config_overrides(list(ctx.args))
    console.print(f"Training [bold]{profile}[/] on [bold]{info.name}[/] ({info.task}) -> {output}")
    nlp = train_pipeline(profile, info, output, overrides=overrides, gpu_id=gpu_id)
    seconds = nlp.meta["hybridnlp"]["train_seconds"]
    console.print(f"[green]Saved[/] {output} (pipeline: {', '.join(nlp.pipe_names)}; {seconds:.1f} s)")


def scores_table(title: str, scores: Dict) -> Table:
    """A terminal table of the headline scores and, for NER, the per-type scores."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("accuracy", "cats_macro_f", "cats_micro_f", "cats_macro_auc", "ents_p", "ents_r",
                "ents_f", "words_per_second", "docs_per_second", "n_docs"):
        if isinstance(scores.get(key), (int, float)):
            value = scores[key]
            table.add_row(key, f"{value:,.0f}" if key in ("words_per_second", "docs_per_second", "n_docs") else f"{value:.4f}")
    for label, prf in sorted((scores.get("ents_per_type") or {}).items()):
        table.add_row(escape(f"ents_f[{label}]"), f"{prf['f']:.4f}")
    return table


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="A trained pipeline directory."),
    corpus: str = typer.Option(..., "--corpus", "-c", help="Corpus name under $HYBRIDNLP_DATA or a path."),
    split: str = typer.Option("test", "--split", help="Which split to score."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON."),
    batch_size: int = typer.Option(256, "--batch-size", help="Batch size for nlp.pipe."),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to run on; -1 for CPU."),
    n_sents: Optional[int] = typer.Option(
        None, "--n-sents", min=1,
        help="NER: corpus sentences per doc. Default: as the pipeline was trained (\\[corpora.dev] n_sents)."),
):
    """Score a trained pipeline on a corpus split: a table, and JSON with spaCy's score names."""
    import spacy

    from .corpora import resolve_corpus
    from .evaluation import evaluate as evaluate_pipeline
    from .evaluation import read_eval_examples, trained_n_sents

    if not (model / "config.cfg").exists():
        raise typer.BadParameter(Errors.E202.format(path=model))
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model)
    info = resolve_corpus(corpus)
    n_sents = n_sents or trained_n_sents(nlp)
    examples = read_eval_examples(nlp, info, split, n_sents)
    scores = evaluate_pipeline(nlp, examples, batch_size=batch_size, progress=f"{info.name}/{split}")
    console.print(scores_table(f"{model} on {info.name}/{split}", scores))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        payload = {"model": str(model), "corpus": info.name, "split": split, "scores": scores}
        if info.task == "ner":
            payload["n_sents"] = n_sents
        output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf8")
        console.print(f"Wrote {output}")


app.command(context_settings=OVERRIDES)(bench)
app.command()(select)


def main() -> None:
    """Console-script entry point. hybridnlp's own errors (``[E...]`` messages: an unknown
    profile, a corpus or pipeline that is not there, ...) are printed without a traceback."""
    try:
        app()
    except (ValueError, OSError) as err:
        message = str(err).strip()
        if not message.startswith("[E"):
            raise
        Console(stderr=True).print(f"[red]Error:[/] {escape(message)}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
