"""The benchmark's outputs: results.json, results.md (a README table), quality_vs_speed.png
and the table on the terminal. All of them are drawn from the results dictionary alone, so
they can be regenerated from a results.json (``write_reports(json.load(...), DIR)``)."""

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import Errors

METRIC_TITLES = {
    "accuracy": "Accuracy",
    "cats_macro_f": "Macro-F1",
    "cats_micro_f": "Micro-F1",
    "ents_f": "Entity F1",
    "ents_p": "Entity P",
    "ents_r": "Entity R",
}
# The quality columns of the tables, per task.
TABLE_METRICS = {"textcat": ("accuracy", "cats_macro_f"), "ner": ("ents_f", "ents_p", "ents_r")}
BEST_MARK = "★"
SAME_MARK = "≈"


def _clean(value):
    """JSON-safe copy: numpy scalars to Python numbers, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(results: Dict, path: Path) -> None:
    """Write the results as indented JSON (atomically, so a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(results), indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    tmp.replace(path)


def load_results(path) -> Dict:
    """Read a results.json written by ``hybridnlp bench``; ValueError (E606) otherwise."""
    path = Path(path)
    try:
        results = json.loads(path.read_text(encoding="utf8"))
    except FileNotFoundError:
        raise ValueError(Errors.E606.format(path=path, problem="no such file")) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(Errors.E606.format(path=path, problem=str(exc))) from None
    if not isinstance(results, dict) or not isinstance(results.get("runs"), list):
        raise ValueError(Errors.E606.format(path=path, problem="it has no list 'runs'"))
    return results


def runs_by_corpus(results: Dict) -> List[Tuple[str, List[Dict]]]:
    """(corpus, runs) in the order the corpora were benchmarked."""
    order: Dict[str, List[Dict]] = {}
    for run in results.get("runs", []):
        order.setdefault(run.get("corpus"), []).append(run)
    return list(order.items())


def corpus_record(results: Dict, corpus: str) -> Dict:
    for record in results.get("corpora", []):
        if record.get("name") == corpus:
            return record
    return {"name": corpus}


def run_quality(run: Dict, metric: Optional[str] = None) -> Optional[float]:
    """A run's value of ``metric`` (default: its primary metric), or None."""
    metric = metric or run.get("primary_metric")
    score = (run.get("scores") or {}).get(metric)
    if isinstance(score, dict):
        return score.get("value")
    return score if isinstance(score, (int, float)) else None


def fmt_interval(score) -> str:
    if not isinstance(score, dict) or score.get("value") is None:
        return "–"
    text = f"{score['value']:.3f}"
    if score.get("low") is not None and score.get("high") is not None:
        text += f" [{score['low']:.3f}, {score['high']:.3f}]"
    return text


def fmt_number(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def fmt_p(value) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def marker(run: Dict) -> str:
    """★ for the best system on its corpus, ≈ for those not significantly different."""
    if run.get("best_system") == run.get("system"):
        return BEST_MARK
    if run.get("same_as_best"):
        return SAME_MARK
    return ""


def table_rows(runs: Sequence[Dict], task: str) -> Tuple[List[str], List[List[str]]]:
    """Header and rows of a corpus's comparison table (finished runs only), best first."""
    metrics = TABLE_METRICS.get(task, ())
    header = (["System"] + [METRIC_TITLES[m] for m in metrics]
              + ["Words/s", "Docs/s", "p50 ms", "p95 ms", "Peak RSS MB", "Size MB", "Train s", "p vs best"])
    done = sorted((r for r in runs if r.get("status") == "ok"),
                  key=lambda r: -(run_quality(r) if run_quality(r) is not None else -1))
    rows = []
    for run in done:
        mark = marker(run)
        # A cascade says how many documents it sent to its expensive components.
        routed = f" ({run['routed']:.0%} routed)" if run.get("routed") is not None else ""
        rows.append(
            [run["system"] + routed + (f" {mark}" if mark else "")]
            + [fmt_interval((run.get("scores") or {}).get(m)) for m in metrics]
            + [fmt_number(run.get("words_per_second"), 0), fmt_number(run.get("docs_per_second"), 0),
               fmt_number(run.get("latency_ms_p50"), 2), fmt_number(run.get("latency_ms_p95"), 2),
               fmt_number(run.get("peak_rss_mb")), fmt_number(run.get("size_mb")),
               fmt_number(run.get("train_seconds")), fmt_p(run.get("p_value_vs_best"))]
        )
    return header, rows


def per_type_rows(runs: Sequence[Dict]) -> Tuple[List[str], List[List[str]]]:
    """Entity F1 per type (with intervals): systems as rows, types as columns."""
    done = [r for r in runs if r.get("status") == "ok" and (r.get("scores") or {}).get("ents_per_type")]
    labels = sorted({label for r in done for label in r["scores"]["ents_per_type"]})
    rows = [[r["system"]] + [fmt_interval(r["scores"]["ents_per_type"].get(label, {}).get("f")) for label in labels]
            for r in done]
    return ["System"] + labels, rows


def _md_table(header: List[str], rows: List[List[str]]) -> List[str]:
    escape = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(escape(h) for h in header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return lines


def markdown(results: Dict) -> str:
    """The results as Markdown: how they were measured, then one table per corpus."""
    settings = results.get("settings", {})
    hardware = results.get("hardware", {})
    versions = results.get("versions", {})
    confidence = round(100 * settings.get("confidence", 0.95))
    alpha = settings.get("alpha", 0.05)
    gpu = f", GPU {hardware['gpu']}" if hardware.get("gpu") else ", no GPU"
    used = [f"{name} {versions[name]}" for name in ("python", "spacy", "hybridnlp", "sklearn", "torch")
            if versions.get(name)]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {results.get('date', '')} with `{results.get('command', '')}` on "
        f"{hardware.get('cpu', '?')} ({hardware.get('cores', '?')} cores{gpu}), "
        f"{settings.get('threads', '?')} thread(s); {', '.join(used)}.",
        "",
        f"Quality on the `{settings.get('split', 'test')}` split with {confidence}% bootstrap intervals "
        f"({settings.get('n_resamples')} resamples of the documents). Words/s and docs/s: `nlp.pipe` at "
        f"batch size {settings.get('batch_size')} after a warm-up, median of {settings.get('rounds')} rounds "
        f"over up to {settings.get('speed_docs')} documents; latency: one document at a time over up to "
        f"{settings.get('latency_docs')} documents. Peak RSS: a fresh process that loads the pipeline and "
        f"runs it. {BEST_MARK} best on the corpus's main metric; {SAME_MARK} not significantly different "
        f"from it (paired approximate randomisation over documents, p ≥ {alpha}).",
    ]
    for corpus, runs in runs_by_corpus(results):
        record = corpus_record(results, corpus)
        task = record.get("task") or next((r.get("task") for r in runs if r.get("task")), None)
        detail = ", ".join(str(x) for x in (task, record.get("split"),
                                             f"{record['n_docs']:,} docs" if record.get("n_docs") else None) if x)
        lines += ["", f"## {corpus}" + (f" ({detail})" if detail else ""), ""]
        header, rows = table_rows(runs, task)
        if rows:
            lines += _md_table(header, rows)
        else:
            lines.append("No system finished on this corpus.")
        if task == "ner":
            header, rows = per_type_rows(runs)
            if rows and len(header) > 1:
                lines += ["", "Entity F1 per type:", ""] + _md_table(header, rows)
        others = [r for r in runs if r.get("status") != "ok"]
        if others:
            lines += [""] + [f"- {r['system']}: {r.get('status')} — {r.get('reason') or 'no reason recorded'}"
                             for r in others]
    return "\n".join(lines) + "\n"


def pareto_front(points: Sequence[Tuple[float, float]]) -> List[int]:
    """Indices of the points no other point beats on both speed (x) and quality (y),
    ordered by speed."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best_quality = [], -math.inf
    for i in order:
        if points[i][1] > best_quality:
            front.append(i)
            best_quality = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def plot(results: Dict, path: Path) -> bool:
    """Draw quality against words/s (log x), one subplot per corpus, with intervals as
    error bars and the Pareto front marked. Returns False when nothing could be drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for corpus, runs in runs_by_corpus(results):
        done = [r for r in runs if r.get("status") == "ok" and run_quality(r) is not None
                and (r.get("words_per_second") or 0) > 0]
        if done:
            panels.append((corpus, done))
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (corpus, runs) in zip(axes[0], panels):
        metric = runs[0].get("primary_metric")
        xs = [r["words_per_second"] for r in runs]
        ys = [run_quality(r) for r in runs]
        lows, highs = [], []
        for r, y in zip(runs, ys):
            score = r["scores"][metric]
            lows.append(max(0.0, y - score["low"]) if score.get("low") is not None else 0.0)
            highs.append(max(0.0, score["high"] - y) if score.get("high") is not None else 0.0)
        ax.errorbar(xs, ys, yerr=[lows, highs], fmt="o", color="tab:blue", ecolor="0.6", capsize=3)
        front = pareto_front(list(zip(xs, ys)))
        ax.plot([xs[i] for i in front], [ys[i] for i in front], "--", color="tab:red", lw=1,
                label="Pareto front")
        ax.scatter([xs[i] for i in front], [ys[i] for i in front], s=90, facecolors="none",
                   edgecolors="tab:red", zorder=3)
        for r, x, y in zip(runs, xs, ys):
            ax.annotate(r["system"] + (f" {marker(r)}" if marker(r) else ""), (x, y),
                        textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("words per second (log scale)")
        ax.set_ylabel(METRIC_TITLES.get(metric, metric))
        ax.set_title(corpus)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def terminal_tables(results: Dict):
    """rich Tables, one per corpus, with the same content as results.md."""
    from rich.markup import escape
    from rich.table import Table

    tables = []
    for corpus, runs in runs_by_corpus(results):
        record = corpus_record(results, corpus)
        task = record.get("task") or next((r.get("task") for r in runs if r.get("task")), None)
        header, rows = table_rows(runs, task)
        table = Table(title=escape(f"{corpus} ({task or '?'}, {record.get('split', '')})"))
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        for run in runs:
            if run.get("status") != "ok":
                table.add_row(escape(f"{run['system']} ({run.get('status')})"), *([""] * (len(header) - 1)))
        tables.append(table)
    return tables


def write_reports(results: Dict, output: Path, *, console=None) -> Dict[str, Optional[Path]]:
    """Write results.json, results.md and quality_vs_speed.png into ``output``, and print
    the tables. Returns the paths written (None for a chart that could not be drawn)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    paths: Dict[str, Optional[Path]] = {"json": output / "results.json", "markdown": output / "results.md",
                                        "chart": output / "quality_vs_speed.png"}
    write_json(results, paths["json"])
    paths["markdown"].write_text(markdown(results), encoding="utf8")
    try:
        if not plot(results, paths["chart"]):
            paths["chart"] = None
    except ImportError:
        paths["chart"] = None
        if console is not None:
            console.print(Errors.E611, style="yellow", markup=False)
    if console is not None:
        from rich.markup import escape

        for table in terminal_tables(results):
            console.print(table)
        skipped = [r for r in results.get("runs", []) if r.get("status") != "ok"]
        for run in skipped:
            console.print(f"[yellow]{escape(str(run['corpus']))}/{escape(run['system'])}: {run.get('status')}[/] — "
                          f"{escape(str(run.get('reason')))}")
        console.print(escape("Wrote " + ", ".join(str(p) for p in paths.values() if p is not None)))
    return paths
