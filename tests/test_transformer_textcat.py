"""trf_textcat / trf_textcat_multilabel on a tiny random BERT: overfitting, IO, odd inputs."""

import shutil

import numpy
import pytest
import spacy
from thinc.api import Config

try:
    from .transformer_fixtures import (
        MULTILABEL_TRAIN, ODD_TEXTS, TEXTCAT_TRAIN, long_text, make_trf_nlp, multilabel_examples,
        predict_in_fresh_process, textcat_examples, tiny_bert_dir, tiny_bert_master, train_steps,
        write_tiny_bert,
    )
except ImportError:  # tests/ is not a package
    from transformer_fixtures import (
        MULTILABEL_TRAIN, ODD_TEXTS, TEXTCAT_TRAIN, long_text, make_trf_nlp, multilabel_examples,
        predict_in_fresh_process, textcat_examples, tiny_bert_dir, tiny_bert_master, train_steps,
        write_tiny_bert,
    )

from hybridnlp.components.outputs import ensure_extensions

TEXTS = [text for text, _ in TEXTCAT_TRAIN]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An exclusive textcat pipeline overfitted on TEXTCAT_TRAIN, with its loss history."""
    import torch

    torch.set_num_threads(1)
    model_dir = write_tiny_bert(tmp_path_factory.mktemp("textcat-bert") / "model")
    nlp = make_trf_nlp(model_dir, "trf_textcat")
    history = train_steps(nlp, textcat_examples(nlp), n_steps=40, learn_rate=0.002)
    return nlp, history, model_dir


def test_overfit_exclusive(trained):
    nlp, history, _ = trained
    assert history[-1] < history[0] * 0.2
    for text, gold in TEXTCAT_TRAIN:
        doc = nlp(text)
        assert max(doc.cats, key=doc.cats.get) == gold
        assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)
        assert doc._.hybrid_cats["trf_textcat"] == doc.cats
    scores = nlp.evaluate(textcat_examples(nlp))
    assert scores["cats_macro_f"] == 1.0
    assert scores["cats_score"] == 1.0


def test_disabled_transformer_raises_e520(trained):
    """Without the transformer's output spacy-transformers' listener feeds zeros; the head
    refuses instead of predicting from them. Empty docs need no output."""
    nlp = trained[0]
    with nlp.select_pipes(disable=["transformer"]):
        with pytest.raises(ValueError, match=r"\[E520\] Component 'trf_textcat'"):
            nlp("good film")
        assert nlp("") is not None
    assert nlp("good film").cats


@pytest.mark.parametrize("head", ["trf_textcat", "trf_ner"])
def test_replace_listeners_saves_and_loads(head, tmp_path):
    """nlp.replace_listeners gives the head its own copy of the transformer (spaCy's way of
    taking a component out of a pipeline that shares one); the pipeline saves, loads in a
    fresh process without the model directory, and predicts as before."""
    try:
        from .transformer_fixtures import ner_examples
    except ImportError:
        from transformer_fixtures import ner_examples

    model_dir = write_tiny_bert(tmp_path / "model")
    nlp = make_trf_nlp(model_dir, head)
    train_steps(nlp, ner_examples(nlp) if head == "trf_ner" else textcat_examples(nlp), n_steps=3, learn_rate=0.003)
    texts = TEXTS[:3] + ["", "Mary Jones works at Google in London ."]
    before = [(doc.cats, [(e.start, e.end, e.label_) for e in doc.ents]) for doc in nlp.pipe(texts)]
    nlp.replace_listeners("transformer", head, ["model.tok2vec"])
    nlp.remove_pipe("transformer")
    assert nlp.config["components"][head]["model"]["tok2vec"]["@architectures"] == "hybridnlp.Tok2VecTransformer.v1"
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(model_dir)
    after = predict_in_fresh_process(tmp_path / "pipeline", texts)
    for (cats, ents), out in zip(before, after):
        assert out["ents"] == [list(e) for e in ents]
        assert out["cats"].keys() == cats.keys()
        numpy.testing.assert_allclose(list(out["cats"].values()), list(cats.values()), atol=1e-5)


def test_pipe_agrees_with_call(trained):
    nlp = trained[0]
    texts = TEXTS + ["", "good", long_text(TEXTS, 300)]
    piped = [doc.cats for doc in nlp.pipe(texts, batch_size=3)]
    called = [nlp(text).cats for text in texts]
    for a, b in zip(piped, called):
        assert list(a) == list(b)
        numpy.testing.assert_allclose(list(a.values()), list(b.values()), atol=1e-5)


def test_io_without_model_dir(trained, tmp_path):
    nlp, _, model_dir = trained
    expected = [nlp(text).cats for text in TEXTS]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(model_dir)
    nlp2 = spacy.load(tmp_path / "pipeline")
    for text, cats in zip(TEXTS, expected):
        assert nlp2(text).cats == cats
    nlp3 = make_trf_nlp(model_dir, "trf_textcat")  # the directory is gone: never read
    nlp3.from_bytes(nlp.to_bytes())
    for text, cats in zip(TEXTS, expected):
        assert nlp3(text).cats == cats
    # The fresh process runs on CPU even when this one uses a GPU: allow rounding there.
    fresh = predict_in_fresh_process(tmp_path / "pipeline", TEXTS)
    for out, cats in zip(fresh, expected):
        assert out["cats"] == pytest.approx(cats, abs=1e-5)


def test_no_pickle_in_saved_pipeline(trained, tmp_path, monkeypatch):
    import pickle

    import torch

    nlp = trained[0]
    nlp.to_disk(tmp_path / "pipeline")

    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    nlp2 = spacy.load(tmp_path / "pipeline")
    assert nlp2(TEXTS[0]).cats == nlp(TEXTS[0]).cats


def test_long_document(trained):
    nlp = trained[0]
    text = long_text(["I love this movie , it was great fun"], min_words=900)
    wordpieces = nlp.get_pipe("transformer").model.tokenizer(text)["input_ids"]
    assert len(wordpieces) > 512
    doc = nlp(text)
    # Every token is covered by some window, so the mean of the token vectors sees the end.
    assert all(length > 0 for length in doc._.trf_data.align.lengths)
    assert max(doc.cats, key=doc.cats.get) == "positive"


def test_odd_inputs(trained):
    nlp = trained[0]
    alone = {text: nlp(text).cats for text in ODD_TEXTS}
    batched = list(nlp.pipe(ODD_TEXTS + TEXTS))
    for text, doc in zip(ODD_TEXTS, batched):
        assert set(doc.cats) == {"negative", "positive"}
        assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)
        numpy.testing.assert_allclose(list(doc.cats.values()), list(alone[text].values()), atol=1e-5)
    # An empty doc gets the model's no-evidence answer, alone or in a batch of empty docs.
    assert nlp("").cats == nlp("").cats
    empties = list(nlp.pipe(["", ""]))
    numpy.testing.assert_allclose(list(empties[0].cats.values()), list(alone[""].values()), atol=1e-6)


def test_very_long_document(trained):
    nlp = trained[0]
    text = ("great fun , I love it . " * 9000)[:200_000]
    doc = nlp(text)
    assert max(doc.cats, key=doc.cats.get) == "positive"


def test_untrained_raises(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat")
    with pytest.raises(ValueError, match=r"\[E100\]"):
        nlp("some text")
    # Initialized transformer, uninitialized head: the head says so.
    nlp.get_pipe("transformer").initialize(lambda: [], nlp=nlp)
    with pytest.raises(ValueError, match=r"\[E100\].*trf_textcat"):
        nlp("some text")


def test_needs_a_transformer():
    import hybridnlp.components.transformer.textcat  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("trf_textcat")
    with pytest.raises(ValueError, match=r"\[E503\]"):
        nlp.initialize(lambda: textcat_examples(nlp))


def test_overfit_multilabel(tiny_bert_dir, tmp_path):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat_multilabel")
    examples = multilabel_examples(nlp)
    history = train_steps(nlp, examples, n_steps=40, learn_rate=0.003)
    assert history[-1] < history[0] * 0.3
    for text, gold in MULTILABEL_TRAIN:
        doc = nlp(text)
        assert {label for label, p in doc.cats.items() if p > 0.5} == set(gold)
        assert doc._.hybrid_cats["trf_textcat_multilabel"] == doc.cats
    assert nlp.evaluate(examples)["cats_macro_f"] == 1.0
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(tiny_bert_dir)
    nlp2 = spacy.load(tmp_path / "pipeline")
    for text, _ in MULTILABEL_TRAIN:
        assert nlp2(text).cats == nlp(text).cats
    # Empty docs: one probability per label, in [0, 1], the same alone and batched.
    empty = nlp2("").cats
    assert set(empty) == {"music", "sport", "weather"}
    assert all(0.0 <= p <= 1.0 for p in empty.values())
    numpy.testing.assert_allclose(list(list(nlp2.pipe(["", "sunny"]))[0].cats.values()), list(empty.values()), atol=1e-6)


def test_source_setting(tiny_bert_dir):
    ensure_extensions()
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat", head_config={"source": "minilm"})
    train_steps(nlp, textcat_examples(nlp), n_steps=1, learn_rate=0.001)
    doc = nlp("good film")
    assert set(doc._.hybrid_cats) == {"minilm"}


@pytest.mark.parametrize("pooling", ["max", "first", "last"])
def test_reductions_beyond_mean_take_empty_docs(tiny_bert_dir, tmp_path, pooling):
    # thinc's max, first and last reductions refuse zero-length sequences; the head's model
    # gives an empty doc one zero vector instead, in training and prediction alike.
    from hybridnlp.components.transformer.textcat import DEFAULT_MODEL_CONFIG

    model = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]
    model[f"use_reduce_{pooling}"] = True
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat", {"model": model})
    examples = textcat_examples(nlp, TEXTCAT_TRAIN + [("", "negative")])
    history = train_steps(nlp, examples, n_steps=40, learn_rate=0.002)
    assert history[-1] < history[0] * 0.2
    assert [max(nlp(t).cats, key=nlp(t).cats.get) for t in TEXTS] == [gold for _, gold in TEXTCAT_TRAIN]
    texts = ODD_TEXTS + TEXTS
    alone = [nlp(text).cats for text in texts]
    for size in (1, 3, len(texts)):
        for doc, cats in zip(nlp.pipe(texts, batch_size=size), alone):
            numpy.testing.assert_allclose(list(doc.cats.values()), list(cats.values()), atol=1e-5)
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(tiny_bert_dir)
    loaded = spacy.load(tmp_path / "pipeline")
    for doc, cats in zip(loaded.pipe(texts, batch_size=3), alone):
        assert doc.cats == pytest.approx(cats, abs=1e-6)


def test_mean_pooling_model_matches_spacys(tiny_bert_dir):
    # hybridnlp.TextCatReduce.v1 is spaCy's model plus the empty-doc rule: with the same
    # weights and mean pooling (where spaCy already gives zeros for an empty doc) the two
    # predict the same, empty docs in a mixed batch included.
    from thinc.api import get_current_ops

    from hybridnlp.components.transformer.textcat import DEFAULT_MODEL_CONFIG

    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat")
    train_steps(nlp, textcat_examples(nlp), n_steps=5, learn_rate=0.002)
    spacy_model = Config().from_str(DEFAULT_MODEL_CONFIG.replace("hybridnlp.TextCatReduce.v1", "spacy.TextCatReduce.v1"))["model"]
    other = make_trf_nlp(tiny_bert_dir, "trf_textcat", {"model": spacy_model})
    other.initialize(lambda: textcat_examples(other))
    other.get_pipe("transformer").from_bytes(nlp.get_pipe("transformer").to_bytes())
    ours = nlp.get_pipe("trf_textcat").model.get_ref("output_layer")
    theirs = other.get_pipe("trf_textcat").model.get_ref("output_layer")
    for name in ("W", "b"):
        theirs.set_param(name, get_current_ops().asarray(ours.get_param(name)).copy())
    texts = ["", "good food", "   ", "terrible boring film"]
    for a, b in zip(nlp.pipe(texts), other.pipe(texts)):
        assert a.cats == pytest.approx(b.cats, abs=1e-6)
