"""Training helpers: checkpoint choice on dev, the init progress callback, saved configs."""

import json
from pathlib import Path

import spacy

from hybridnlp.corpora import resolve_corpus
from hybridnlp.training import better_on_dev, dev_score, fit_schedule_to_run, train

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


SCHEDULE_CONFIG = """
[paths]
train = null
dev = null

[nlp]
lang = "en"
pipeline = ["textcat"]

[components]

[components.textcat]
factory = "textcat"

[components.textcat.model]
@architectures = "spacy.TextCatBOW.v3"
exclusive_classes = true
ngram_size = 1
no_output_layer = false

[corpora]

[corpora.train]
@readers = "hybridnlp.Corpus.v1"
path = ${paths.train}

[corpora.dev]
@readers = "hybridnlp.Corpus.v1"
path = ${paths.dev}

[training]
seed = 0
gpu_allocator = null
max_steps = 1000
max_epochs = 3
eval_frequency = 10

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 8

[training.optimizer]
@optimizers = "Adam.v1"

[training.optimizer.learn_rate]
@schedules = "warmup_linear.v1"
warmup_steps = 2
total_steps = ${training.max_steps}
initial_rate = 0.001
"""


def schedule_nlp(tmp_path, **overrides):
    from spacy.training.initialize import init_nlp

    config = spacy.util.load_config_from_str(SCHEDULE_CONFIG, interpolate=False)
    settings = {"paths.train": str(TINY_TEXTCAT / "train.jsonl"), "paths.dev": str(TINY_TEXTCAT / "dev.jsonl")}
    settings.update(overrides)
    config = spacy.util.load_config_from_str(config.to_str(), overrides=settings, interpolate=False)
    return init_nlp(config)


def test_schedule_ends_with_the_epochs(tmp_path):
    n_train = sum(1 for line in (TINY_TEXTCAT / "train.jsonl").read_text().splitlines() if line.strip())
    per_epoch = -(-n_train // 8)  # batches of 8 texts
    nlp = schedule_nlp(tmp_path)
    assert fit_schedule_to_run(nlp) == 3 * per_epoch
    assert nlp.config["training"]["optimizer"]["learn_rate"]["total_steps"] == 3 * per_epoch
    # max_steps binds first, max_epochs unlimited, or a schedule of the user's own: unchanged.
    for overrides in ({"training.max_steps": 2}, {"training.max_epochs": 0},
                      {"training.optimizer.learn_rate.total_steps": 50}):
        nlp = schedule_nlp(tmp_path, **overrides)
        before = nlp.config["training"]["optimizer"]["learn_rate"]["total_steps"]
        assert fit_schedule_to_run(nlp) is None
        assert nlp.config["training"]["optimizer"]["learn_rate"]["total_steps"] == before
