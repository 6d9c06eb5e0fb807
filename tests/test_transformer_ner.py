"""trf_ner on a tiny random BERT (overfitting, IO, odd inputs) and its BIO decoding."""

import itertools
import shutil

import numpy
import pytest
import spacy
from spacy.tokens import Doc

try:
    from .transformer_fixtures import (
        NER_TRAIN, ODD_TEXTS, doc_spans, gold_spans, make_trf_nlp, ner_examples,
        predict_in_fresh_process, tiny_bert_dir, tiny_bert_master, train_steps, write_tiny_bert,
    )
except ImportError:  # tests/ is not a package
    from transformer_fixtures import (
        NER_TRAIN, ODD_TEXTS, doc_spans, gold_spans, make_trf_nlp, ner_examples,
        predict_in_fresh_process, tiny_bert_dir, tiny_bert_master, train_steps, write_tiny_bert,
    )

from hybridnlp.components.transformer.bio import (
    allowed_transitions, bio_tags, biluo_to_bio, decode_bio, decode_bio_batch, viterbi_bio,
    viterbi_bio_batch,
)

TEXTS = [" ".join(words) for words, _ in NER_TRAIN]


# --- BIO decoding ---------------------------------------------------------------------------


def test_bio_tags_and_conversion():
    assert bio_tags(["PER", "creative-work"]) == ["O", "B-PER", "I-PER", "B-creative-work", "I-creative-work"]
    assert biluo_to_bio("U-creative-work") == "B-creative-work"
    assert biluo_to_bio("L-PER") == "I-PER"
    assert biluo_to_bio("B-PER") == "B-PER"
    assert biluo_to_bio("O") == "O"
    assert biluo_to_bio(None) is None and biluo_to_bio("-") is None
    allowed = allowed_transitions(bio_tags(["A", "B"]))
    # I-A (column 2) only after B-A (1) or I-A (2).
    assert list(numpy.flatnonzero(allowed[:, 2])) == [1, 2]


def test_viterbi_repairs_invalid_sequences():
    tags = bio_tags(["PER", "LOC"])  # O B-PER I-PER B-LOC I-LOC
    probs = numpy.array(
        [
            [0.1, 0.2, 0.6, 0.05, 0.05],  # I-PER is most likely but cannot start a doc
            [0.1, 0.1, 0.7, 0.05, 0.05],
            [0.9, 0.02, 0.02, 0.03, 0.03],
            [0.3, 0.0, 0.0, 0.0, 0.7],  # I-LOC after O is invalid
        ]
    )
    path = [tags[i] for i in viterbi_bio(probs, tags)]
    assert path == ["B-PER", "I-PER", "O", "O"]
    assert viterbi_bio(numpy.zeros((0, 5)), tags) == []


def _best_valid_sequence(probs, tags):
    """The most probable valid tag sequence by enumerating all of them (tiny inputs only)."""
    allowed = allowed_transitions(tags)
    logp = numpy.log(numpy.clip(probs.astype("float64"), 1e-12, 1.0))  # as the decoder clips
    best, best_score = [], -numpy.inf
    for seq in itertools.product(range(len(tags)), repeat=probs.shape[0]):
        if not seq or tags[seq[0]].startswith("I-"):
            continue
        if all(allowed[a, b] for a, b in zip(seq, seq[1:])):
            score = logp[numpy.arange(len(seq)), seq].sum()
            if score > best_score:
                best, best_score = list(seq), score
    return best


def test_batched_viterbi_finds_the_best_valid_sequence():
    tags = bio_tags(["A", "B"])
    rng = numpy.random.default_rng(0)
    for _ in range(100):
        # Batches of 0-5 docs of 0-4 tokens, in random length order (empty docs included).
        batch = [
            rng.dirichlet(numpy.full(len(tags), 0.3), size=rng.integers(0, 5)).astype("float32")
            for _ in range(rng.integers(0, 6))
        ]
        paths = viterbi_bio_batch(batch, tags)
        assert paths == [_best_valid_sequence(probs, tags) for probs in batch]
        assert paths == [viterbi_bio(probs, tags) for probs in batch]
        assert decode_bio_batch(batch, tags) == [decode_bio(probs, tags) for probs in batch]


def test_span_confidence():
    tags = bio_tags(["PER"])  # O B-PER I-PER
    probs = numpy.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.7, 0.1, 0.2], [0.05, 0.9, 0.05]])
    spans = decode_bio(probs, tags)
    assert [(s, e, l) for s, e, l, _ in spans] == [(0, 2, "PER"), (3, 4, "PER")]
    # P(B at 0) * P(I at 1) * (1 - P(I at 2)); the last span ends the doc.
    assert spans[0][3] == pytest.approx(0.8 * 0.8 * 0.8)
    assert spans[1][3] == pytest.approx(0.9)


# --- The component --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trf_ner pipeline overfitted on NER_TRAIN, with its loss history and model dir."""
    import torch

    torch.set_num_threads(1)
    model_dir = write_tiny_bert(tmp_path_factory.mktemp("ner-bert") / "model")
    nlp = make_trf_nlp(model_dir, "trf_ner")
    history = train_steps(nlp, ner_examples(nlp), n_steps=40, learn_rate=0.003)
    return nlp, history, model_dir


def test_overfit(trained):
    nlp, history, _ = trained
    assert history[-1] < history[0] * 0.2
    for words, tags in NER_TRAIN:
        doc = nlp(Doc(nlp.vocab, words=words))
        assert doc_spans(doc) == gold_spans(words, tags)
        group = doc.spans["trf_ner"]
        assert [(s.start, s.end, s.label_) for s in group] == doc_spans(doc)
        scores = group.attrs["scores"]
        assert len(scores) == len(group) and all(0.0 < s <= 1.0 for s in scores)
    scores = nlp.evaluate(ner_examples(nlp))
    assert scores["ents_f"] == 1.0
    assert set(scores["ents_per_type"]) == {"PER", "LOC", "ORG"}


def test_casing_features_used(trained):
    # The uncased tokenizer gives identical wordpieces for both texts, so any difference in
    # the predictions comes from the casing features.
    nlp = trained[0]
    tokenizer = nlp.get_pipe("transformer").model.tokenizer
    cased = "Mary Jones works at Google in London ."
    lower = cased.lower()
    assert tokenizer(cased)["input_ids"] == tokenizer(lower)["input_ids"]
    ner = nlp.get_pipe("trf_ner")
    doc_cased, doc_lower = nlp.make_doc(cased), nlp.make_doc(lower)
    probs_cased, probs_lower = ner.predict(list(nlp.get_pipe("transformer").pipe([doc_cased, doc_lower])))
    assert numpy.abs(probs_cased - probs_lower).max() > 0.1
    assert len(nlp(lower).ents) < len(nlp(cased).ents)


def test_disabled_transformer_raises_e520(trained):
    """Without the transformer's output spacy-transformers' listener feeds zeros; the head
    refuses instead of predicting from them. Empty docs need no output."""
    nlp = trained[0]
    with nlp.select_pipes(disable=["transformer"]):
        with pytest.raises(ValueError, match=r"\[E520\] Component 'trf_ner'"):
            nlp("good film")
        assert nlp("") is not None
    assert nlp("Mary Jones works at Google").ents


def test_pipe_agrees_with_call(trained):
    nlp = trained[0]
    texts = TEXTS + ["", "Mary", "   "]
    piped = list(nlp.pipe(texts, batch_size=4))
    for text, doc in zip(texts, piped):
        alone = nlp(text)
        assert doc_spans(doc) == doc_spans(alone)
        numpy.testing.assert_allclose(
            doc.spans["trf_ner"].attrs["scores"], alone.spans["trf_ner"].attrs["scores"], atol=1e-5
        )


def test_io_without_model_dir(trained, tmp_path):
    nlp, _, model_dir = trained
    expected = [nlp(text) for text in TEXTS]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(model_dir)
    nlp2 = spacy.load(tmp_path / "pipeline")
    for text, doc in zip(TEXTS, expected):
        doc2 = nlp2(text)
        assert doc_spans(doc2) == doc_spans(doc)
        assert doc2.spans["trf_ner"].attrs["scores"] == doc.spans["trf_ner"].attrs["scores"]
    fresh = predict_in_fresh_process(tmp_path / "pipeline", TEXTS)
    assert [[tuple(e) for e in out["ents"]] for out in fresh] == [doc_spans(doc) for doc in expected]


def test_long_document(trained):
    nlp = trained[0]
    words, tags = [], []
    while len(words) < 800:
        for sentence_words, sentence_tags in NER_TRAIN:
            words.extend(sentence_words)
            tags.extend(sentence_tags)
    n_wordpieces = len(nlp.get_pipe("transformer").model.tokenizer(" ".join(words))["input_ids"])
    assert n_wordpieces > 512
    doc = nlp(Doc(nlp.vocab, words=words))
    assert all(length > 0 for length in doc._.trf_data.align.lengths)
    gold = gold_spans(words, tags)
    found = set(doc_spans(doc))
    # The tiny model saw these sentences one at a time; in 128-token windows it still finds
    # nearly all of them, including those beyond the first 512 wordpieces.
    late = [span for span in gold if span[0] > len(words) * 3 // 4]
    assert late and len(found & set(late)) >= 0.9 * len(late)
    assert len(found & set(gold)) >= 0.9 * len(gold)


def test_odd_inputs(trained):
    nlp = trained[0]
    for text in ODD_TEXTS:
        doc = nlp(text)
        assert len(doc.spans["trf_ner"].attrs["scores"]) == len(doc.spans["trf_ner"])
        assert all(span.text.strip() for span in doc.ents)
    docs = list(nlp.pipe(ODD_TEXTS + TEXTS))
    assert [doc_spans(d) for d in docs[: len(ODD_TEXTS)]] == [doc_spans(nlp(t)) for t in ODD_TEXTS]
    assert doc_spans(nlp("")) == [] and len(nlp("").spans["trf_ner"]) == 0


def test_very_long_document(trained):
    nlp = trained[0]
    text = ("Mary Jones works at Google in London . " * 6000)[:200_000]
    doc = nlp(text)
    labels = [e.label_ for e in doc.ents]
    assert labels.count("LOC") > 1000


def test_untrained_and_bad_labels(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_ner")
    nlp.get_pipe("transformer").initialize(lambda: [], nlp=nlp)
    with pytest.raises(ValueError, match=r"\[E100\].*trf_ner"):
        nlp("John lives in Paris")
    ner = nlp.get_pipe("trf_ner")
    with pytest.raises(ValueError, match=r"\[E506\]"):
        ner.add_label("")
    # No entities at all in the training data: a clear error, not an empty model.
    examples = ner_examples(nlp, [(["just", "words"], ["O", "O"])])
    with pytest.raises(ValueError, match=r"\[E101\]"):
        nlp.initialize(lambda: examples)


def test_labels_argument_and_add_label_after_init(tiny_bert_dir):
    nlp = make_trf_nlp(tiny_bert_dir, "trf_ner", head_config={"set_ents": False, "source": "minilm"})
    examples = ner_examples(nlp)
    nlp.get_pipe("transformer").initialize(lambda: examples, nlp=nlp)
    ner = nlp.get_pipe("trf_ner")
    # Labels given explicitly win over the data; ORG/LOC tokens then carry no gradient.
    ner.initialize(lambda: examples, nlp=nlp, labels=["PER", "MISC"])
    assert ner.labels == ("PER", "MISC")
    losses = ner.update([])
    assert losses == {"trf_ner": 0.0}
    with pytest.raises(ValueError, match=r"\[E507\]"):
        ner.add_label("ORG")
    doc = nlp("Mary met John")
    assert "minilm" in doc.spans and "trf_ner" not in doc.spans
    assert doc.ents == ()
