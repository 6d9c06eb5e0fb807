"""The command line end to end on the embedded tiny corpora: train, evaluate, load."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hybridnlp.cli import app
from hybridnlp.corpora import resolve_corpus
from hybridnlp.training import load_training_config

ROOT = Path(__file__).resolve().parent.parent
TINY_TEXTCAT = ROOT / "corpora" / "tiny_textcat"
TINY_NER = ROOT / "corpora" / "tiny_ner"
runner = CliRunner()


def fresh_process_predict(model_dir: Path, text: str) -> dict:
    """Load the pipeline with plain spaCy in a new interpreter (no hybridnlp import)."""
    code = (
        "import json, sys, spacy\n"
        f"nlp = spacy.load({str(model_dir)!r})\n"
        f"doc = nlp({text!r})\n"
        "print(json.dumps({'cats': doc.cats, 'ents': [(e.start, e.end, e.label_) for e in doc.ents]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("corpus,primary", [(TINY_TEXTCAT, "cats_macro_f"), (TINY_NER, "ents_f")])
def test_train_evaluate_and_load(tmp_path, corpus, primary):
    model = tmp_path / "model"
    result = runner.invoke(app, ["train", "fast", "--corpus", str(corpus), "--output", str(model)])
    assert result.exit_code == 0, result.output
    assert (model / "config.cfg").exists()
    scores_file = tmp_path / "scores.json"
    result = runner.invoke(
        app, ["evaluate", str(model), "--corpus", str(corpus), "--split", "test", "--output", str(scores_file)]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(scores_file.read_text())["scores"]
    assert 0.0 <= scores[primary] <= 1.0
    assert scores["words_per_second"] > 0
    if primary == "cats_macro_f":
        assert "accuracy" in scores and "cats_micro_f" in scores
    else:
        assert {"ents_p", "ents_r", "ents_per_type"} <= set(scores)
        # NER is scored the way the pipeline was trained (one sentence per doc here) unless
        # --n-sents groups sentences into larger docs.
        assert json.loads(scores_file.read_text())["n_sents"] == 1
        result = runner.invoke(app, ["evaluate", str(model), "--corpus", str(corpus), "--n-sents", "3",
                                     "--output", str(scores_file)])
        assert result.exit_code == 0, result.output
        grouped = json.loads(scores_file.read_text())
        assert grouped["n_sents"] == 3 and 0.0 <= grouped["scores"]["ents_f"] <= 1.0

    import spacy

    text = "Nolan Brask moved to Tarvik in March ."
    in_process = spacy.load(model)(text)
    other = fresh_process_predict(model, text)
    assert other["cats"] == pytest.approx(in_process.cats, abs=0)
    assert other["ents"] == [[e.start, e.end, e.label_] for e in in_process.ents]


def test_train_passes_config_overrides(tmp_path):
    model = tmp_path / "model"
    result = runner.invoke(
        app,
        ["train", "fast", "--corpus", str(TINY_TEXTCAT), "--output", str(model),
         "--components.tfidf_textcat.source", "svm"],
    )
    assert result.exit_code == 0, result.output
    import spacy

    doc = spacy.load(model)("where is my refund")
    assert set(doc._.hybrid_cats) == {"svm"}


def test_multi_label_corpus_switches_components(tmp_path):
    rows = [
        ("refund for the broken lamp and the late box", ["refund", "late"]),
        ("my refund never came", ["refund"]),
        ("the parcel is late again", ["late"]),
        ("late parcel and no refund yet", ["refund", "late"]),
    ] * 3
    for split in ("train", "dev", "test"):
        with (tmp_path / f"{split}.jsonl").open("w") as f:
            for text, labels in rows:
                f.write(json.dumps({"text": text, "labels": labels}) + "\n")
    info = resolve_corpus(str(tmp_path))
    assert info.multi_label
    config = load_training_config("fast", info)
    assert config["components"]["tfidf_textcat"]["multi_label"] is True
    config = load_training_config("accurate", info)
    assert config["components"]["trf_textcat"]["factory"] == "trf_textcat_multilabel"


def test_unknown_profile_and_missing_model(tmp_path):
    result = runner.invoke(app, ["train", "nosuch", "--corpus", str(TINY_NER), "--output", str(tmp_path / "m")])
    assert result.exit_code != 0
    assert "E200" in str(result.exception)
    result = runner.invoke(app, ["evaluate", str(tmp_path), "--corpus", str(TINY_NER)])
    assert result.exit_code != 0
    assert "E202" in result.output


def test_trained_n_sents_reads_the_dev_reader_of_the_config():
    from types import SimpleNamespace

    from hybridnlp.evaluation import trained_n_sents

    def pipeline(dev):
        return SimpleNamespace(config={"corpora": {"dev": dev}} if dev is not None else {})

    assert trained_n_sents(pipeline({"@readers": "hybridnlp.Corpus.v1", "path": None, "n_sents": 10})) == 10
    assert trained_n_sents(pipeline({"@readers": "spacy.Corpus.v1", "path": None})) == 1
    assert trained_n_sents(pipeline(None)) == 1
    assert trained_n_sents(pipeline({"n_sents": "${vars.n}"})) == 1


def test_console_script_prints_hybridnlp_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from hybridnlp.cli import main; main()", "train", "no-such-profile",
         "--corpus", str(TINY_TEXTCAT), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "[E200]" in result.stderr and "Traceback" not in result.stderr
