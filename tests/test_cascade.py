"""cascade: sends only the docs the cheap classifier is unsure of to the (disabled) expensive
components, chooses its threshold on dev for a target quality, records the route, keeps the
cheap answer elsewhere, round-trips, and reports bad setups clearly.

Toy components: "cheap" is sure (0.95) and right on texts with "sure" in them, unsure (0.55)
and wrong elsewhere; "expensive" is always right and counts the docs it sees.
"""

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.training import Example

from hybridnlp.components.ensemble.cascade import Cascade, _tradeoff  # noqa: F401  (registers the factory)
from hybridnlp.components.outputs import write_cats

try:
    from .fusion_helpers import check_saved_cfg_errors
    from .transformer_fixtures import predict_in_fresh_process, tiny_bert_dir, tiny_bert_master  # noqa: F401
except ImportError:  # tests/ is not a package
    from fusion_helpers import check_saved_cfg_errors
    from transformer_fixtures import predict_in_fresh_process, tiny_bert_dir, tiny_bert_master  # noqa: F401

LABELS = ["NEG", "POS"]
SEEN = []  # texts the expensive toy was run on


def gold_of(text):
    return "POS" if "good" in text else "NEG"


class ToyCheap:
    def __init__(self, name, multi_label=False):
        self.name, self.multi_label = name, multi_label

    def __call__(self, doc):
        gold = gold_of(doc.text)
        sure = "sure" in doc.text
        p = 0.95 if sure else 0.55
        answer = gold if sure else ("NEG" if gold == "POS" else "POS")
        if self.multi_label:
            cats = {"POS": p if answer == "POS" else 1 - p, "SPORT": 0.99 if "ball" in doc.text else 0.01}
        else:
            cats = {label: (p if label == answer else 1 - p) for label in LABELS}
        write_cats(doc, self.name, cats)
        return doc


class ToyExpensive:
    def __init__(self, name, multi_label=False):
        self.name, self.multi_label = name, multi_label

    def __call__(self, doc):
        SEEN.append(doc.text)
        gold = gold_of(doc.text)
        cats = {label: (0.9 if label == gold else 0.1) for label in LABELS}
        if self.multi_label:
            cats = {"POS": cats["POS"], "SPORT": 0.9 if "ball" in doc.text else 0.1}
        write_cats(doc, self.name, cats)
        return doc


@Language.factory("test_cascade_cheap", assigns=["doc.cats", "doc._.hybrid_cats"])
def make_cheap(nlp, name, multi_label: bool = False):
    return ToyCheap(name, multi_label)


@Language.factory("test_cascade_expensive", assigns=["doc.cats", "doc._.hybrid_cats"])
def make_expensive(nlp, name, multi_label: bool = False):
    return ToyExpensive(name, multi_label)


TEXTS = ["sure good", "sure bad", "good one", "bad one", "very sure and good", "so bad", "sure of it, bad",
         "good, not that"]


def make_nlp(multi_label=False, disable=True, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("test_cascade_cheap", name="cheap", config={"multi_label": multi_label})
    nlp.add_pipe("test_cascade_expensive", name="expensive", config={"multi_label": multi_label})
    nlp.add_pipe("cascade", config={"expensive": ["expensive"], "multi_label": multi_label, **config})
    if disable:
        nlp.disable_pipe("expensive")
    return nlp


def corpus_examples(nlp, corpus):
    from hybridnlp.corpora import resolve_corpus

    return resolve_corpus(corpus).examples("dev", nlp)


def examples(nlp, texts=TEXTS):
    return [Example.from_dict(nlp.make_doc(t), {"cats": {l: float(l == gold_of(t)) for l in LABELS}}) for t in texts]


def fitted(**config):
    nlp = make_nlp(**config)
    dev = examples(nlp)
    nlp.get_pipe("cascade").initialize(lambda: dev, nlp=nlp)
    return nlp


def top(doc):
    return max(doc.cats, key=doc.cats.get)


def test_routes_only_the_unsure_docs():
    nlp = fitted()
    cascade = nlp.get_pipe("cascade")
    assert cascade.cfg["source"] == "cheap"
    # Sure docs have confidence 0.95, unsure ones 0.55: the threshold falls between them.
    assert 0.55 < cascade.route_threshold < 0.95
    assert cascade.cfg["dev"] == {"n": 8, "cheap": 0.5, "expensive": 1.0, "cascade": 1.0, "routed": 0.5}
    SEEN.clear()
    docs = list(nlp.pipe(TEXTS))
    unsure = [t for t in TEXTS if "sure" not in t]
    assert sorted(SEEN) == sorted(unsure)  # the expensive component saw nothing else
    assert [d._.hybrid_route for d in docs] == ["cheap" if "sure" in t else "expensive" for t in TEXTS]
    assert [top(d) for d in docs] == [gold_of(t) for t in TEXTS]
    for doc in docs:  # the final answer is the expensive one where it ran, the cheap one elsewhere
        owner = "expensive" if doc._.hybrid_route == "expensive" else "cheap"
        assert doc.cats == doc._.hybrid_cats[owner]
        assert ("expensive" in doc._.hybrid_cats) == (owner == "expensive")
    scores = nlp.evaluate(examples(nlp))
    assert scores["cats_score"] == 1.0 and scores["cascade_routed"] == 0.5


def test_dev_curve_and_targets():
    nlp = fitted()
    curve = nlp.get_pipe("cascade").dev_curve()
    assert [(p["routed"], p["quality"]) for p in curve] == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]
    # The same trade-off on other examples (a test split), here the dev ones again.
    assert nlp.get_pipe("cascade").tradeoff(examples(nlp)) == curve
    # A target the cheap classifier meets alone sends nothing on.
    nlp = fitted(target_quality=0.5)
    assert nlp.get_pipe("cascade").route_threshold == 0.0
    SEEN.clear()
    assert {d._.hybrid_route for d in nlp.pipe(TEXTS)} == {"cheap"} and SEEN == []
    # An unreachable target: the best quality there is, with the fewest docs sent on.
    nlp = fitted(target_quality=1.0, max_quality_loss=0.0)
    assert nlp.get_pipe("cascade").cfg["dev"]["routed"] == 0.5
    # A fixed threshold is kept; 1.0 sends every doc on (none is surer than 0.95).
    nlp = fitted(route_threshold=1.0)
    assert nlp.get_pipe("cascade").route_threshold == 1.0
    assert {d._.hybrid_route for d in nlp.pipe(TEXTS)} == {"expensive"}


def test_tradeoff_keeps_ties_together():
    confidence = numpy.array([0.9, 0.6, 0.6, 0.3])
    cheap = numpy.array([[1, 1, 0], [0, 1, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    expensive = numpy.ones((4, 3)) * [1, 1, 0]
    thresholds, routed, quality = _tradeoff(confidence, cheap, expensive, micro_f1=False)
    assert list(routed) == [0.0, 0.25, 0.75, 1.0]  # the two docs at 0.6 move together
    assert list(quality) == [0.5, 0.75, 1.0, 1.0]
    assert (confidence < thresholds[2]).sum() == 3 and (confidence < thresholds[-1]).all()


def test_multi_label_routes_by_the_least_certain_label():
    nlp = make_nlp(multi_label=True)
    dev = [Example.from_dict(nlp.make_doc(t), {"cats": {"POS": float(gold_of(t) == "POS"), "SPORT": float("ball" in t)}})
           for t in TEXTS + ["sure good ball", "bad ball"]]
    nlp.get_pipe("cascade").initialize(lambda: dev, nlp=nlp)
    cascade = nlp.get_pipe("cascade")
    assert cascade.cfg["dev"]["expensive"] == 1.0 and cascade.cfg["dev"]["cascade"] == 1.0
    docs = list(nlp.pipe(["sure good ball", "good ball"]))
    assert [d._.hybrid_route for d in docs] == ["cheap", "expensive"]
    assert docs[1].cats["POS"] > 0.5 and docs[1].cats["SPORT"] > 0.5


def test_pipe_agrees_with_call_and_odd_inputs():
    nlp = fitted()
    texts = TEXTS + ["", "   ", "😀 sure good", "\x00\x1b bad", "sure " * 5000]
    piped = [(d.cats, d._.hybrid_route) for d in nlp.pipe(texts, batch_size=3)]
    called = [(d.cats, d._.hybrid_route) for d in (nlp(t) for t in texts)]
    assert piped == called
    assert all(sum(cats.values()) == pytest.approx(1.0) for cats, _ in piped)


def test_round_trip_identical(tmp_path):
    nlp = fitted()
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.pipe_names == ["cheap", "cascade"] and loaded.disabled == ["expensive"]
    assert loaded.get_pipe("cascade").cfg == nlp.get_pipe("cascade").cfg
    for text in TEXTS + [""]:
        a, b = nlp(text), loaded(text)
        assert (a.cats, a._.hybrid_route) == (b.cats, b._.hybrid_route)
    assert loaded.get_pipe("cascade").from_bytes(nlp.get_pipe("cascade").to_bytes()).cfg == \
        nlp.get_pipe("cascade").cfg


def test_bad_setups_are_reported():
    with pytest.raises(ValueError, match=r"\[E100\]"):
        make_nlp()("good")
    nlp = make_nlp(disable=False)
    nlp.get_pipe("cascade").initialize(lambda: examples(nlp), nlp=nlp)
    with pytest.raises(ValueError, match=r"\[E551\]"):  # the expensive pipe would run on every doc
        nlp("good")
    with pytest.raises(ValueError, match=r"\[E551\]"):  # even where no doc is sent on
        nlp("sure good")
    nlp = make_nlp()
    with pytest.raises(ValueError, match=r"\[E101\]"):  # nothing to choose the threshold on
        nlp.get_pipe("cascade").initialize(lambda: examples(nlp), nlp=nlp, dev_corpus=lambda nlp: [])
    nlp = make_nlp(expensive=["nope"])
    with pytest.raises(ValueError, match=r"\[E550\]"):
        nlp.get_pipe("cascade").initialize(lambda: examples(nlp), nlp=nlp)
    nlp = make_nlp(expensive=[])
    with pytest.raises(ValueError, match=r"\[E553\]"):
        nlp.get_pipe("cascade").initialize(lambda: examples(nlp), nlp=nlp)
    nlp = make_nlp(source="missing")
    with pytest.raises(ValueError, match=r"\[E552\]"):
        nlp.get_pipe("cascade").initialize(lambda: examples(nlp), nlp=nlp)
    nlp = fitted()
    nlp.disable_pipe("cheap")
    with pytest.raises(ValueError, match=r"\[E514\]"):  # the source it routes by did not run
        nlp("good")
    nlp = spacy.blank("en")
    nlp.add_pipe("test_cascade_expensive", name="expensive")
    nlp.add_pipe("cascade", config={"expensive": ["expensive"]})
    with pytest.raises(ValueError, match=r"\[E552\]"):  # nothing cheap to route by
        nlp.get_pipe("cascade").initialize(lambda: examples(nlp), nlp=nlp)
    for key, value in [("route_threshold", 1.5), ("target_quality", -0.1), ("max_quality_loss", 2.0), ("source", "")]:
        with pytest.raises(ValueError, match=r"\[E104\]"):
            make_nlp(**{key: value})


def test_saved_cfg_errors(tmp_path):
    check_saved_cfg_errors(fitted(), "cascade", tmp_path, lambda cfg: dict(cfg, expensive="expensive"))


def test_cascade_ner_profile_routes_by_the_crf(tiny_bert_dir, tmp_path):
    from pathlib import Path

    from hybridnlp.training import train

    corpus = Path(__file__).resolve().parents[1] / "corpora" / "tiny_ner"
    overrides = {
        "hybrid.accurate.paths.transformer": str(tiny_bert_dir),
        "hybrid.accurate.training.max_steps": 4,
        "hybrid.accurate.training.eval_frequency": 2,
        "hybrid.accurate.training.optimizer.learn_rate.warmup_steps": 1,
    }
    nlp = train("cascade", corpus, tmp_path / "out", overrides=overrides, quiet=True)
    assert nlp.pipe_names == ["rule_ner", "crf_ner", "cascade"]
    cascade = nlp.get_pipe("cascade")
    assert cascade.cfg["kind"] == "spans" and cascade.cfg["source"] == "crf_ner"
    texts = ["Mary Jones cannot log in to her account in London since yesterday .", "", "😀 Berlin",
             "Nothing to see here .", "Sam flew to Paris with Acme Corp ."]
    docs = list(nlp.get_pipe("crf_ner").pipe(nlp.get_pipe("rule_ner").pipe(nlp.make_doc(t) for t in texts)))
    confidences = cascade.confidences(docs)
    assert list(confidences) == [d.spans["crf_ner"].attrs["doc_confidence"] for d in docs]
    cascade.cfg["route_threshold"] = float(numpy.median(confidences)) + 1e-9
    docs = list(nlp.pipe(texts))
    assert {d._.hybrid_route for d in docs} == {"cheap", "expensive"}
    for doc in docs:  # routed docs end with the fused entities, the others with the CRF's
        owner = "hybrid" if doc._.hybrid_route == "expensive" else "crf_ner"
        assert [(e.start, e.end, e.label_) for e in doc.ents] == \
            [(s.start, s.end, s.label_) for s in doc.spans[owner]]
        assert ("hybrid" in doc.spans) == (owner == "hybrid")
    nlp.to_disk(tmp_path / "mixed")
    loaded = spacy.load(tmp_path / "mixed")
    assert [([(e.start, e.end, e.label_) for e in d.ents], d._.hybrid_route) for d in loaded.pipe(texts)] == \
        [([(e.start, e.end, e.label_) for e in d.ents], d._.hybrid_route) for d in docs]
    assert "ents_f" in nlp.evaluate(corpus_examples(nlp, corpus))


def test_bench_hands_the_cascade_its_parts_and_it_loads_in_a_fresh_process(tiny_bert_dir, tmp_path):
    import shutil
    from pathlib import Path

    from hybridnlp.corpora import resolve_corpus
    from hybridnlp.harness.runner import run_bench
    from hybridnlp.training import train

    corpus = Path(__file__).resolve().parents[1] / "corpora" / "tiny_textcat"
    name = resolve_corpus(corpus).name
    # accurate comes from --models, fast is trained by the run itself; the cascade's hybrid
    # part is built from both instead of training them again.
    train("accurate", corpus, tmp_path / "models" / name / "accurate", quiet=True,
          overrides={"paths.transformer": str(tiny_bert_dir), "training.max_steps": 4,
                     "training.eval_frequency": 2, "training.optimizer.learn_rate.warmup_steps": 1})
    results = run_bench([str(corpus)], ["fast", "cascade"], tmp_path / "bench", models=tmp_path / "models")
    runs = {run["system"]: run for run in results["runs"]}
    assert runs["cascade"]["status"] == "ok", runs["cascade"]
    assert runs["cascade"]["pipeline"] == ["tfidf_textcat", "cascade"]
    assert 0.0 <= runs["cascade"]["routed"] <= 1.0 and runs["fast"]["routed"] is None
    assert "routed)" in (tmp_path / "bench" / "results.md").read_text()
    nlp = spacy.load(runs["cascade"]["model_path"])
    assert nlp.disabled == ["transformer", "trf_textcat", "cats_fusion"]
    accurate = spacy.load(tmp_path / "models" / name / "accurate")
    hybrid_seconds = nlp.meta["hybridnlp"]["parts_train_seconds"]["hybrid"]
    assert hybrid_seconds >= runs["fast"]["train_seconds"] + accurate.meta["hybridnlp"]["train_seconds"]
    cascade = nlp.get_pipe("cascade")
    dev = cascade.cfg["dev"]
    assert 0.0 <= dev["routed"] <= 1.0 and dev["cascade"] >= dev["expensive"] - 1e-9
    routed = [point["routed"] for point in cascade.dev_curve()]
    assert routed[0] == 0.0 and routed[-1] == 1.0 and routed == sorted(routed)
    # A threshold that sends some of these texts on and not others, then the round trip.
    texts = ["I want to cancel my order", "", "where is my parcel 📦", "refund please", "\x07 hello"]
    docs = list(nlp.get_pipe("tfidf_textcat").pipe(nlp.make_doc(t) for t in texts))
    cascade.cfg["route_threshold"] = float(numpy.median(cascade.confidences(docs))) + 1e-9
    nlp.to_disk(tmp_path / "mixed")
    docs = list(nlp.pipe(texts))
    assert {d._.hybrid_route for d in docs} == {"cheap", "expensive"}
    for doc in docs:
        owner = "hybrid" if doc._.hybrid_route == "expensive" else "tfidf_textcat"
        assert doc.cats == doc._.hybrid_cats[owner]
    shutil.rmtree(tiny_bert_dir)
    expected = [{"cats": doc.cats, "ents": []} for doc in docs]
    assert predict_in_fresh_process(tmp_path / "mixed", texts) == expected
    loaded = spacy.load(tmp_path / "mixed")
    assert [d._.hybrid_route for d in loaded.pipe(texts)] == [d._.hybrid_route for d in docs]
