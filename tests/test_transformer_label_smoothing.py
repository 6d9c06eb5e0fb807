"""label_smoothing of the text classification heads: the loss trains towards targets moved
part of the way to uniform, a model fitted to them stops short of certainty, the setting
survives saving, and bad values are refused."""

import numpy
import pytest

try:
    from .transformer_fixtures import (  # noqa: F401
        TEXTCAT_TRAIN, make_trf_nlp, multilabel_examples, textcat_examples, tiny_bert_dir, tiny_bert_master,
        train_steps,
    )
except ImportError:  # tests/ is not a package
    from transformer_fixtures import (  # noqa: F401
        TEXTCAT_TRAIN, make_trf_nlp, multilabel_examples, textcat_examples, tiny_bert_dir, tiny_bert_master,
        train_steps,
    )

HEADS = [("trf_textcat", textcat_examples), ("trf_textcat_multilabel", multilabel_examples)]


def gold_matrix(head, examples):
    return numpy.array([[eg.reference.cats[label] for label in head.labels] for eg in examples], dtype="f")


@pytest.mark.parametrize("head_name,make_examples", HEADS)
def test_gradient_is_towards_the_smoothed_targets(tiny_bert_dir, head_name, make_examples):
    nlp = make_trf_nlp(tiny_bert_dir, head_name, {"label_smoothing": 0.2})
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe(head_name)
    gold = gold_matrix(head, examples)
    # Exclusive classes spread the mass over all labels, multi-label over each label's two outcomes.
    n_classes = len(head.labels) if head_name == "trf_textcat" else 2
    targets = gold * 0.8 + 0.2 / n_classes
    scores = numpy.random.default_rng(0).uniform(size=gold.shape).astype("f")
    loss, d_scores = head.get_loss(examples, head.model.ops.asarray(scores))
    numpy.testing.assert_allclose(head.model.ops.to_numpy(d_scores), scores - targets, rtol=1e-6)
    assert loss == pytest.approx(float(((scores - targets) ** 2).mean()), rel=1e-5)
    if head_name == "trf_textcat":
        assert targets.sum(axis=1) == pytest.approx(numpy.ones(len(examples)))


def test_zero_is_spacys_loss(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat")
    examples = textcat_examples(nlp)
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("trf_textcat")
    assert head.cfg["label_smoothing"] == 0.0
    scores = numpy.full((len(examples), len(head.labels)), 0.5, dtype="f")
    _, d_scores = head.get_loss(examples, head.model.ops.asarray(scores))
    numpy.testing.assert_array_equal(head.model.ops.to_numpy(d_scores), scores - gold_matrix(head, examples))


def test_fitted_model_stops_short_of_certainty_and_round_trips(tiny_bert_dir, tmp_path):
    import spacy

    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat", {"label_smoothing": 0.3})
    train_steps(nlp, textcat_examples(nlp), 60, 1e-3)
    texts = [text for text, _ in TEXTCAT_TRAIN]
    docs = list(nlp.pipe(texts))
    # Two labels: the smoothed target of the gold one is 0.85, so the fit ends near it and
    # still right on every training text.
    assert [max(doc.cats, key=doc.cats.get) for doc in docs] == [gold for _, gold in TEXTCAT_TRAIN]
    top = [max(doc.cats.values()) for doc in docs]
    assert 0.7 < min(top) and max(top) < 0.95
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    # srsly reads 0.3 back from the cfg JSON as 0.30000000000000004.
    assert loaded.get_pipe("trf_textcat").cfg["label_smoothing"] == pytest.approx(0.3)
    for a, b in zip(docs, loaded.pipe(texts)):
        assert a.cats == pytest.approx(b.cats, abs=1e-6)


@pytest.mark.parametrize("head_name", [head for head, _ in HEADS])
@pytest.mark.parametrize("bad", [-0.1, 1.0, 2])
def test_bad_smoothing_is_refused(tiny_bert_dir, head_name, bad):
    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        make_trf_nlp(tiny_bert_dir, head_name, {"label_smoothing": bad})


@pytest.mark.parametrize("bad", [float("nan"), True, "0.1", None])
def test_check_refuses_what_spacy_configs_let_through_from_python(bad):
    # spaCy's config validation stops these on the factory path; the constructors are
    # also called directly.
    from hybridnlp.components.transformer.textcat import check_label_smoothing

    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        check_label_smoothing(bad)
