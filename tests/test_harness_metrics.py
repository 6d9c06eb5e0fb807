"""The harness's per-document counts against spaCy's Scorer and seqeval, bootstrap
intervals, and the paired test."""

import numpy as np
import pytest
import spacy
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example

from hybridnlp.harness.metrics import (
    DocCounts,
    bootstrap_intervals,
    cats_doc_counts,
    ner_doc_counts,
    paired_test,
    point_scores,
)


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def ner_example(nlp, words, gold, pred):
    """An example with gold and predicted entities given as (start, end, label)."""
    reference = Doc(nlp.vocab, words=words)
    reference.ents = [Span(reference, s, e, label=l) for s, e, l in gold]
    predicted = Doc(nlp.vocab, words=words)
    predicted.ents = [Span(predicted, s, e, label=l) for s, e, l in pred]
    return Example(predicted, reference)


def iob2(doc):
    return [t.ent_iob_ + ("-" + t.ent_type_ if t.ent_type_ else "") if t.ent_iob_ else "O" for t in doc]


@pytest.fixture(scope="module")
def ner_examples(nlp):
    words = "John Smith lives in New York and works for Acme Corp today".split()
    return [
        # A hit (PER), a boundary error (LOC), a spurious ORG.
        ner_example(nlp, words, [(0, 2, "PER"), (4, 6, "LOC"), (9, 11, "ORG")],
                    [(0, 2, "PER"), (5, 6, "LOC"), (9, 11, "ORG"), (11, 12, "ORG")]),
        # An empty document.
        ner_example(nlp, [], [], []),
        # No gold entities; the prediction has a label never seen in training (EVENT).
        ner_example(nlp, "It rained on Monday".split(), [], [(3, 4, "EVENT")]),
        # A gold type that is never predicted (MISC), and a wrong label.
        ner_example(nlp, "Germans like Berlin".split(), [(0, 1, "MISC"), (2, 3, "LOC")], [(2, 3, "ORG")]),
        # No entities anywhere.
        ner_example(nlp, "nothing here".split(), [], []),
    ]


def test_ner_counts_agree_with_spacy_and_seqeval(ner_examples):
    counts = ner_doc_counts(ner_examples)
    ours = point_scores(counts)
    spacy_scores = get_ner_prf(ner_examples)
    for key in ("ents_p", "ents_r", "ents_f"):
        assert ours[key] == pytest.approx(spacy_scores[key], abs=1e-12)
    assert set(counts.labels) == set(spacy_scores["ents_per_type"]) == {"PER", "LOC", "ORG", "EVENT", "MISC"}
    for label, prf in spacy_scores["ents_per_type"].items():
        for key in "prf":
            assert ours[("ents_per_type", label, key)] == pytest.approx(prf[key], abs=1e-12)
    # seqeval, strict IOB2: the same numbers overall and per type.
    y_true = [iob2(eg.reference) for eg in ner_examples]
    y_pred = [iob2(eg.predicted) for eg in ner_examples]
    report = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    assert ours["ents_p"] == pytest.approx(report["micro avg"]["precision"])
    assert ours["ents_r"] == pytest.approx(report["micro avg"]["recall"])
    assert ours["ents_f"] == pytest.approx(report["micro avg"]["f1-score"])
    for label in counts.labels:
        assert ours[("ents_per_type", label, "p")] == pytest.approx(report[label]["precision"])
        assert ours[("ents_per_type", label, "r")] == pytest.approx(report[label]["recall"])
        assert ours[("ents_per_type", label, "f")] == pytest.approx(report[label]["f1-score"])
    # The numbers themselves: 2 of 5 predictions right, 2 of 5 gold entities found.
    assert ours["ents_p"] == pytest.approx(2 / 6)
    assert ours["ents_r"] == pytest.approx(2 / 5)
    assert counts.n_docs == len(ner_examples)
    assert counts.counts[1].sum() == 0 and counts.counts[4].sum() == 0


def cats_example(nlp, text, gold, pred):
    predicted = nlp.make_doc(text)
    predicted.cats = pred
    reference = nlp.make_doc(text)
    reference.cats = gold
    return Example(predicted, reference)


def test_cats_counts_agree_with_spacy_scorer(nlp):
    labels = ["A", "B", "C"]
    gold = lambda lab: {l: float(l == lab) for l in labels + ["D"]}  # noqa: E731
    pred = lambda a, b, c: {"A": a, "B": b, "C": c}  # noqa: E731
    examples = [
        cats_example(nlp, "one", gold("A"), pred(0.7, 0.2, 0.1)),
        cats_example(nlp, "two", gold("B"), pred(0.6, 0.3, 0.1)),
        cats_example(nlp, "", gold("C"), pred(0.1, 0.1, 0.8)),
        # A gold label the classifier never saw in training (D).
        cats_example(nlp, "four", gold("D"), pred(0.2, 0.5, 0.3)),
        cats_example(nlp, "five", gold("B"), pred(0.1, 0.8, 0.1)),
    ]
    counts = cats_doc_counts(examples, multi_label=False)
    assert counts.labels == labels
    ours = point_scores(counts)
    theirs = Scorer.score_cats(examples, "cats", labels=labels, multi_label=False)
    assert ours["cats_macro_f"] == pytest.approx(theirs["cats_macro_f"], abs=1e-12)
    assert ours["cats_micro_f"] == pytest.approx(theirs["cats_micro_f"], abs=1e-12)
    assert ours["accuracy"] == pytest.approx(3 / 5)

    multi = [
        cats_example(nlp, "x", {"A": 1.0, "B": 1.0, "C": 0.0}, pred(0.9, 0.4, 0.6)),
        cats_example(nlp, "y", {"A": 0.0, "B": 1.0, "C": 0.0}, pred(0.1, 0.7, 0.2)),
        cats_example(nlp, "", {"A": 0.0, "B": 0.0, "C": 0.0}, pred(0.1, 0.1, 0.1)),
    ]
    counts = cats_doc_counts(multi, multi_label=True, threshold=0.5)
    ours = point_scores(counts)
    theirs = Scorer.score_cats(multi, "cats", labels=labels, multi_label=True, threshold=0.5)
    assert ours["cats_macro_f"] == pytest.approx(theirs["cats_macro_f"], abs=1e-12)
    assert ours["cats_micro_f"] == pytest.approx(theirs["cats_micro_f"], abs=1e-12)
    assert counts.correct is None


def synthetic_accuracy(n_docs, rate, seed):
    """Exclusive-class counts for n_docs documents, each correct with probability rate."""
    rng = np.random.default_rng(seed)
    correct = (rng.random(n_docs) < rate).astype(float)
    counts = np.zeros((n_docs, 2, 3))
    counts[:, 0, 0] = correct  # tp on label 0
    counts[:, 0, 2] = 1 - correct  # fn on label 0
    counts[:, 1, 1] = 1 - correct  # fp on label 1
    return DocCounts("cats", ["yes", "no"], counts, correct)


def test_bootstrap_interval_contains_value_and_shrinks():
    small = bootstrap_intervals(synthetic_accuracy(50, 0.7, 0), n_resamples=1000, seed=0)
    large = bootstrap_intervals(synthetic_accuracy(2000, 0.7, 0), n_resamples=1000, seed=0)
    for scores in (small, large):
        for name in ("accuracy", "cats_macro_f", "cats_micro_f"):
            interval = scores[name]
            assert interval["low"] <= interval["value"] <= interval["high"]
            assert interval["low"] < interval["high"]
    width = lambda s: s["accuracy"]["high"] - s["accuracy"]["low"]  # noqa: E731
    assert width(large) < width(small) / 3
    # Seeded: the same call gives the same interval.
    again = bootstrap_intervals(synthetic_accuracy(50, 0.7, 0), n_resamples=1000, seed=0)
    assert again == small
    # No resamples: the value alone, no made-up interval.
    none = bootstrap_intervals(synthetic_accuracy(50, 0.7, 0), n_resamples=0)
    assert none["accuracy"] == {"value": small["accuracy"]["value"], "low": None, "high": None}


def test_bootstrap_over_entities_is_fast_and_sane(ner_examples):
    import time

    counts = ner_doc_counts(ner_examples * 600)  # 3000 documents
    start = time.perf_counter()
    scores = bootstrap_intervals(counts, n_resamples=1000, seed=1)
    assert time.perf_counter() - start < 5
    assert scores["ents_f"]["low"] <= scores["ents_f"]["value"] <= scores["ents_f"]["high"]
    per_type = scores[("ents_per_type", "PER", "f")]
    assert per_type["value"] == 1.0 and per_type["low"] == 1.0


def test_paired_test_small_p_for_better_large_p_for_identical():
    worse = synthetic_accuracy(300, 0.6, 1)
    better_correct = np.maximum(worse.correct, (np.random.default_rng(2).random(300) < 0.5).astype(float))
    better = synthetic_accuracy(300, 0.0, 0)
    better.correct = better_correct
    better.counts[:, 0, 0] = better_correct
    better.counts[:, 0, 2] = 1 - better_correct
    better.counts[:, 1, 1] = 1 - better_correct
    assert better_correct.mean() > worse.correct.mean() + 0.15
    assert paired_test(better, worse, "accuracy", n_resamples=1000, seed=0) < 0.01
    assert paired_test(worse, worse, "accuracy", n_resamples=1000, seed=0) == 1.0
    assert paired_test(better, better, "cats_macro_f", n_resamples=200, seed=0) == 1.0


def test_paired_test_on_entities(ner_examples, nlp):
    perfect = [Example(eg.reference.copy(), eg.reference) for eg in ner_examples] * 40
    system = list(ner_examples) * 40
    p = paired_test(ner_doc_counts(perfect), ner_doc_counts(system), "ents_f", n_resamples=500)
    assert p < 0.01
    assert paired_test(ner_doc_counts(system), ner_doc_counts(system), "ents_f", n_resamples=200) == 1.0


def test_ner_counts_are_per_sentence_whatever_the_doc_size(nlp):
    """A corpus read one sentence per doc or several per doc gives the same rows (one per
    sentence), so systems trained with different n_sents can be paired."""
    sents = [("Anna met Bob".split(), [(0, 1, "PER"), (2, 3, "PER")], [(0, 1, "PER")]),
             ("in New York".split(), [(1, 3, "LOC")], [(1, 3, "LOC"), (0, 1, "ORG")]),
             ("nothing".split(), [], [])]
    one_per_doc = [ner_example(nlp, words, gold, pred) for words, gold, pred in sents]
    words, gold, pred, starts = [], [], [], []
    for sent_words, sent_gold, sent_pred in sents:
        offset = len(words)
        words += sent_words
        starts += [True] + [False] * (len(sent_words) - 1)
        gold += [(s + offset, e + offset, l) for s, e, l in sent_gold]
        pred += [(s + offset, e + offset, l) for s, e, l in sent_pred]
    reference = Doc(nlp.vocab, words=words, sent_starts=starts)
    reference.ents = [Span(reference, s, e, label=l) for s, e, l in gold]
    predicted = Doc(nlp.vocab, words=words)
    predicted.ents = [Span(predicted, s, e, label=l) for s, e, l in pred]
    grouped = ner_doc_counts([Example(predicted, reference)])
    single = ner_doc_counts(one_per_doc)
    assert grouped.n_docs == single.n_docs == 3
    assert grouped.labels == single.labels
    np.testing.assert_array_equal(grouped.counts, single.counts)
    assert point_scores(grouped) == point_scores(single)
