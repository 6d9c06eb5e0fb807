"""Tests for the rule_ner component (pattern files, induced gazetteer, measured precision)."""

import json
from pathlib import Path

import pytest
import spacy
from spacy.training import Example

from hybridnlp.components.classical.rule_ner import RuleNER

DATA = Path(__file__).parent / "data" / "rule_ner"


def make_examples(nlp, items):
    """Examples from (text, [(substring, label), ...]); each substring's first occurrence
    after the previous entity is the entity."""
    examples = []
    for text, ents in items:
        offsets, pos = [], 0
        for sub, label in ents:
            start = text.index(sub, pos)
            offsets.append((start, start + len(sub), label))
            pos = start + len(sub)
        examples.append(Example.from_dict(nlp.make_doc(text), {"entities": offsets}))
    return examples


TRAIN = [
    ("Apple hired Tim Cook in Cupertino .", [("Apple", "ORG"), ("Tim Cook", "PER"), ("Cupertino", "LOC")]),
    ("Shares of Apple fell in London .", [("Apple", "ORG"), ("London", "LOC")]),
    ("Apple and Microsoft met in Paris .", [("Apple", "ORG"), ("Microsoft", "ORG"), ("Paris", "LOC")]),
    ("She ate an Apple in the park .", []),
    ("Tim Cook visited London on Monday .", [("Tim Cook", "PER"), ("London", "LOC")]),
    ("Microsoft opened an office in Berlin .", [("Microsoft", "ORG"), ("Berlin", "LOC")]),
]


def text_spans(doc, source="rule_ner"):
    group = doc.spans[source]
    return [(s.text, s.label_, round(score, 6)) for s, score in zip(group, group.attrs["scores"])]


@pytest.fixture
def nlp():
    return spacy.blank("en")


@pytest.fixture
def trained(nlp):
    ner = nlp.add_pipe("rule_ner", config={"set_ents": True})
    assert isinstance(ner, RuleNER) and ner.source == "rule_ner"
    train = make_examples(nlp, TRAIN)
    nlp.initialize(lambda: train)
    return nlp, ner, train


def conf(tp, n, a=2.0, b=0.5):
    """The smoothed precision with the default prior."""
    return (tp + a) / (n + a + b)


# ---- fitting, precision, overfitting ------------------------------------------------------


def test_precision_is_measured_exactly(trained):
    nlp, ner, _ = trained
    rules = {(r["label"], tuple(r["pattern"])): r for r in ner.rules if r["kind"] == "gazetteer"}
    apple = rules[("ORG", ("Apple",))]
    # "Apple" is ORG in 3 of its 4 occurrences.
    assert (apple["count"], apple["tp"], apple["n"]) == (3, 3, 4)
    assert apple["confidence"] == pytest.approx(conf(3, 4)) == pytest.approx(5 / 6.5)
    london = rules[("LOC", ("London",))]
    assert (london["tp"], london["n"]) == (2, 2) and london["confidence"] == pytest.approx(4 / 4.5)
    assert rules[("PER", ("Tim", "Cook"))]["confidence"] == pytest.approx(conf(2, 2))
    assert ner.labels == ("LOC", "ORG", "PER")


def test_overfits_training_data(trained):
    nlp, ner, train = trained
    for eg in train:
        doc = nlp(eg.reference.text)
        gold = {(e.start, e.end, e.label_) for e in eg.reference.ents}
        assert {(e.start, e.end, e.label_) for e in doc.ents} >= gold
    doc = nlp("Apple and Microsoft opened offices in Paris and Berlin .")
    assert text_spans(doc) == [
        ("Apple", "ORG", pytest.approx(conf(3, 4))),
        ("Microsoft", "ORG", pytest.approx(conf(2, 2))),
        ("Paris", "LOC", pytest.approx(conf(1, 1))),
        ("Berlin", "LOC", pytest.approx(conf(1, 1))),
    ]
    # The false "Apple" (the fruit) is still matched: that's what the confidence is for.
    assert [e.text for e in nlp("She ate an Apple .").ents] == ["Apple"]
    scores = nlp.evaluate(train)
    assert scores["ents_r"] == 1.0 and scores["ents_p"] == pytest.approx(12 / 13)
    assert scores["spans_rule_ner_r"] == 1.0


def test_predict_is_pure_and_returns_tuples(trained):
    nlp, ner, _ = trained
    doc = nlp.make_doc("Tim Cook lives in Cupertino .")
    spans = ner.predict([doc])
    assert spans == [[(0, 2, "PER", pytest.approx(conf(2, 2))), (4, 5, "LOC", pytest.approx(conf(1, 1)))]]
    assert "rule_ner" not in doc.spans and not doc.ents


def test_min_count_and_min_precision(nlp):
    ner = nlp.add_pipe("rule_ner", config={"min_count": 2, "min_precision": 0.8})
    train = make_examples(nlp, TRAIN)
    nlp.initialize(lambda: train)
    kept = {(r["label"], " ".join(r["pattern"])) for r in ner.rules}
    # Apple: count 3 but precision 5/6.5 < 0.8; Paris: count 1 < 2.
    assert kept == {("PER", "Tim Cook"), ("LOC", "London"), ("ORG", "Microsoft")}


def test_dev_corpus_adds_to_precision_and_unseen_labels(nlp):
    ner = nlp.add_pipe("rule_ner")
    train = make_examples(nlp, TRAIN)
    dev = make_examples(nlp, [
        ("Apple pie is sweet .", []),
        ("The Olympics came to London .", [("Olympics", "EVENT"), ("London", "LOC")]),
    ])
    nlp.initialize(lambda: train)
    ner.initialize(lambda: train, nlp=nlp, dev_corpus=lambda nlp: dev)
    rules = {(r["label"], " ".join(r["pattern"])): r for r in ner.rules}
    assert (rules[("ORG", "Apple")]["tp"], rules[("ORG", "Apple")]["n"]) == (3, 5)
    assert (rules[("LOC", "London")]["tp"], rules[("LOC", "London")]["n"]) == (3, 3)
    # A label seen only in dev is not invented; scoring still works with it in the gold data.
    assert "EVENT" not in ner.labels
    scores = nlp.evaluate(dev)
    assert scores["spans_rule_ner_per_type"]["LOC"]["r"] == 1.0


def test_lower_matching(nlp):
    ner = nlp.add_pipe("rule_ner", config={"phrase_matcher_attr": "LOWER"})
    nlp.initialize(lambda: make_examples(nlp, TRAIN))
    doc = nlp("TIM COOK in london")
    assert [(s.text, s.label_) for s in doc.spans["rule_ner"]] == [("TIM COOK", "PER"), ("london", "LOC")]
    ner_cs = spacy.blank("en").add_pipe("rule_ner")
    ner_cs.nlp.initialize(lambda: make_examples(ner_cs.nlp, TRAIN))
    doc = ner_cs.nlp("TIM COOK in london")
    assert len(doc.spans["rule_ner"]) == 0


# ---- pattern files -------------------------------------------------------------------------


def test_pattern_files_of_all_kinds(nlp):
    files = [str(DATA / "patterns.jsonl"), str(DATA / "CITY.txt"), str(DATA / "people.txt")]
    ner = nlp.add_pipe("rule_ner", config={"patterns": files, "induce_gazetteer": False})
    nlp.initialize()
    kinds = {(r["kind"], r["label"]) for r in ner.rules}
    assert kinds >= {("pattern", "ORG"), ("phrase", "ORG"), ("regex", "PRODUCT"), ("phrase", "CITY"), ("phrase", "PER")}
    assert next(r for r in ner.rules if r.get("pattern") == "Ogdenville")["where"].endswith("CITY.txt:5")
    doc = nlp("Homer Simpson of Acme Corp bought an XJ-200 in Springfield from Globex Industries .")
    assert [(s.text, s.label_) for s in doc.spans["rule_ner"]] == [
        ("Homer Simpson", "PER"), ("Acme Corp", "ORG"), ("XJ-200", "PRODUCT"),
        ("Springfield", "CITY"), ("Globex Industries", "ORG")]
    # Never measured: every rule has the prior mean as confidence.
    assert set(doc.spans["rule_ner"].attrs["scores"]) == {0.8}


def test_patterns_in_initialize_and_measured(nlp):
    ner = nlp.add_pipe("rule_ner")
    train = make_examples(nlp, TRAIN + [("Globex Industries and Acme merged .", [("Globex Industries", "ORG")])])
    ner.initialize(lambda: train, nlp=nlp, patterns=[str(DATA / "patterns.jsonl")])
    globex = next(r for r in ner.rules if r["kind"] == "phrase" and r["pattern"] == "Globex Industries")
    acme = next(r for r in ner.rules if r["kind"] == "pattern")
    assert (globex["tp"], globex["n"], globex["confidence"]) == (1, 1, pytest.approx(3 / 3.5))
    assert (acme["tp"], acme["n"], acme["confidence"]) == (0, 1, pytest.approx(2 / 3.5))
    # Pattern dicts are accepted too.
    ner.initialize(lambda: train, nlp=nlp, patterns=[{"label": "DAY", "pattern": "Monday"}])
    day = next(r for r in ner.rules if r["label"] == "DAY")
    assert (day["tp"], day["n"]) == (0, 1)


def test_regex_alignment_modes():
    for mode, expected in [("contract", [("New", "CITY")]), ("expand", [("New Yorkers", "CITY")])]:
        nlp = spacy.blank("en")
        ner = nlp.add_pipe("rule_ner", config={"induce_gazetteer": False, "alignment_mode": mode})
        ner.add_patterns([{"label": "CITY", "regex": "New York"}])
        doc = nlp("New Yorkers")
        assert [(s.text, s.label_) for s in doc.spans["rule_ner"]] == expected


def test_add_patterns_survive_initialize(nlp):
    ner = nlp.add_pipe("rule_ner")
    ner.add_patterns([{"label": "PER", "pattern": [{"LOWER": "tim"}, {"LOWER": "cook"}]}])
    nlp.initialize(lambda: make_examples(nlp, TRAIN))
    added = [r for r in ner.rules if r["origin"] == "added"]
    assert len(added) == 1 and (added[0]["tp"], added[0]["n"]) == (2, 2)


@spacy.Language.component("test_title_propn")
def title_propn(doc):
    """A stand-in tagger: title-case tokens are PROPN, the rest X."""
    for token in doc:
        token.pos_ = "PROPN" if token.is_title else "X"
    return doc


def test_token_patterns_needing_annotation_are_measured_after_earlier_pipes(nlp):
    nlp.add_pipe("test_title_propn")
    ner = nlp.add_pipe("rule_ner", config={"induce_gazetteer": False})
    ner.add_patterns([{"label": "ORG", "pattern": [{"POS": "PROPN"}, {"LOWER": "inc"}]}])
    train = make_examples(nlp, [("Zork Inc said no .", [("Zork Inc", "ORG")]), ("Blorp inc grew .", [])])
    nlp.initialize(lambda: train)
    assert (ner.rules[0]["tp"], ner.rules[0]["n"]) == (1, 2)
    doc = nlp("Quux Inc and Mega inc")
    assert [s.text for s in doc.spans["rule_ner"]] == ["Quux Inc", "Mega inc"]
    assert ner.heldout_spans(train) == [[(0, 2, "ORG", pytest.approx(conf(1, 2)))]] * 2


# ---- overlap resolution ---------------------------------------------------------------------


def test_overlap_prefers_longer_then_confidence(nlp):
    ner = nlp.add_pipe("rule_ner", config={"induce_gazetteer": False, "patterns": [str(DATA / "patterns.jsonl")]})
    nlp.initialize()
    doc = nlp("I read the New York Times in New York .")
    assert [(s.text, s.label_) for s in doc.spans["rule_ner"]] == [
        ("New York Times", "ORG"), ("New York", "LOC")]
    # Same span, two labels: the more precise rule wins.
    nlp2 = spacy.blank("en")
    ner2 = nlp2.add_pipe("rule_ner")
    train = make_examples(nlp2, [
        ("Washington said no .", [("Washington", "PER")]),
        ("Washington is rainy .", [("Washington", "LOC")]),
        ("Washington spoke again .", [("Washington", "PER")]),
    ])
    nlp2.initialize(lambda: train)
    # PER: right 2 of 3 times, LOC: 1 of 3.
    assert {r["label"]: r["confidence"] for r in ner2.rules} == {"PER": pytest.approx(conf(2, 3)), "LOC": pytest.approx(conf(1, 3))}
    assert ner2.predict([nlp2.make_doc("Washington")]) == [[(0, 1, "PER", pytest.approx(conf(2, 3)))]]


def test_resolve_is_deterministic_on_ties():
    from hybridnlp.components.classical.rule_ner import _resolve

    cands = [(0, 2, "B", 0.5, 1), (1, 3, "A", 0.5, 0), (0, 2, "A", 0.5, 2), (3, 4, "C", 0.9, 3), (0, 2, "A", 0.7, 4)]
    # Same length and confidence: earlier start wins; same span, same label: max confidence.
    assert _resolve(cands) == [(0, 2, "A", 0.7), (3, 4, "C", 0.9)]
    assert _resolve(list(reversed(cands))) == _resolve(cands)


# ---- heldout spans --------------------------------------------------------------------------


def test_heldout_spans_exclude_own_fold(nlp):
    ner = nlp.add_pipe("rule_ner")
    ner.add_patterns([{"label": "DAY", "pattern": "Monday"}])
    items = [
        ("Zorblax met Quux in London on Monday .", [("Zorblax", "ORG"), ("Quux", "PER"), ("London", "LOC")]),
        ("London is big .", [("London", "LOC")]),
        ("Quux came to London .", [("Quux", "PER"), ("London", "LOC")]),
        ("Paris is nice .", [("Paris", "LOC")]),
    ]
    train = make_examples(nlp, items)
    nlp.initialize(lambda: train)
    full = ner.predict([eg.predicted for eg in train])
    assert (0, 1, "ORG", pytest.approx(conf(1, 1))) in full[0]  # the full model knows Zorblax
    held = ner.heldout_spans(train, n_folds=4)  # one example per fold
    labels0 = {(s, e, l) for s, e, l, _ in held[0]}
    # Zorblax only occurs in fold 0, so it is unknown there; Quux and London come from other folds.
    assert (0, 1, "ORG") not in labels0
    assert {(2, 3, "PER"), (4, 5, "LOC"), (6, 7, "DAY")} <= labels0
    london0 = next(c for s, e, l, c in held[0] if l == "LOC")
    assert london0 == pytest.approx(conf(2, 2))  # measured on folds 1-3 only
    assert [(s, e, l) for s, e, l, _ in held[3]] == []  # Paris only in its own fold
    # Without a gazetteer only the fixed rules remain, so held == full.
    ner.cfg["induce_gazetteer"] = False
    assert ner.heldout_spans(train) == [[t for t in spans if t[2] == "DAY"] for spans in full]
    assert ner.heldout_spans([], n_folds=5) == []


# ---- IO ------------------------------------------------------------------------------------


def test_io_roundtrip_identical(trained, tmp_path):
    nlp, ner, train = trained
    ner.add_patterns([{"label": "PRODUCT", "regex": "[A-Z]{2}-\\d{3}"}])
    texts = ["Apple and Microsoft in London .", "Tim Cook bought an XJ-200 .", "", "Paris"]
    before = [text_spans(nlp(t)) for t in texts]
    nlp.to_disk(tmp_path / "model")
    saved = tmp_path / "model" / "rule_ner"
    assert sorted(p.name for p in saved.iterdir()) == ["cfg", "gazetteer.jsonl", "patterns.jsonl"]
    first = json.loads((saved / "gazetteer.jsonl").read_text().splitlines()[0])
    assert {"label", "pattern", "tp", "n", "confidence", "count"} <= set(first)
    nlp2 = spacy.load(tmp_path / "model")
    assert [text_spans(nlp2(t)) for t in texts] == before
    assert [e.text for e in nlp2("Tim Cook in Paris").ents] == ["Tim Cook", "Paris"]
    nlp3 = spacy.blank("en")
    ner3 = nlp3.add_pipe("rule_ner")
    ner3.from_bytes(ner.to_bytes())
    assert ner3.rules == ner.rules
    assert [text_spans(nlp3(t)) for t in texts] == before


def test_pipe_agrees_with_call(trained):
    nlp, ner, _ = trained
    texts = [t for t, _ in TRAIN] * 3 + ["", "Berlin"]
    by_call = [text_spans(nlp(t)) for t in texts]
    by_pipe = [text_spans(d) for d in nlp.pipe(texts, batch_size=4)]
    assert by_pipe == by_call


# ---- bad input -----------------------------------------------------------------------------


def test_untrained_with_gazetteer_raises_e100(nlp):
    nlp.add_pipe("rule_ner")
    with pytest.raises(ValueError, match=r"\[E100\]"):
        nlp("Apple")


def test_untrained_with_pattern_files_raises_e100(nlp):
    ner = nlp.add_pipe("rule_ner", config={"induce_gazetteer": False, "patterns": [str(DATA / "CITY.txt")]})
    with pytest.raises(ValueError, match=r"\[E100\]"):
        ner.predict([nlp.make_doc("Springfield")])
    nlp.initialize()
    assert ner.predict([nlp.make_doc("Springfield")]) == [[(0, 1, "CITY", 0.8)]]


def test_no_rules_returns_nothing_and_warns(nlp):
    nlp.add_pipe("rule_ner", config={"induce_gazetteer": False})
    with pytest.warns(UserWarning, match="no rules"):
        doc = nlp("Apple in London")
    assert len(doc.spans["rule_ner"]) == 0 and doc.spans["rule_ner"].attrs["scores"] == []


def test_no_training_entities_raises_e101(nlp):
    nlp.add_pipe("rule_ner")
    with pytest.raises(ValueError, match=r"\[E101\]"):
        nlp.initialize(lambda: make_examples(nlp, [("nothing here", [])]))


def test_odd_texts(trained):
    nlp, ner, _ = trained
    for text in ["", "   \n\t ", "\x00\x07 London \x1b[0m", "🍎 Apple 🍏 in London 🇬🇧"]:
        doc = nlp(text)
        assert len(doc.spans["rule_ner"].attrs["scores"]) == len(doc.spans["rule_ner"])
    assert [s.text for s in nlp("🍎 Apple 🍏 in London 🇬🇧").ents] == ["Apple", "London"]
    assert [s.text for s in nlp("\x00\x07 London \x1b[0m").ents] == ["London"]
    big = "Tim Cook met Apple in London . " * 6500
    assert len(big) >= 200_000
    doc = nlp(big)
    assert len(doc.ents) == 3 * 6500


def test_regex_in_long_doc_and_control_chars(nlp):
    ner = nlp.add_pipe("rule_ner", config={"induce_gazetteer": False})
    ner.add_patterns([{"label": "PRODUCT", "regex": "[A-Z]{2}-\\d{3}"}])
    doc = nlp("\x0c XJ-200 \u200b and 🚀 ZZ-999 ")
    assert [s.text for s in doc.spans["rule_ner"]] == ["XJ-200", "ZZ-999"]


@pytest.mark.parametrize("fname,line,problem", [
    ("bad_regex.jsonl", 2, "invalid regular expression"),
    ("bad_json.jsonl", 3, "not valid JSON"),
    ("bad_token.jsonl", 1, "invalid token pattern"),
    ("bad_label.jsonl", 1, "label"),
])
def test_invalid_pattern_files_raise_e105(nlp, fname, line, problem):
    nlp.add_pipe("rule_ner", config={"induce_gazetteer": False, "patterns": [str(DATA / fname)]})
    with pytest.raises(ValueError, match=r"\[E105\]") as err:
        nlp.initialize()
    assert f"{fname}' line {line}:" in str(err.value) and problem in str(err.value)


def test_invalid_patterns_in_add_patterns(nlp):
    ner = nlp.add_pipe("rule_ner", config={"induce_gazetteer": False})
    for bad in [{"label": "X", "regex": "a**"}, {"label": "X", "regex": "x?"}, {"label": "X", "pattern": "   "},
                {"label": "X"}, {"label": "X", "pattern": "a", "regex": "a"}, {"label": "X", "pattern": 3}, "X"]:
        with pytest.raises(ValueError, match=r"\[E105\]"):
            ner.add_patterns([bad])
    assert ner.rules == []


def test_missing_pattern_file_and_bad_settings(nlp, tmp_path):
    nlp.add_pipe("rule_ner", config={"patterns": [str(tmp_path / "nope.jsonl")], "induce_gazetteer": False})
    with pytest.raises(ValueError, match=r"\[E340\]"):
        nlp.initialize()
    (tmp_path / "p.csv").write_text("x\n")
    nlp2 = spacy.blank("en")
    nlp2.add_pipe("rule_ner", config={"patterns": [str(tmp_path / "p.csv")], "induce_gazetteer": False})
    with pytest.raises(ValueError, match=r"\[E341\]"):
        nlp2.initialize()
    for key, value in [("phrase_matcher_attr", "POS"), ("alignment_mode", "fuzzy"), ("min_count", 0),
                       ("min_precision", 1.5), ("prior_hits", -1)]:
        with pytest.raises(ValueError, match=r"\[E104\]"):
            spacy.blank("en").add_pipe("rule_ner", config={key: value})


def test_missing_or_corrupt_model_dir(trained, tmp_path):
    nlp, ner, _ = trained
    fresh = spacy.blank("en").add_pipe("rule_ner")
    with pytest.raises(OSError, match=r"\[E102\]"):
        fresh.from_disk(tmp_path / "does-not-exist")
    ner.to_disk(tmp_path / "m")
    (tmp_path / "m" / "gazetteer.jsonl").write_text('{"label": "ORG", "pattern": ["x"]\n')
    with pytest.raises(ValueError, match=r"\[E103\]"):
        fresh.from_disk(tmp_path / "m")
    ner.to_disk(tmp_path / "m2")
    (tmp_path / "m2" / "gazetteer.jsonl").write_text('{"label": "ORG", "kind": "gazetteer"}\n')
    with pytest.raises(ValueError, match=r"\[E103\]"):
        fresh.from_disk(tmp_path / "m2")
    (tmp_path / "m2" / "gazetteer.jsonl").write_text('{"label": "ORG", "kind": "gazetteer", "pattern": ["x"], '
                                                     '"origin": "gazetteer", "where": "train", "tp": 3, "n": "2"}\n')
    with pytest.raises(ValueError, match=r"\[E103\].*bad match counts"):
        fresh.from_disk(tmp_path / "m2")
    (tmp_path / "m2" / "gazetteer.jsonl").unlink()
    with pytest.raises(OSError, match=r"\[E102\]"):
        fresh.from_disk(tmp_path / "m2")
    with pytest.raises(ValueError, match=r"\[E103\]"):
        fresh.from_bytes(b"\x00garbage")
    # A failed load leaves the component as it was.
    assert fresh.rules == [] and not fresh.is_initialized


def test_whole_pipeline_dir_missing_component(trained, tmp_path):
    nlp, _, _ = trained
    nlp.to_disk(tmp_path / "model")
    for f in (tmp_path / "model" / "rule_ner").iterdir():
        f.unlink()
    with pytest.raises(OSError, match=r"\[E102\]"):
        spacy.load(tmp_path / "model")
