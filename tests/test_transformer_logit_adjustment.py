"""logit_adjustment of trf_textcat: the loss adds tau times each class's log training
frequency to its logit, so a model trained on skewed classes stops favouring the frequent
ones; the class counts come from initialize and survive saving; bad values are refused."""

import numpy
import pytest

try:
    from .transformer_fixtures import (  # noqa: F401
        make_trf_nlp, multilabel_examples, textcat_examples, tiny_bert_dir, tiny_bert_master, train_steps,
    )
except ImportError:  # tests/ is not a package
    from transformer_fixtures import (  # noqa: F401
        make_trf_nlp, multilabel_examples, textcat_examples, tiny_bert_dir, tiny_bert_master, train_steps,
    )

# Four positive texts to one negative and one neutral: a prior of 4:1:1.
SKEWED = [
    ("I love this movie , it was great fun", "positive"),
    ("a wonderful book and very good food", "positive"),
    ("great service , we like it", "positive"),
    ("the best day , so good", "positive"),
    ("terrible food and awful service", "negative"),
    ("the train leaves at noon", "neutral"),
]


def test_counts_and_prior(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat", {"logit_adjustment": 1.0})
    nlp.initialize(lambda: textcat_examples(nlp, SKEWED))
    head = nlp.get_pipe("trf_textcat")
    assert head.cfg["class_counts"] == {"negative": 1, "neutral": 1, "positive": 4}
    # One added to each count: 2, 2, 5 of 9.
    numpy.testing.assert_allclose(numpy.exp(head.log_class_prior()), [2 / 9, 2 / 9, 5 / 9], rtol=1e-6)


def test_gradient_is_the_adjusted_softmax_minus_the_target(tiny_bert_dir):
    tau = 0.5
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat", {"logit_adjustment": tau})
    examples = textcat_examples(nlp, SKEWED)
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("trf_textcat")
    logits = numpy.random.default_rng(0).normal(size=(len(examples), 3)).astype("f")
    scores = numpy.exp(logits) / numpy.exp(logits).sum(axis=1, keepdims=True)
    prior = numpy.array([2 / 9, 2 / 9, 5 / 9], dtype="f")
    adjusted = numpy.exp(logits + tau * numpy.log(prior))
    adjusted /= adjusted.sum(axis=1, keepdims=True)
    gold = numpy.array([[eg.reference.cats[label] for label in head.labels] for eg in examples], dtype="f")
    loss, d_scores = head.get_loss(examples, head.model.ops.asarray(scores))
    numpy.testing.assert_allclose(head.model.ops.to_numpy(d_scores), adjusted - gold, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(float(((adjusted - gold) ** 2).mean()), rel=1e-5)


def test_zero_is_spacys_loss(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat")
    examples = textcat_examples(nlp, SKEWED)
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("trf_textcat")
    assert head.cfg["logit_adjustment"] == 0.0
    scores = numpy.full((len(examples), 3), 1 / 3, dtype="f")
    gold = numpy.array([[eg.reference.cats[label] for label in head.labels] for eg in examples], dtype="f")
    _, d_scores = head.get_loss(examples, head.model.ops.asarray(scores))
    numpy.testing.assert_allclose(head.model.ops.to_numpy(d_scores), scores - gold)


@pytest.mark.parametrize("tau,expected", [(0.0, [1 / 6, 1 / 6, 4 / 6]), (1.0, [0.75 / 2.7, 0.75 / 2.7, 1.2 / 2.7])])
def test_fit_reaches_the_adjusted_optimum(tiny_bert_dir, tau, expected):
    # One text, labelled positive four times, negative and neutral once each: the text says
    # nothing, so the best scores are the labels' shares (tau 0) or, with tau 1, the shares
    # divided by the prior (2/9, 2/9, 5/9 with one added to each count) and renormalised.
    data = [("the same text", label) for label in ["positive"] * 4 + ["negative", "neutral"]]
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat", {"logit_adjustment": tau})
    train_steps(nlp, textcat_examples(nlp, data), 100, 1e-2)
    cats = nlp("the same text").cats
    assert [cats[label] for label in ("negative", "neutral", "positive")] == pytest.approx(expected, abs=0.05)


def test_fitted_model_round_trips(tiny_bert_dir, tmp_path):
    import spacy

    texts = [text for text, _ in SKEWED]
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat", {"logit_adjustment": 1.0})
    train_steps(nlp, textcat_examples(nlp, SKEWED), 60, 1e-3)
    docs = list(nlp.pipe(texts))
    assert [max(doc.cats, key=doc.cats.get) for doc in docs] == [gold for _, gold in SKEWED]
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    head = loaded.get_pipe("trf_textcat")
    assert head.cfg["logit_adjustment"] == 1.0
    assert head.cfg["class_counts"] == {"negative": 1, "neutral": 1, "positive": 4}
    for a, b in zip(docs, loaded.pipe(texts)):
        assert a.cats == pytest.approx(b.cats, abs=1e-6)


def test_a_label_without_examples_has_a_finite_prior(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat", {"logit_adjustment": 1.0})
    examples = textcat_examples(nlp, SKEWED)
    nlp.config["initialize"]["components"]["trf_textcat"] = {"labels": ["negative", "neutral", "positive", "unseen"]}
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("trf_textcat")
    assert head.cfg["class_counts"]["unseen"] == 0
    assert numpy.isfinite(head.log_class_prior()).all()


@pytest.mark.parametrize("bad", [-0.1, -1])
def test_bad_values_are_refused(tiny_bert_dir, bad):
    with pytest.raises(ValueError, match="logit_adjustment must be a number >= 0"):
        make_trf_nlp(tiny_bert_dir, "trf_textcat", {"logit_adjustment": bad})


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), True, "1", None])
def test_check_refuses_what_spacy_configs_let_through_from_python(bad):
    # spaCy's config validation stops these on the factory path; the constructor is also
    # called directly.
    from hybridnlp.components.transformer.textcat import check_logit_adjustment

    with pytest.raises(ValueError, match="logit_adjustment must be a number >= 0"):
        check_logit_adjustment(bad)


def test_multi_label_head_takes_zero_and_refuses_more(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_textcat_multilabel", {"logit_adjustment": 0.0})
    assert "logit_adjustment" not in nlp.get_pipe("trf_textcat_multilabel").cfg
    nlp.initialize(lambda: multilabel_examples(nlp))
    assert nlp.get_pipe("trf_textcat_multilabel").cfg["class_counts"] == {"music": 3, "sport": 3, "weather": 4}
    with pytest.raises(ValueError, match="logit_adjustment applies to exclusive classes"):
        make_trf_nlp(tiny_bert_dir, "trf_textcat_multilabel", {"logit_adjustment": 1.0})
