"""The ``accurate`` profile configs train with spaCy's loop and load without the model dir.

The shipped configs run unchanged except for the model (a tiny random BERT instead of
MiniLM), the corpus (the tiny corpora in corpora/) and a few steps instead of the budget.
"""

import shutil
from pathlib import Path

import pytest
import spacy

try:
    from .transformer_fixtures import tiny_bert_dir, tiny_bert_master
except ImportError:  # tests/ is not a package
    from transformer_fixtures import tiny_bert_dir, tiny_bert_master

import hybridnlp.components.transformer.architectures  # noqa: F401  (until entry points)
import hybridnlp.components.transformer.ner  # noqa: F401
import hybridnlp.components.transformer.textcat  # noqa: F401
from hybridnlp.profiles import resolve_profile

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "task,corpus,head,score",
    [("textcat", "tiny_textcat", "trf_textcat", "cats_macro_f"), ("ner", "tiny_ner", "trf_ner", "ents_f")],
)
def test_accurate_profile_trains_and_loads(task, corpus, head, score, tiny_bert_dir, tmp_path):
    from hybridnlp.training import train

    config_path = resolve_profile("accurate", task)
    assert config_path.name == f"accurate_{task}.cfg"
    config = spacy.util.load_config(config_path, interpolate=True)
    assert config["components"]["transformer"]["model"]["name"] == "all-MiniLM-L6-v2"
    assert config["corpora"]["train"]["@readers"] == "hybridnlp.Corpus.v1"
    overrides = {
        "paths.transformer": str(tiny_bert_dir),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
        "training.optimizer.learn_rate.warmup_steps": 1,
    }
    nlp = train("accurate", REPO / "corpora" / corpus, tmp_path / "out", overrides=overrides, quiet=True)
    assert nlp.pipe_names == ["transformer", head]
    shutil.rmtree(tiny_bert_dir)
    loaded = spacy.load(tmp_path / "out")
    text = "Mary Jones cannot log in to her account in London since yesterday ."
    a, b = nlp(text), loaded(text)
    assert a.cats == b.cats
    assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
    if task == "textcat":
        assert set(b._.hybrid_cats[head]) == set(b.cats) and len(b.cats) > 1
    else:
        assert len(b.spans[head].attrs["scores"]) == len(b.spans[head])
    from hybridnlp.corpora import read_examples

    dev_file = next((REPO / "corpora" / corpus).glob("dev.*"))
    examples = read_examples(dev_file, loaded)
    assert score in loaded.evaluate(examples)
    # Training goes on with the pipeline's own optimizer settings (nlp.create_optimizer).
    assert loaded.config["training"]["optimizer"]["learn_rate"]["total_steps"] == 4
    losses = loaded.update(examples[:2])
    assert losses[head] >= 0


@pytest.mark.parametrize("checkpoint", ["best", "last"])
def test_checkpoint_setting_picks_the_saved_weights(checkpoint, tiny_bert_dir, tmp_path, monkeypatch):
    import spacy.training.loop

    from hybridnlp import training

    loop_result = {}
    spacy_train_loop = spacy.training.loop.train

    def recording_loop(nlp, *args, **kwargs):
        loop_result["nlp"] = nlp  # the loop trains this object: its weights are the last ones
        return spacy_train_loop(nlp, *args, **kwargs)

    compared = []

    def best_checkpoint(last, best, info):
        compared.append((last, best))
        return best

    monkeypatch.setattr(spacy.training.loop, "train", recording_loop)
    monkeypatch.setattr(training, "better_on_dev", best_checkpoint)
    overrides = {
        "paths.transformer": str(tiny_bert_dir),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
        "hybridnlp.checkpoint": checkpoint,
    }
    nlp = training.train("accurate", REPO / "corpora" / "tiny_textcat", tmp_path / "out", overrides=overrides, quiet=True)
    if checkpoint == "last":
        assert nlp is loop_result["nlp"] and not compared
    else:
        assert len(compared) == 1 and compared[0][0] is loop_result["nlp"] and nlp is compared[0][1]
    assert spacy.util.load_config(tmp_path / "out" / "config.cfg")["hybridnlp"]["checkpoint"] == checkpoint


def test_profiles_say_which_checkpoint_they_keep():
    textcat = spacy.util.load_config(resolve_profile("accurate", "textcat"))
    ner = spacy.util.load_config(resolve_profile("accurate", "ner"))
    assert textcat["hybridnlp"]["checkpoint"] == "last" and textcat["training"]["patience"] == 0
    assert ner["hybridnlp"]["checkpoint"] == "best"


def test_bad_checkpoint_setting_fails_before_training(tmp_path):
    from hybridnlp.training import train

    with pytest.raises(ValueError, match=r"\[E203\].*'newest'"):
        train("accurate", REPO / "corpora" / "tiny_textcat", tmp_path / "out",
              overrides={"hybridnlp.checkpoint": "newest"}, quiet=True)
    assert not (tmp_path / "out").exists()
