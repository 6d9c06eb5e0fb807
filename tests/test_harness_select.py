"""``hybridnlp select`` and the reports, on a hand-made results.json."""

import json

import pytest
import typer
from typer.testing import CliRunner

from hybridnlp.harness.cli import bench, select
from hybridnlp.harness.report import markdown, pareto_front, plot
from hybridnlp.harness.runner import parse_systems
from hybridnlp.harness.selection import select_systems


def interval(value, width=0.02):
    return {"value": value, "low": value - width, "high": value + width}


def run(corpus, system, quality, wps, p50, p95, metric="accuracy", **extra):
    record = {
        "corpus": corpus, "system": system, "status": "ok", "primary_metric": metric,
        "scores": {metric: interval(quality)}, "words_per_second": wps, "docs_per_second": wps / 10,
        "latency_ms_p50": p50, "latency_ms_p95": p95, "peak_rss_mb": 300.0, "size_mb": 1.0,
        "train_seconds": 2.0, "p_value_vs_best": None, "model_path": f"/models/{corpus}/{system}",
    }
    record.update(extra)
    return record


@pytest.fixture
def results():
    return {
        "settings": {"split": "test", "threads": 1, "n_resamples": 1000, "confidence": 0.95},
        "corpora": [{"name": "intents", "task": "textcat", "split": "test", "n_docs": 500},
                    {"name": "news", "task": "ner", "split": "test", "n_docs": 300}],
        "runs": [
            run("intents", "fast", 0.80, 50_000, 0.4, 0.9, best_system="accurate", p_value_vs_best=0.001),
            run("intents", "hybrid", 0.88, 9_000, 2.0, 6.0, best_system="accurate", p_value_vs_best=0.2,
                same_as_best=True),
            run("intents", "accurate", 0.89, 1_500, 12.0, 30.0, best_system="accurate"),
            {"corpus": "intents", "system": "llm", "status": "skipped", "reason": "missing dependency"},
            run("news", "fast", 0.70, 20_000, 1.0, 3.0, metric="ents_f", best_system="accurate"),
            run("news", "accurate", 0.85, 800, 25.0, 80.0, metric="ents_f", best_system="accurate"),
        ],
    }


def test_select_picks_most_accurate_within_budget(results):
    [choice] = select_systems(results, max_latency_ms=10, corpus="intents")
    assert choice.run["system"] == "hybrid"  # accurate's p95 (30 ms) is over budget
    [choice] = select_systems(results, max_latency_ms=10, corpus="intents", latency_percentile=50)
    assert choice.run["system"] == "hybrid"  # p50 12 ms is still over
    [choice] = select_systems(results, max_latency_ms=15, corpus="intents", latency_percentile=50)
    assert choice.run["system"] == "accurate"
    [choice] = select_systems(results, min_words_per_second=10_000, corpus="intents")
    assert choice.run["system"] == "fast"
    [choice] = select_systems(results, min_words_per_second=1_000, corpus="intents")
    assert choice.run["system"] == "accurate"
    both = select_systems(results, max_latency_ms=7)
    assert [(c.corpus, c.run["system"]) for c in both] == [("intents", "hybrid"), ("news", "fast")]


def test_select_says_when_nothing_fits(results):
    [choice] = select_systems(results, max_latency_ms=0.1, corpus="news")
    assert choice.run is None
    assert "E609" in choice.message and "fast" in choice.message
    with pytest.raises(ValueError, match="E607"):
        select_systems(results, max_latency_ms=1, corpus="nope")


@pytest.fixture
def app():
    app = typer.Typer()
    app.command()(bench)
    app.command()(select)
    return app


def test_select_cli(results, tmp_path, app):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    runner = CliRunner()
    out = runner.invoke(app, ["select", str(path), "--max-latency-ms", "10", "--corpus", "intents"])
    assert out.exit_code == 0, out.output
    assert "hybrid" in out.output and "/models/intents/hybrid" in out.output
    out = runner.invoke(app, ["select", str(path), "--min-words-per-second", "1e9"])
    assert out.exit_code == 1
    assert "E609" in out.output
    out = runner.invoke(app, ["select", str(tmp_path / "missing.json"), "--max-latency-ms", "1"])
    assert out.exit_code == 2 and "E606" in out.output


def test_markdown_marks_best_and_equivalent(results):
    text = markdown(results)
    assert "## intents" in text and "## news" in text
    assert "| accurate ★ | 0.890 [0.870, 0.910]" in text
    assert "| hybrid ≈ |" in text
    assert "| fast |" in text  # significantly worse: no marker
    assert "llm: skipped — missing dependency" in text


def test_pareto_front_and_chart(results, tmp_path):
    points = [(50_000, 0.80), (9_000, 0.88), (1_500, 0.89), (1_000, 0.50), (40_000, 0.79)]
    assert pareto_front(points) == [2, 1, 0]
    path = tmp_path / "chart.png"
    assert plot(results, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_systems():
    systems = parse_systems(["fast", "mine=configs/a.cfg", "configs/b_{task}.cfg", " "])
    assert [(s.name, s.profile) for s in systems] == [
        ("fast", "fast"), ("mine", "configs/a.cfg"), ("b", "configs/b_{task}.cfg")]
    assert systems[2].for_task("ner") == "configs/b_ner.cfg"
    with pytest.raises(ValueError, match="E601"):
        parse_systems(["x=a.cfg", "x=b.cfg"])
