"""Tests of the tfidf_textcat component: fitting, IO without pickle, calibration, bad input."""

import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import spacy
from spacy.training import Example

from hybridnlp.components.classical.tfidf_textcat import TfidfTextCategorizer

# Tiny corpora written for these tests: three intents, a few texts each.
TRAIN_EXCLUSIVE = [
    ("How many people live in Paris ?", "NUM"),
    ("How many legs does a spider have ?", "NUM"),
    ("How much does a ticket to Rome cost ?", "NUM"),
    ("What year did the war end ?", "NUM"),
    ("Who wrote the novel Dracula ?", "HUM"),
    ("Who was the first president of Kenya ?", "HUM"),
    ("Who invented the telephone ?", "HUM"),
    ("Which actor played the king ?", "HUM"),
    ("Where is the Eiffel tower ?", "LOC"),
    ("Where do penguins live ?", "LOC"),
    ("What city hosts the big carnival ?", "LOC"),
    ("In which country is the river Nile ?", "LOC"),
]
TRAIN_MULTI = [
    ("the battery died and the screen cracked", ["battery", "screen"]),
    ("battery drains fast", ["battery"]),
    ("my battery will not charge", ["battery"]),
    ("battery is swollen", ["battery"]),
    ("screen flickers all day", ["screen"]),
    ("a dead pixel on the screen", ["screen"]),
    ("screen stays black", ["screen"]),
    ("great phone, no complaints", []),
    ("arrived on time, works fine", []),
    ("screen and battery both broke", ["battery", "screen"]),
]
LABELS_MULTI = ["battery", "screen"]


def exclusive_examples(nlp, data=TRAIN_EXCLUSIVE):
    labels = sorted({label for _, label in data})
    return [
        Example.from_dict(nlp.make_doc(text), {"cats": {lab: float(lab == label) for lab in labels}})
        for text, label in data
    ]


def multi_examples(nlp, data=TRAIN_MULTI):
    return [
        Example.from_dict(nlp.make_doc(text), {"cats": {lab: float(lab in labels) for lab in LABELS_MULTI}})
        for text, labels in data
    ]


def make_nlp(**config):
    # One char analyzer unless a test asks for the search: keeps the tests fast.
    config.setdefault("char_analyzer", "char_wb")
    nlp = spacy.blank("en")
    nlp.add_pipe("tfidf_textcat", name="textcat", config=config)
    return nlp


@pytest.fixture(scope="module")
def trained():
    nlp = make_nlp(C=1.0)
    train = exclusive_examples(nlp)
    nlp.initialize(lambda: train)
    return nlp


def predicted_label(doc, source="textcat"):
    cats = doc._.hybrid_cats[source]
    return max(cats, key=cats.get)


def test_overfit_and_io(trained, tmp_path):
    texts = [text for text, _ in TRAIN_EXCLUSIVE]
    docs = [trained(text) for text in texts]
    for doc, (_, gold) in zip(docs, TRAIN_EXCLUSIVE):
        assert predicted_label(doc) == gold
        assert doc.cats == doc._.hybrid_cats["textcat"]
    # to_disk -> spacy.load: identical floats.
    trained.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert [loaded(t).cats for t in texts] == [d.cats for d in docs]
    # to_bytes -> from_bytes, into a fresh component.
    fresh = make_nlp(C=1.0)
    fresh.get_pipe("textcat").from_bytes(trained.get_pipe("textcat").to_bytes())
    assert [fresh(t).cats for t in texts] == [d.cats for d in docs]


def test_load_in_fresh_process_without_importing_hybridnlp(trained, tmp_path):
    texts = ["How many moons does Mars have ?", "Who painted the ceiling ?", ""]
    trained.to_disk(tmp_path / "model")
    script = textwrap.dedent(
        f"""
        import json, sys, spacy
        nlp = spacy.load({str(tmp_path / "model")!r})
        print(json.dumps([nlp(t).cats for t in {texts!r}]))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [trained(t).cats for t in texts]


def test_pipe_agrees_with_call(trained):
    texts = [text for text, _ in TRAIN_EXCLUSIVE] + ["Where was Mozart born ?", "", "   "]
    one_by_one = [trained(t).cats for t in texts]
    piped = [doc.cats for doc in trained.pipe(texts, batch_size=4)]
    assert piped == one_by_one


def test_few_docs_skip_the_sparse_matrix_with_identical_scores(trained):
    """A call on one doc (or a few) scores without building a sparse matrix, to the bit."""
    import numpy as np

    pipe = trained.get_pipe("textcat")
    texts = [text for text, _ in TRAIN_EXCLUSIVE] + ["", "   ", "zzzz qqqq xxxx", "battery " * 2000, "🙂\x07"]
    docs = [trained.make_doc(t) for t in texts]
    assert np.array_equal(pipe._decision_direct(docs), pipe._decision(pipe._transform(docs)))
    for doc in docs:
        assert np.array_equal(pipe.predict([doc]), pipe._calibrate(pipe._decision(pipe._transform([doc]))))


@pytest.mark.parametrize("calibration", ["temperature", "sigmoid"])
def test_exclusive_probabilities_are_distributions(calibration):
    nlp = make_nlp(C=1.0, calibration=calibration, calibration_folds=3)
    train = exclusive_examples(nlp)
    nlp.initialize(lambda: train)
    probs = nlp.get_pipe("textcat").predict([nlp.make_doc(t) for t, _ in TRAIN_EXCLUSIVE] + [nlp.make_doc("zzz")])
    assert probs.shape == (len(TRAIN_EXCLUSIVE) + 1, 3)
    assert np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # Calibration is fitted on held-out decisions, so training texts are not all near 1.0,
    # but a text matching nothing is less certain than the training texts.
    assert probs[-1].max() < probs[:-1].max(axis=1).mean()


def test_binary_exclusive():
    data = [("free prize call now", "spam"), ("win cash now text", "spam"), ("claim your free prize", "spam"),
            ("see you at lunch", "ham"), ("call me later mum", "ham"), ("lunch at noon then", "ham")]
    nlp = make_nlp(C=1.0, calibration="sigmoid")
    train = exclusive_examples(nlp, data)
    nlp.initialize(lambda: train)
    for text, gold in data:
        doc = nlp(text)
        assert predicted_label(doc) == gold
        assert sum(doc.cats.values()) == pytest.approx(1.0)


def test_multi_label():
    nlp = make_nlp(multi_label=True, C=1.0)
    train = multi_examples(nlp)
    nlp.initialize(lambda: train)
    for text, gold in TRAIN_MULTI:
        cats = nlp(text).cats
        assert set(cats) == set(LABELS_MULTI)
        assert all(0.0 <= p <= 1.0 for p in cats.values())
        assert {lab for lab, p in cats.items() if p >= 0.5} == set(gold)
    scores = nlp.evaluate(multi_examples(nlp))
    assert scores["cats_micro_f"] == 1.0
    assert scores["cats_score"] == 1.0  # macro AUC for multi-label


def test_evaluate_gives_spacy_textcat_scores(trained):
    scores = trained.evaluate(exclusive_examples(trained))
    assert scores["cats_macro_f"] == 1.0
    assert scores["cats_micro_f"] == 1.0
    assert scores["cats_score"] == 1.0


def test_unseen_gold_label_at_evaluation_does_not_crash(trained):
    labels = ["HUM", "LOC", "NUM", "ABBR"]
    examples = [
        Example.from_dict(trained.make_doc("What does NASA stand for ?"), {"cats": {lab: float(lab == "ABBR") for lab in labels}}),
        Example.from_dict(trained.make_doc("Who wrote Hamlet ?"), {"cats": {lab: float(lab == "HUM") for lab in labels}}),
    ]
    scores = trained.evaluate(examples)
    assert 0.0 <= scores["cats_macro_f"] <= 1.0
    assert "ABBR" not in scores["cats_f_per_type"]


def test_explain_names_the_evidence(trained):
    doc = trained.make_doc("How many moons does Jupiter have ?")
    features = trained.get_pipe("textcat").explain(doc, top_k=5)
    assert 0 < len(features) <= 5
    names = [name for name, _ in features]
    weights = [w for _, w in features]
    assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
    assert any("how many" in name or name == "many" for name in names)
    hum = trained.get_pipe("textcat").explain(trained.make_doc("Who discovered penicillin ?"), label="HUM")
    assert any("who" in name for name, _ in hum)
    with pytest.raises(ValueError, match="E301"):
        trained.get_pipe("textcat").explain(doc, label="NOPE")


def test_C_selected_on_dev_corpus():
    nlp = make_nlp(C=[0.01, 1.0], char_analyzer=["char_wb", "char"])
    train = exclusive_examples(nlp)
    dev = exclusive_examples(nlp, [("How many cats are there ?", "NUM"), ("Who is the queen ?", "HUM"),
                                   ("Where is Lima ?", "LOC")])
    nlp.get_pipe("textcat").initialize(lambda: train, nlp=nlp, dev_corpus=lambda _nlp: dev)
    cfg = nlp.get_pipe("textcat").cfg
    assert cfg["selection_"]["by"] == "dev"
    scores = cfg["selection_"]["scores"]
    assert len(scores) == 4
    chosen = scores[f"char_analyzer={cfg['char_analyzer_']} C={cfg['C_']}"]
    # The choice is the candidate with the lowest held-out log-loss.
    assert chosen["log_loss"] == min(s["log_loss"] for s in scores.values())
    assert all(0.0 <= s["accuracy"] <= 1.0 for s in scores.values())
    # C is far too small to fit anything at 0.01: the search must not pick it.
    assert cfg["C_"] == 1.0
    assert [predicted_label(doc) for doc in nlp.pipe(t for t, _ in TRAIN_EXCLUSIVE)] == [l for _, l in TRAIN_EXCLUSIVE]


def test_dev_corpus_from_initialize_config(tmp_path):
    dev_file = tmp_path / "dev.jsonl"
    dev_file.write_text("\n".join(json.dumps({"text": t, "label": l}) for t, l in TRAIN_EXCLUSIVE[::3]), encoding="utf8")
    config = spacy.util.load_config_from_str(textwrap.dedent(
        f"""
        [nlp]
        lang = "en"
        pipeline = ["textcat"]

        [components]

        [components.textcat]
        factory = "tfidf_textcat"
        C = [0.5, 1.0]

        [initialize]

        [initialize.components]

        [initialize.components.textcat]

        [initialize.components.textcat.dev_corpus]
        @readers = "hybridnlp.Corpus.v1"
        path = "{dev_file}"
        """
    ))
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    train = exclusive_examples(nlp)
    nlp.initialize(lambda: train)
    assert nlp.get_pipe("textcat").cfg["selection_"]["by"] == "dev"


def test_untrained_component_raises_E100():
    nlp = make_nlp()
    with pytest.raises(ValueError, match="E100"):
        nlp("hello")


def test_odd_texts_get_valid_distributions(trained):
    texts = ["", "   ", "\n\t ", "\x00\x07 bell \x1b[31m", "How many 🐙 arms ? 🎉🎉", "A" * 200_000,
             ("Where is the city ? " * 12_000)[:200_000]]
    for doc in trained.pipe(texts):
        values = list(doc.cats.values())
        assert len(values) == 3
        assert all(0.0 <= p <= 1.0 for p in values)
        assert sum(values) == pytest.approx(1.0)
    assert predicted_label(trained(texts[-1])) == "LOC"


def test_exclusive_data_with_two_positive_labels_raises_E106():
    nlp = make_nlp()
    train = exclusive_examples(nlp)
    train.append(Example.from_dict(nlp.make_doc("Who and where ?"), {"cats": {"HUM": 1.0, "LOC": 1.0, "NUM": 0.0}}))
    with pytest.raises(ValueError, match="E106"):
        nlp.initialize(lambda: train)


def test_bad_settings_raise_E104():
    with pytest.raises(ValueError, match="E104"):
        make_nlp(calibration="isotonic")
    with pytest.raises(ValueError, match="E104"):
        make_nlp(char_analyzer="bytes")


def test_missing_model_dir_raises_E102(trained, tmp_path):
    with pytest.raises(ValueError, match="E102"):
        make_nlp().get_pipe("textcat").from_disk(tmp_path / "nowhere")
    trained.to_disk(tmp_path / "model")
    (tmp_path / "model" / "textcat" / "arrays" / "coef.npy").unlink()
    with pytest.raises(ValueError, match="E102"):
        spacy.load(tmp_path / "model")


def test_corrupt_model_dir_raises_E103(trained, tmp_path):
    trained.to_disk(tmp_path / "a")
    (tmp_path / "a" / "textcat" / "cfg.json").write_text("{not json", encoding="utf8")
    with pytest.raises(ValueError, match="E103"):
        spacy.load(tmp_path / "a")
    trained.to_disk(tmp_path / "b")
    (tmp_path / "b" / "textcat" / "arrays" / "coef.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="E103"):
        spacy.load(tmp_path / "b")
    # An object array (which only a pickle can hold) is refused, never unpickled.
    trained.to_disk(tmp_path / "c")
    np.save(tmp_path / "c" / "textcat" / "arrays" / "intercept.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="E103"):
        spacy.load(tmp_path / "c")
    trained.to_disk(tmp_path / "d")
    np.save(tmp_path / "d" / "textcat" / "arrays" / "idf_char.npy", np.ones(3))
    with pytest.raises(ValueError, match="E103"):
        spacy.load(tmp_path / "d")
    with pytest.raises(ValueError, match="E103"):
        make_nlp().get_pipe("textcat").from_bytes(b"\x00not msgpack")


def test_nothing_is_pickled(trained, tmp_path):
    trained.to_disk(tmp_path / "model")
    files = [p for p in (tmp_path / "model" / "textcat").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"cfg.json", "features.json", "coef.npy", "idf_word.npy", "cal_a.npy"}
    for path in files:
        head = path.read_bytes()[:2]
        assert not head.startswith(b"\x80"), f"{path} looks like a pickle"
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            assert arr.dtype == np.float64
        else:
            json.loads(path.read_text(encoding="utf8"))
            with pytest.raises(pickle.UnpicklingError):
                pickle.loads(path.read_bytes())


def test_untrained_component_round_trips(tmp_path):
    nlp = make_nlp(C=[0.5, 2.0], word_ngram_range=[1, 3])
    nlp.to_disk(tmp_path / "m")
    loaded = spacy.load(tmp_path / "m")
    pipe = loaded.get_pipe("textcat")
    assert isinstance(pipe, TfidfTextCategorizer) and not pipe.is_initialized
    assert pipe.cfg["word_ngram_range"] == [1, 3]


@pytest.mark.parametrize("lo,hi", [(2, 5), (3, 6), (2, 2), (1, 4)])
def test_char_pieces_give_exactly_the_ngrams_of_the_padded_text(lo, hi):
    from collections import Counter

    from hybridnlp.components.classical.tfidf_textcat import _char_pieces, _piece_ngrams

    for text in ["", "a", "ab  c", "what is the largest city ?", " x y z ", "a bb a bb ccc dddd e"]:
        got = Counter(g for piece in _char_pieces(text, "char", hi) for g in _piece_ngrams(piece, lo, hi))
        padded = " " + " ".join(text.split()) + " " if text.split() else ""
        expected = Counter(padded[i : i + n] for n in range(lo, hi + 1) for i in range(len(padded) - n + 1))
        if lo == 1:  # single spaces: one per padded word (documented), not one per gap
            got.pop(" ", None), expected.pop(" ", None)
        assert got == expected, text


@pytest.mark.parametrize("analyzer", ["char_wb", "char"])
def test_cached_prediction_path_matches_fitting_path(analyzer):
    nlp = make_nlp(C=1.0, char_analyzer=analyzer)
    train = exclusive_examples(nlp)
    nlp.initialize(lambda: train)
    pipe = nlp.get_pipe("textcat")
    docs = [nlp.make_doc(t) for t, _ in TRAIN_EXCLUSIVE]
    strings = ([pipe._word_features(d) for d in docs], [pipe._char_features(d) for d in docs])
    fitted = pipe._transform(docs, strings=strings)
    cached = pipe._transform(docs)
    cached_again = pipe._transform(docs)  # now from the filled cache
    assert (fitted != cached).nnz == 0 and (cached != cached_again).nnz == 0


def test_labels_argument_fixes_order():
    nlp = make_nlp(C=1.0)
    train = exclusive_examples(nlp)
    nlp.get_pipe("textcat").initialize(lambda: train, nlp=nlp, labels=["NUM", "LOC", "HUM"])
    assert nlp.get_pipe("textcat").labels == ("NUM", "LOC", "HUM")
    assert list(nlp("Who wrote Dracula ?").cats) == ["NUM", "LOC", "HUM"]
    assert predicted_label(nlp("Who wrote Dracula ?")) == "HUM"


def test_source_and_set_doc_cats():
    nlp = make_nlp(C=1.0, source="tfidf", set_doc_cats=False)
    train = exclusive_examples(nlp)
    nlp.initialize(lambda: train)
    doc = nlp("Where is the Eiffel tower ?")
    assert doc.cats == {}
    assert predicted_label(doc, "tfidf") == "LOC"
