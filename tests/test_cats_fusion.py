"""cats_fusion: pools two classifiers that err on different docs into one that errs on none,
keeps every source's own output, round-trips, and reports bad setups clearly.

Toy sources: "left" is sure and right on texts with "left" in them and mildly wrong
elsewhere; "right" the other way round. Each alone gets half the texts right; pooled, the
confident source wins every time.
"""


import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.training import Example

from hybridnlp.components.ensemble.cats_fusion import CatsFusion  # noqa: F401  (registers the factory)
from hybridnlp.components.outputs import write_cats

try:
    from .fusion_helpers import check_saved_cfg_errors
except ImportError:  # tests/ is not a package
    from fusion_helpers import check_saved_cfg_errors

LABELS = ["NEG", "POS"]


def gold_of(text):
    return "POS" if "good" in text else "NEG"


class ToySource:
    def __init__(self, name, strong_word, multi_label=False):
        self.name, self.strong_word, self.multi_label = name, strong_word, multi_label

    def __call__(self, doc):
        gold = gold_of(doc.text)
        sure = self.strong_word in doc.text
        p_gold = 0.95 if sure else 0.4
        if self.multi_label:
            cats = {"POS": p_gold if gold == "POS" else 1 - p_gold, "SPORT": 0.9 if "ball" in doc.text else 0.1}
        else:
            cats = {label: (p_gold if label == gold else 1 - p_gold) for label in LABELS}
        write_cats(doc, self.name, cats)
        return doc


@Language.factory("test_left_source", assigns=["doc.cats", "doc._.hybrid_cats"])
def make_left(nlp, name):
    return ToySource(name, "left")


@Language.factory("test_right_source", assigns=["doc.cats", "doc._.hybrid_cats"])
def make_right(nlp, name):
    return ToySource(name, "right")


@Language.factory("test_left_multi", assigns=["doc.cats", "doc._.hybrid_cats"])
def make_left_multi(nlp, name):
    return ToySource(name, "left", multi_label=True)


@Language.factory("test_right_multi", assigns=["doc.cats", "doc._.hybrid_cats"])
def make_right_multi(nlp, name):
    return ToySource(name, "right", multi_label=True)


TEXTS = ["good left", "bad left", "good right", "bad right", "very good left one", "so bad right now",
         "left good", "right bad"]


def make_nlp(multi_label=False, **config):
    nlp = spacy.blank("en")
    suffix = "multi" if multi_label else "source"
    nlp.add_pipe(f"test_left_{suffix}", name="left")
    nlp.add_pipe(f"test_right_{suffix}", name="right")
    nlp.add_pipe("cats_fusion", config={"multi_label": multi_label, **config})
    return nlp


def examples(nlp, texts=TEXTS):
    return [Example.from_dict(nlp.make_doc(t), {"cats": {l: float(l == gold_of(t)) for l in LABELS}}) for t in texts]


def fitted(**config):
    nlp = make_nlp(**config)
    dev = examples(nlp)
    nlp.get_pipe("cats_fusion").initialize(lambda: dev, nlp=nlp)
    return nlp


def top(doc):
    return max(doc.cats, key=doc.cats.get)


def test_pooling_beats_each_source():
    nlp = fitted()
    fusion = nlp.get_pipe("cats_fusion")
    assert fusion.sources == ["left", "right"]
    weights = fusion.weights_by_source()
    assert sum(weights.values()) == pytest.approx(1.0) and 0.2 < weights["left"] < 0.8
    docs = list(nlp.pipe(TEXTS))
    assert [top(d) for d in docs] == [gold_of(t) for t in TEXTS]
    for source in ("left", "right"):
        right = sum(max(d._.hybrid_cats[source], key=d._.hybrid_cats[source].get) == gold_of(d.text) for d in docs)
        assert right == len(TEXTS) // 2
    assert nlp.evaluate(examples(nlp))["cats_score"] == 1.0


def test_outputs_and_provenance():
    nlp = fitted()
    doc = nlp("good left")
    assert doc.cats == doc._.hybrid_cats["hybrid"]
    assert sum(doc.cats.values()) == pytest.approx(1.0)
    assert set(doc._.hybrid_cats) == {"left", "right", "hybrid"}


def test_multi_label():
    nlp = make_nlp(multi_label=True)
    dev = [Example.from_dict(nlp.make_doc(t), {"cats": {"POS": float(gold_of(t) == "POS"), "SPORT": float("ball" in t)}})
           for t in TEXTS + ["good ball left", "bad ball right"]]
    nlp.get_pipe("cats_fusion").initialize(lambda: dev, nlp=nlp)
    doc = nlp("good ball right")
    assert doc.cats["POS"] > 0.5 and doc.cats["SPORT"] > 0.5
    assert sum(doc.cats.values()) > 1.0  # independent labels


def test_pipe_agrees_with_call_and_odd_inputs():
    nlp = fitted()
    texts = TEXTS + ["", "   ", "😀", "\x00\x1b left"]
    piped = [d.cats for d in nlp.pipe(texts, batch_size=3)]
    called = [nlp(t).cats for t in texts]
    assert piped == called
    assert all(sum(c.values()) == pytest.approx(1.0) for c in piped)


def test_round_trip_identical(tmp_path):
    nlp = fitted()
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    for text in TEXTS:
        assert nlp(text).cats == loaded(text).cats
    fusion = CatsFusion(nlp.vocab).from_bytes(nlp.get_pipe("cats_fusion").to_bytes())
    assert fusion.cfg == nlp.get_pipe("cats_fusion").cfg


def test_untrained_raises_e100():
    with pytest.raises(ValueError, match=r"\[E100\]"):
        make_nlp()("good left")


def test_no_sources_raises_e511():
    nlp = spacy.blank("en")
    nlp.add_pipe("cats_fusion")
    with pytest.raises(ValueError, match=r"\[E511\]"):
        nlp.get_pipe("cats_fusion").initialize(lambda: examples(nlp), nlp=nlp)


def test_missing_source_raises_e514():
    nlp = make_nlp(sources=["left", "nowhere"])
    with pytest.raises(ValueError, match=r"\[E514\]"):
        nlp.get_pipe("cats_fusion").initialize(lambda: examples(nlp), nlp=nlp)


@pytest.mark.parametrize("setting", [{"threshold": 1.0}, {"threshold": 0.0}, {"key": ""}])
def test_bad_settings_are_refused(setting):
    with pytest.raises(ValueError, match=r"\[E104\]"):
        make_nlp(**setting)


def test_missing_or_corrupt_files(tmp_path):
    check_saved_cfg_errors(fitted(), "cats_fusion", tmp_path, lambda cfg: dict(cfg, weights=[1.0]))


def test_simplex_weights_sum_to_one():
    from hybridnlp.components.ensemble.cats_fusion import _simplex

    grid = list(_simplex(3))
    assert len(grid) == 231 and all(numpy.isclose(w.sum(), 1.0) and (w >= 0).all() for w in grid)


def test_label_unknown_to_one_source_is_not_vetoed():
    """A source trained without a label has no opinion on it (its cats lack the key): the
    label is scored by the sources that know it, not pushed to ~0 by the one that does not."""
    nlp = fitted()
    fusion = nlp.get_pipe("cats_fusion")
    fusion.cfg["labels"] = ["NEG", "NEW", "POS"]
    assert min(fusion.cfg["weights"]) > 0.2  # the source without the label counts
    doc = nlp.make_doc("a new intent")
    write_cats(doc, "left", {"NEG": 0.05, "NEW": 0.9, "POS": 0.05})
    write_cats(doc, "right", {"NEG": 0.5, "POS": 0.5})
    probs = fusion.predict([doc])[0]
    assert probs.argmax() == 1
    # With both sources knowing every label the fusion is the plain weighted geometric mean.
    write_cats(doc, "right", {"NEG": 0.25, "NEW": 0.5, "POS": 0.25})
    w_left, w_right = fusion.cfg["weights"]
    expected = numpy.array([0.05, 0.9, 0.05]) ** w_left * numpy.array([0.25, 0.5, 0.25]) ** w_right
    numpy.testing.assert_allclose(fusion.predict([doc])[0], expected / expected.sum(), rtol=1e-6)
