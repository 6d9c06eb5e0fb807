"""Tests for the crf_ner component (python-crfsuite linear-chain CRF)."""

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from hybridnlp.components.classical.crf_ner import (
    FEATURE_GROUPS,
    CRFEntityRecognizer,
    _bio_to_spans,
    _build_lexicon,
    _check_crfsuite_bytes,
)
from hybridnlp.components.outputs import write_spans

TRAIN = [
    (["Angela", "Merkel", "visited", "Paris", "on", "Monday", "."],
     ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "O"]),
    (["Google", "opened", "an", "office", "in", "Berlin", "."],
     ["B-ORG", "O", "O", "O", "O", "B-LOC", "O"]),
    (["Barack", "Obama", "met", "Angela", "Merkel", "in", "Berlin", "."],
     ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "O"]),
    (["The", "weather", "in", "Paris", "was", "nice", "."],
     ["O", "O", "O", "B-LOC", "O", "O", "O"]),
    (["Shares", "of", "Google", "rose", "on", "Monday", "."],
     ["O", "O", "B-ORG", "O", "O", "O", "O"]),
    (["Obama", "spoke", "to", "reporters", "."],
     ["B-PER", "O", "O", "O", "O"]),
]

# Tiny settings so the whole file runs in seconds.
FAST = {"max_iterations": 60, "c1": 0.0, "c2": 0.01, "cluster_sizes": [2, 4]}


def make_examples(nlp, data=TRAIN):
    return [Example(Doc(nlp.vocab, words=w), Doc(nlp.vocab, words=w, ents=t)) for w, t in data]


def ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


@pytest.fixture
def trained():
    nlp = spacy.blank("en")
    # Every feature group, so the clusters (off by default) are round-tripped too.
    nlp.add_pipe("crf_ner", config={**FAST, "features": list(FEATURE_GROUPS)})
    nlp.initialize(lambda: make_examples(nlp))
    return nlp


def test_overfit_and_io(trained, tmp_path):
    nlp = trained
    crf = nlp.get_pipe("crf_ner")
    assert set(crf.labels) == {"PER", "LOC", "ORG"}
    assert crf.lexicon["clusters"]["paris"] and crf.lexicon["memory"]["Paris"][0] == "LOC"
    texts = [" ".join(words) for words, _ in TRAIN]
    for (words, tags), text in zip(TRAIN, texts):
        doc = nlp(Doc(nlp.vocab, words=words))
        gold = Doc(nlp.vocab, words=words, ents=tags)
        assert ents(doc) == ents(gold)
        # doc.spans[source] carries the same spans, each with a confidence.
        assert [(s.start, s.end, s.label_) for s in doc.spans["crf_ner"]] == ents(gold)
    before = [(ents(d), list(d.spans["crf_ner"].attrs["scores"])) for d in nlp.pipe(texts)]
    assert any(e for e, _ in before)

    nlp.to_disk(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "crf_ner" / "model.crfsuite").read_bytes()[:4] == b"lCRF"
    loaded = spacy.load(tmp_path / "pipe")
    after = [(ents(d), list(d.spans["crf_ner"].attrs["scores"])) for d in loaded.pipe(texts)]
    assert after == before

    nlp2 = spacy.blank("en")
    nlp2.add_pipe("crf_ner")
    nlp2.get_pipe("crf_ner").from_bytes(crf.to_bytes())
    after_bytes = [(ents(d), list(d.spans["crf_ner"].attrs["scores"])) for d in nlp2.pipe(texts)]
    assert after_bytes == before


def test_pipe_agrees_with_call(trained):
    nlp = trained
    texts = ["Angela Merkel visited Google in Paris.", "Obama met reporters in Berlin!",
             "", "Nothing here", "Paris and Berlin and Google."] * 3
    piped = [(ents(d), list(d.spans["crf_ner"].attrs["scores"]))
             for d in nlp.pipe(texts, batch_size=4)]
    called = [(ents(d), list(d.spans["crf_ner"].attrs["scores"])) for d in map(nlp, texts)]
    assert piped == called


def test_predict_is_pure_and_confidences_in_range(trained):
    crf = trained.get_pipe("crf_ner")
    doc = trained.make_doc("Barack Obama visited Paris and Google on Monday .")
    scores = crf.predict([doc])
    assert not doc.ents and "crf_ner" not in doc.spans
    assert scores[0], "expected entities"
    for start, end, label, conf in scores[0]:
        assert 0.0 < conf <= 1.0
        assert label in crf.labels
    crf.set_annotations([doc], scores)
    assert list(doc.spans["crf_ner"].attrs["scores"]) == [s[-1] for s in scores[0]]
    # The doc's confidence is the lowest marginal of any decoded tag: no span's can be lower.
    doc_confidence = doc.spans["crf_ner"].attrs["doc_confidence"]
    assert 0.0 < doc_confidence <= min(s[-1] for s in scores[0]) + 1e-9
    assert crf.predict([trained.make_doc("")])[0].doc_confidence == 1.0  # nothing to doubt


def test_confidence_is_lower_for_unseen_contexts(trained):
    doc_seen = trained(Doc(trained.vocab, words=TRAIN[2][0]))
    doc_odd = trained(Doc(trained.vocab, words=["paris", "visited", "Xq", "yesterday"]))
    top_seen = min(doc_seen.spans["crf_ner"].attrs["scores"])
    assert top_seen > 0.5
    for score in doc_odd.spans["crf_ner"].attrs["scores"]:
        assert score < top_seen


def test_source_and_set_ents_false():
    nlp = spacy.blank("en")
    nlp.add_pipe("crf_ner", config={**FAST, "source": "crf", "set_ents": False})
    nlp.initialize(lambda: make_examples(nlp))
    doc = nlp("Angela Merkel visited Paris on Monday .")
    assert not doc.ents
    assert [s.label_ for s in doc.spans["crf"]] == ["PER", "LOC"]


def test_evaluate_uses_ner_scorer_and_tolerates_unseen_labels(trained):
    nlp = trained
    dev = make_examples(nlp, TRAIN[:2] + [
        (["Apple", "makes", "phones", "."], ["B-PRODUCT_MAKER", "O", "O", "O"]),
    ])
    scores = nlp.evaluate(dev)
    assert scores["ents_f"] is not None and 0.0 <= scores["ents_f"] <= 1.0
    assert "PRODUCT_MAKER" in scores["ents_per_type"]
    assert scores["ents_per_type"]["PRODUCT_MAKER"]["r"] == 0.0


def test_labels_restrict_training():
    nlp = spacy.blank("en")
    nlp.add_pipe("crf_ner", config=FAST)
    crf = nlp.get_pipe("crf_ner")
    crf.initialize(lambda: make_examples(nlp), nlp=nlp, labels=["LOC"])
    assert crf.labels == ("LOC",)
    doc = nlp("Angela Merkel visited Paris on Monday .")
    assert {e.label_ for e in doc.ents} <= {"LOC"}


def test_dev_selection_of_regularisation():
    nlp = spacy.blank("en")
    nlp.add_pipe("crf_ner", config={**FAST, "c_candidates": [[0.0, 0.01], [5.0, 5.0]]})
    crf = nlp.get_pipe("crf_ner")
    crf.initialize(lambda: make_examples(nlp), nlp=nlp,
                   dev_corpus=lambda _nlp: make_examples(nlp, TRAIN[:3]))
    selection = crf.cfg["selection"]
    assert [s["c1"] for s in selection] == [0.0, 5.0]
    assert all(s["dev_f"] is not None for s in selection)
    # Heavy regularisation cannot fit six sentences; the light one wins.
    assert (crf.cfg["c1"], crf.cfg["c2"]) == (0.0, 0.01)
    assert selection[0]["dev_f"] > selection[1]["dev_f"]


# --------------------------------------------------------------------- gazetteer


class FakeGazetteer:
    """Stands in for rule_ner: marks the words of a lexicon as spans with scores."""

    def __init__(self, lexicon, source="rule_ner"):
        self.lexicon = lexicon
        self.source = source
        self.heldout_calls = []

    def _spans(self, doc):
        return [(t.i, t.i + 1, self.lexicon[t.text], 0.95) for t in doc if t.text in self.lexicon]

    def __call__(self, doc):
        write_spans(doc, self.source, self._spans(doc))
        return doc

    def heldout_spans(self, examples, n_folds=5):
        self.heldout_calls.append(n_folds)
        return [self._spans(eg.predicted) for eg in examples]


@Language.factory("fake_gazetteer_for_crf_test")
def make_fake_gazetteer(nlp, name):
    return FakeGazetteer({"zorblax": "PER", "quimby": "PER", "flurp": "LOC", "snorg": "LOC"})


def test_gazetteer_features_from_upstream_spans():
    nlp = spacy.blank("en")
    nlp.add_pipe("fake_gazetteer_for_crf_test", name="rule_ner")
    nlp.add_pipe("crf_ner", config={**FAST, "features": ["word", "position", "gazetteer"]})
    # Lowercase names give no case cue: only the gazetteer tells entities apart.
    data = [
        (["i", "saw", "zorblax", "today"], ["O", "O", "B-PER", "O"]),
        (["i", "saw", "flurp", "today"], ["O", "O", "B-LOC", "O"]),
        (["i", "saw", "bread", "today"], ["O", "O", "O", "O"]),
        (["quimby", "left", "snorg"], ["B-PER", "O", "B-LOC"]),
        (["milk", "left", "bread"], ["O", "O", "O"]),
    ] * 2
    nlp.initialize(lambda: make_examples(nlp, data))
    crf = nlp.get_pipe("crf_ner")
    assert nlp.get_pipe("rule_ner").heldout_calls == [5]
    assert crf.cfg["gazetteer_labels"] == ["LOC", "PER"]
    attributes = {attr for attr, _label in crf._thread_tagger().info().state_features}
    assert any(a.startswith("gz=PER") for a in attributes)

    # Words never seen in training: the upstream spans alone decide the label.
    gaz = nlp.get_pipe("rule_ner")
    gaz.lexicon.update({"blorp": "PER", "wuzz": "LOC"})
    doc = nlp("i saw blorp today")
    assert ents(doc) == [(2, 3, "PER")]
    doc = nlp("i saw wuzz today")
    assert ents(doc) == [(2, 3, "LOC")]
    # Without the upstream component the same word is not an entity, and the CRF says why
    # (once, not per doc).
    with nlp.select_pipes(disable=["rule_ner"]):
        with pytest.warns(UserWarning, match="trained with the entities of 'rule_ner'") as record:
            assert ents(nlp("i saw blorp today")) == []
            nlp("i saw wuzz today")
    assert len([w for w in record if "rule_ner" in str(w.message)]) == 1


def test_no_gazetteer_features_without_upstream(trained):
    assert trained.get_pipe("crf_ner").cfg["gazetteer_labels"] == []


# --------------------------------------------------------------------- bad input


def test_threads_sharing_one_component(trained):
    """Threads tagging through one pipeline (a web server's workers) each get their own
    doc's entities: crfsuite's tagger holds the sequence being tagged, so each thread has one."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    texts = [" ".join(words) for words, _ in TRAIN] + ["the weather was nice", "Merkel met Obama"]
    expected = {text: (ents(doc), list(doc.spans["crf_ner"].attrs["scores"]))
                for text, doc in zip(texts, trained.pipe(texts))}
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda t: (t, trained(t)), texts * 50))
    finally:
        sys.setswitchinterval(interval)
    for text, doc in got:
        assert (ents(doc), list(doc.spans["crf_ner"].attrs["scores"])) == expected[text], text


def test_untrained_raises_e100():
    nlp = spacy.blank("en")
    crf = nlp.add_pipe("crf_ner")
    with pytest.raises(ValueError, match="E100"):
        nlp("Angela Merkel")
    with pytest.raises(ValueError, match="E100"):
        crf.to_bytes()


def test_no_entities_in_training_raises_e101():
    nlp = spacy.blank("en")
    nlp.add_pipe("crf_ner", config=FAST)
    data = [(["nothing", "here"], ["O", "O"])]
    with pytest.raises(ValueError, match="E101"):
        nlp.initialize(lambda: make_examples(nlp, data))
    with pytest.raises(ValueError, match="E101"):
        nlp.get_pipe("crf_ner").initialize(lambda: [], nlp=nlp)


def test_bad_settings_raise_e104():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="E104"):
        nlp.add_pipe("crf_ner", config={"features": ["word", "telepathy"]})
    with pytest.raises(ValueError, match="E104"):
        nlp.add_pipe("crf_ner", name="crf2", config={"algorithm": "adam"})


@pytest.mark.parametrize("text", ["", " ", "   \n\t  ", "\n\n"])
def test_empty_and_whitespace_docs(trained, text):
    doc = trained(text)
    assert list(doc.ents) == []
    assert len(doc.spans["crf_ner"]) == 0
    assert list(doc.spans["crf_ner"].attrs["scores"]) == []


def test_control_characters_emoji_and_odd_text(trained):
    texts = ["Angela\x00Merkel \x07 visited \u200b Paris 🙂🇩🇪 .",
             "🙂 Obama 👍👍 met Merkel\r\n in Berlin \x1b[31m.",
             "ĀĒĪŌŪ 北京 Москва Paris " + "x" * 5000]
    for doc in trained.pipe(texts):
        for span, score in zip(doc.spans["crf_ner"], doc.spans["crf_ner"].attrs["scores"]):
            assert span.text.strip() == span.text  # never starts/ends on whitespace
            assert 0.0 < score <= 1.0
    # Whitespace inside the text does not hide entities from the tagger.
    doc = trained("Angela Merkel visited   Paris  .")
    assert ("Paris", "LOC") in [(e.text, e.label_) for e in doc.ents]


def test_long_document(trained):
    sentence = "Angela Merkel visited Paris on Monday and met Obama in Berlin . "
    text = (sentence * (200_000 // len(sentence) + 1))[:200_000]
    doc = trained(text)
    assert len(doc.text) == 200_000
    assert len(doc.ents) > 3000
    assert all(0.0 < s <= 1.0 for s in doc.spans["crf_ner"].attrs["scores"])


def test_missing_model_directory_raises_e102(trained, tmp_path):
    crf = trained.get_pipe("crf_ner")
    with pytest.raises(ValueError, match="E102"):
        crf.from_disk(tmp_path / "does-not-exist")
    trained.to_disk(tmp_path / "pipe")
    (tmp_path / "pipe" / "crf_ner" / "model.crfsuite").unlink()
    with pytest.raises(ValueError, match="E102"):
        spacy.load(tmp_path / "pipe")


def _corruptions(model: bytes):
    yield "truncated", model[: len(model) // 2]
    yield "header only", model[:48]
    yield "empty", b""
    yield "garbage", b"\x00\x01garbage" * 200
    yield "magic + garbage", b"lCRF" + b"\xff" * 400
    middle = len(model) // 2
    yield "flipped byte", model[:middle] + bytes([model[middle] ^ 0xFF]) + model[middle + 1:]


def test_corrupt_model_raises_e103(trained, tmp_path):
    trained.to_disk(tmp_path / "pipe")
    model_path = tmp_path / "pipe" / "crf_ner" / "model.crfsuite"
    model = model_path.read_bytes()
    assert _check_crfsuite_bytes(model) is None
    for what, data in _corruptions(model):
        model_path.write_bytes(data)
        with pytest.raises(ValueError, match="E103"):
            spacy.load(tmp_path / "pipe")
    model_path.write_bytes(model)
    (tmp_path / "pipe" / "crf_ner" / "cfg").write_text("{not json")
    with pytest.raises(ValueError, match="E103"):
        spacy.load(tmp_path / "pipe")


def test_corrupt_bytes_raise_e103(trained):
    crf = trained.get_pipe("crf_ner")
    fresh = CRFEntityRecognizer(trained.vocab, "crf_ner")
    with pytest.raises(ValueError, match="E103"):
        fresh.from_bytes(b"not msgpack at all \xc1")
    data = crf.to_bytes()
    with pytest.raises(ValueError, match="E103"):
        fresh.from_bytes(data[: len(data) // 2])


def test_bio_decoding_repairs_stray_inside_tags():
    tags = ["I-PER", "I-PER", "O", "B-LOC", "I-ORG", "I-ORG", "B-LOC", "B-LOC"]
    assert _bio_to_spans(tags) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "ORG"),
                                   (6, 7, "LOC"), (7, 8, "LOC")]


def test_word_statistics_are_held_out_per_fold():
    vocab = spacy.blank("en").vocab
    # Ten docs, five folds of two: "Zed" occurs only in the first fold.
    words = [["the", "Zed", "said"], ["the", "Zed", "left"]] + [["the", "man", "said"]] * 8
    tags = [["O", "B-PER", "O"], ["O", "B-PER", "O"]] + [["O", "O", "O"]] * 8
    docs = [Doc(vocab, words=w) for w in words]
    lexicon, folds = _build_lexicon(docs, tags, ["casing", "memory"], [])
    assert lexicon["memory"]["Zed"][0] == "PER"
    assert lexicon["casing"]["zed"].startswith("always")
    # Featurizing the first fold, "Zed" must look as new as it would on unseen text.
    assert "Zed" not in folds[0]["memory"] and "zed" not in folds[0]["casing"]
    assert folds[1]["memory"]["Zed"][0] == "PER"
    assert folds[0]["memory"]["the"][:2] == ["O", "O:all"]


@spacy.registry.readers("crf_ner_test_dev_reader.v1")
def _make_test_dev_reader():
    return lambda nlp: make_examples(nlp, TRAIN[:3])


def test_dev_corpus_from_initialize_config():
    """The [initialize.components.crf_ner] block can hand over a registered dev reader."""
    from spacy.util import load_config_from_str, load_model_from_config

    config = load_config_from_str("""
[nlp]
lang = "en"
pipeline = ["crf_ner"]

[components]

[components.crf_ner]
factory = "crf_ner"
max_iterations = 30
c_candidates = [[0.0, 0.01], [5.0, 5.0]]

[initialize]

[initialize.components]

[initialize.components.crf_ner]

[initialize.components.crf_ner.dev_corpus]
@readers = "crf_ner_test_dev_reader.v1"
""")
    nlp = load_model_from_config(config, auto_fill=True)
    nlp.initialize(lambda: make_examples(nlp))
    crf = nlp.get_pipe("crf_ner")
    assert [s["dev_f"] is not None for s in crf.cfg["selection"]] == [True, True]
    assert ents(nlp(Doc(nlp.vocab, words=TRAIN[0][0]))) == [(0, 2, "PER"), (3, 4, "LOC")]
