"""Training helpers: checkpoint choice on dev, the init progress callback, saved configs."""

import json
from pathlib import Path

import spacy

from hybridnlp.corpora import resolve_corpus
from hybridnlp.training import better_on_dev, dev_score, train

TINY_TEXTCAT = Path(__file__).resolve().parent.parent / "corpora" / "tiny_textcat"


def write_permuted_corpus(target: Path) -> Path:
    """tiny_textcat with every label replaced by the next one: a model that learns it is
    wrong on the real dev split."""
    target.mkdir()
    for src in TINY_TEXTCAT.glob("*.jsonl"):
        rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
        labels = sorted({row["label"] for row in rows})
        shift = {label: labels[(i + 1) % len(labels)] for i, label in enumerate(labels)}
        with (target / src.name).open("w") as f:
            for row in rows:
                f.write(json.dumps({"text": row["text"], "label": shift[row["label"]]}) + "\n")
    return target


def test_better_on_dev_keeps_the_model_that_scores_higher(tmp_path):
    good = train("fast", TINY_TEXTCAT, tmp_path / "good", quiet=True)
    bad = train("fast", write_permuted_corpus(tmp_path / "permuted"), tmp_path / "bad", quiet=True)
    info = resolve_corpus(str(TINY_TEXTCAT))
    assert dev_score(good, info) > dev_score(bad, info)
    assert better_on_dev(good, bad, info) is good
    assert better_on_dev(bad, good, info) is good


def test_saved_config_has_no_training_callbacks(tmp_path):
    train("fast", TINY_TEXTCAT, tmp_path / "model", quiet=True)
    config = spacy.util.load_config(tmp_path / "model" / "config.cfg")
    assert config["initialize"]["before_init"] is None
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["hybridnlp"]["corpus"] == "tiny_textcat"
    assert meta["hybridnlp"]["train_seconds"] > 0
