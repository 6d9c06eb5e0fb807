"""span_fusion: learns on held-out examples which source to trust for which label, keeps
provenance, round-trips through to_disk/spacy.load, and reports bad setups clearly.

Two toy sources stand in for trained recognizers: each proposes spans from a fixed word list
with fixed confidences. "people" is right about PER and wrong about LOC, "places" the other
way round, so only a fusion that weighs sources per label gets every entity right.
"""


import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from hybridnlp.components.ensemble.span_fusion import SpanFusion  # noqa: F401  (registers the factory)
from hybridnlp.components.outputs import write_spans

try:
    from .fusion_helpers import check_saved_cfg_errors
except ImportError:  # tests/ is not a package
    from fusion_helpers import check_saved_cfg_errors

PEOPLE = {"Mary": ("PER", 0.9), "John": ("PER", 0.8), "Paris": ("PER", 0.7), "Rome": ("PER", 0.75)}
PLACES = {"Paris": ("LOC", 0.8), "Rome": ("LOC", 0.9), "Mary": ("LOC", 0.6), "John": ("LOC", 0.65)}


class WordListSource:
    def __init__(self, name, table, with_scores=True):
        self.name, self.table, self.with_scores = name, table, with_scores

    @property
    def source(self):
        return self.name

    def __call__(self, doc):
        spans = [(t.i, t.i + 1, *self.table[t.text]) for t in doc if t.text in self.table]
        group = write_spans(doc, self.name, spans)
        if not self.with_scores:
            del group.attrs["scores"]
        return doc


@Language.factory("test_people_source", assigns=["doc.spans"])
def make_people(nlp, name):
    return WordListSource(name, PEOPLE)


@Language.factory("test_places_source", assigns=["doc.spans"])
def make_places(nlp, name):
    return WordListSource(name, PLACES)


@Language.factory("test_unscored_source", assigns=["doc.spans"])
def make_unscored(nlp, name):
    return WordListSource(name, PEOPLE, with_scores=False)


GOLD = {"Mary": "PER", "John": "PER", "Paris": "LOC", "Rome": "LOC"}
SENTENCES = [
    "Mary flew to Paris today",
    "John lives in Rome",
    "Mary and John met in Rome",
    "from Paris to Rome with Mary",
    "the weather in Paris was fine",
    "John called",
]


def make_nlp(sources=None, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("test_people_source", name="people")
    nlp.add_pipe("test_places_source", name="places")
    if sources is not None:
        config["sources"] = sources
    nlp.add_pipe("span_fusion", config=config)
    return nlp


def examples(nlp, sentences=SENTENCES):
    out = []
    for text in sentences:
        words = text.split()
        tags = [f"B-{GOLD[w]}" if w in GOLD else "O" for w in words]
        out.append(Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, ents=tags)))
    return out


def fitted(**config):
    nlp = make_nlp(**config)
    dev = examples(nlp)
    nlp.get_pipe("span_fusion").initialize(lambda: dev, nlp=nlp)
    return nlp


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def test_learns_which_source_to_trust_per_label():
    nlp = fitted()
    fusion = nlp.get_pipe("span_fusion")
    assert fusion.sources == ["people", "places"]  # found by themselves
    doc = nlp("Rome and Mary and Paris and John")
    assert ents(doc) == [("Rome", "LOC"), ("Mary", "PER"), ("Paris", "LOC"), ("John", "PER")]
    # Each source alone gets half of them wrong.
    assert sum(s.label_ == GOLD[s.text] for s in doc.spans["people"]) == 2
    scores = nlp.evaluate(examples(nlp))
    assert scores["ents_f"] == 1.0
    weights = fusion.weights_by_feature()
    assert weights["people:confidence:PER"] > weights["people:confidence:LOC"]
    assert weights["places:confidence:LOC"] > weights["places:confidence:PER"]


def test_provenance_scores_and_ents():
    nlp = fitted()
    doc = nlp("Mary in Paris")
    group = doc.spans["hybrid"]
    assert [(s.text, s.label_) for s in group] == [("Mary", "PER"), ("Paris", "LOC")]
    # Each source proposed one of the two with the right label (and the other with the wrong).
    assert group.attrs["sources"] == [["people"], ["places"]]
    assert all(0.5 <= p <= 1.0 for p in group.attrs["scores"])
    assert ents(doc) == [("Mary", "PER"), ("Paris", "LOC")]


def test_pipe_agrees_with_call():
    nlp = fitted()
    texts = SENTENCES + ["", "   ", "😀 Rome 🇫🇷", "\x00 Mary \x1b"]
    piped = [(ents(d), d.spans["hybrid"].attrs["scores"]) for d in nlp.pipe(texts, batch_size=3)]
    called = [(ents(nlp(t)), nlp(t).spans["hybrid"].attrs["scores"]) for t in texts]
    assert piped == called


def test_odd_inputs_and_long_document():
    nlp = fitted()
    for text in ["", "   ", "\n\t", "😀🎉", "\x00\x01", "no names here"]:
        doc = nlp(text)
        assert list(doc.ents) == [] and len(doc.spans["hybrid"]) == 0
    long_doc = nlp(" ".join(["Mary went to Rome ."] * 2000))
    assert len(long_doc.ents) == 4000


def test_round_trip_identical(tmp_path):
    nlp = fitted()
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    for text in SENTENCES + ["Rome Paris Mary John"]:
        a, b = nlp(text), loaded(text)
        assert ents(a) == ents(b)
        assert a.spans["hybrid"].attrs["scores"] == b.spans["hybrid"].attrs["scores"]
        assert a.spans["hybrid"].attrs["sources"] == b.spans["hybrid"].attrs["sources"]
    assert loaded.get_pipe("span_fusion").to_bytes() == nlp.get_pipe("span_fusion").to_bytes()
    fusion = SpanFusion(nlp.vocab).from_bytes(nlp.get_pipe("span_fusion").to_bytes())
    assert fusion.cfg == nlp.get_pipe("span_fusion").cfg


def test_label_unseen_when_fitting_is_scored_not_crashed():
    nlp = fitted()
    doc = nlp.make_doc("Mary met Zed")
    for name in ("people", "places"):
        nlp.get_pipe(name)(doc)
    write_spans(doc, "people", [(0, 1, "PER", 0.9), (2, 3, "ALIEN", 0.99)])
    spans = nlp.get_pipe("span_fusion").predict([doc])[0]
    assert (0, 1, "PER") in {s[:3] for s in spans}
    assert all(0.0 < s[3] < 1.0 for s in spans)


def test_untrained_raises_e100():
    nlp = make_nlp()
    with pytest.raises(ValueError, match=r"\[E100\]"):
        nlp("Mary in Paris")


def test_no_sources_raises_e511():
    nlp = spacy.blank("en")
    nlp.add_pipe("span_fusion")
    with pytest.raises(ValueError, match=r"\[E511\]"):
        nlp.get_pipe("span_fusion").initialize(lambda: examples(nlp), nlp=nlp)


def test_nothing_to_learn_raises_e512():
    nlp = make_nlp()
    # No gold entities at all: every candidate is wrong.
    dev = [Example(nlp.make_doc(t), nlp.make_doc(t)) for t in SENTENCES]
    with pytest.raises(ValueError, match=r"\[E512\]"):
        nlp.get_pipe("span_fusion").initialize(lambda: dev, nlp=nlp)


def test_source_without_scores_raises_e513():
    nlp = spacy.blank("en")
    nlp.add_pipe("test_unscored_source", name="unscored")
    nlp.add_pipe("span_fusion", config={"sources": ["unscored"]})
    with pytest.raises(ValueError, match=r"\[E513\]"):
        nlp.get_pipe("span_fusion").initialize(lambda: examples(nlp), nlp=nlp)


def test_disabled_source_raises_e554():
    """Fitted on both sources' votes, the fusion refuses to run without one of them (it
    would do worse than the remaining source alone) instead of fusing what is left."""
    nlp = fitted()
    with nlp.select_pipes(disable=["places"]):
        with pytest.raises(ValueError, match=r"\[E554\].*'places'.*'sources'"):
            nlp("Mary flew to Paris today")
    assert ents(nlp("Mary flew to Paris today")) == [("Mary", "PER"), ("Paris", "LOC")]


@pytest.mark.parametrize("setting", [{"threshold": 1.5}, {"threshold": 0.0}, {"regularization": 0.0}, {"key": ""}])
def test_bad_settings_are_refused(setting):
    with pytest.raises(ValueError, match=r"\[E104\]"):
        make_nlp(**setting)


def test_missing_or_corrupt_files(tmp_path):
    check_saved_cfg_errors(fitted(), "span_fusion", tmp_path, lambda cfg: dict(cfg, weights=cfg["weights"][:-1]))


def noisy_dev(nlp, n=10, n_right=4):
    """'Mary' in every sentence, an entity in only ``n_right`` of them: the source that
    always proposes it is right 40% of the time and nothing tells the cases apart."""
    out = []
    for i in range(n):
        words = ["Mary", "waved", str(i)]
        tags = ["B-PER" if i < n_right else "O", "O", "O"]
        out.append(Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, ents=tags)))
    return out


def test_threshold_is_chosen_on_dev_for_f1():
    nlp = make_nlp(sources=["people"])
    dev = noisy_dev(nlp)
    fusion = nlp.get_pipe("span_fusion")
    fusion.initialize(lambda: dev, nlp=nlp)
    # Keeping every 'Mary' gives F1 0.57; a threshold of 0.5 would keep none (F1 0).
    assert fusion.cfg["threshold"] < 0.4 and not fusion.cfg["fixed_threshold"]
    assert ents(nlp("Mary waved")) == [("Mary", "PER")]


def test_fixed_threshold_is_kept():
    nlp = make_nlp(sources=["people"], threshold=0.5)
    dev = noisy_dev(nlp)
    fusion = nlp.get_pipe("span_fusion")
    fusion.initialize(lambda: dev, nlp=nlp)
    assert fusion.cfg["threshold"] == 0.5
    assert ents(nlp("Mary waved")) == []


@pytest.mark.parametrize("setting", [{"threshold": "high"}, {"threshold": True}, {"regularization": "x"}])
def test_bad_settings_from_python_are_refused(setting):
    # spaCy's config validation catches these in configs; Python callers get E104.
    with pytest.raises(ValueError, match=r"\[E104\]"):
        SpanFusion(spacy.blank("en").vocab, **setting)
