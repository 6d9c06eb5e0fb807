"""Quality scores with bootstrap intervals and paired significance tests.

Every score is recomputed from per-document counts: for each document and label, how many
true positives, false positives and false negatives it contributes, counted exactly as
spaCy's ``Scorer`` counts them (``Scorer.score_cats`` for categories, ``get_ner_prf`` for
strict entity matching, which on well-formed IOB2 tags equals seqeval's strict mode).
Summed over all documents the counts give spaCy's numbers; summed over a resample of the
documents they give that resample's numbers. Resampling is a matrix product of
per-resample document weights with the count matrix, so 1000 resamples of a few thousand
documents take well under a second.
"""

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from spacy.training import Example

# The same guards as spacy.scorer.PRFScore, so values agree to the last digit.
_EPS = 1e-100
TP, FP, FN = 0, 1, 2
# Resamples are processed in blocks so the weight matrix stays small for large corpora.
_BLOCK_ELEMENTS = 4_000_000
# A score name: spaCy's ("ents_f"), or ("ents_per_type", LABEL, "p"|"r"|"f") for per-type scores.
ScoreKey = Union[str, Tuple[str, str, str]]


@dataclass
class DocCounts:
    """Per-document counts for one system on one list of documents.

    ``kind`` is ``"cats"`` or ``"ents"``; ``counts[i, j]`` holds (tp, fp, fn) of document i
    for ``labels[j]``; ``correct[i]`` is 1.0 when document i's top category is its gold
    category (exclusive classes only, else None); ``multi_label`` says which category
    scores apply.
    """

    kind: str
    labels: List[str]
    counts: np.ndarray
    correct: Optional[np.ndarray] = None
    multi_label: bool = False

    @property
    def n_docs(self) -> int:
        return int(self.counts.shape[0])

    def with_labels(self, labels: Sequence[str]) -> "DocCounts":
        """The same counts over a (super)set of labels; labels it lacks count zero."""
        index = {label: j for j, label in enumerate(self.labels)}
        counts = np.zeros((self.n_docs, len(labels), 3), dtype=self.counts.dtype)
        for j, label in enumerate(labels):
            if label in index:
                counts[:, j] = self.counts[:, index[label]]
        return DocCounts(self.kind, list(labels), counts, self.correct, self.multi_label)


def _sentence_ids(doc) -> np.ndarray:
    """Sentence index of every token of a reference doc (all 0 without sentence boundaries)."""
    ids = np.zeros(len(doc), dtype="int64")
    if len(doc) and doc.has_annotation("SENT_START"):
        starts = np.array([token.is_sent_start is True for token in doc])
        starts[0] = False
        ids = np.cumsum(starts)
    return ids


def ner_doc_counts(examples: Iterable[Example]) -> DocCounts:
    """Strict entity counts per reference sentence and type, as ``spacy.scorer.get_ner_prf``
    counts.

    A predicted entity is a true positive when a gold entity has the same label and the
    same (aligned) start and end; predictions over tokens whose gold annotation is missing
    are ignored; documents without entity annotation count nothing (but are still
    units, so they are resampled like the rest). The unit of resampling is the sentence
    when the reference doc has sentence boundaries (one row per sentence, in order), else
    the doc: so systems that read a corpus in docs of different sizes (``n_sents``) are
    still compared unit by unit.
    """
    per_doc: List[Dict[str, List[int]]] = []
    labels: Dict[str, None] = {}
    for eg in examples:
        sent_ids = _sentence_ids(eg.y)
        units: List[Dict[str, List[int]]] = [{} for _ in range(int(sent_ids[-1]) + 1 if len(sent_ids) else 1)]
        per_doc.extend(units)
        if not eg.y.has_annotation("ENT_IOB"):
            continue
        golds = {(e.label_, e.start, e.end) for e in eg.y.ents}
        align_x2y = eg.alignment.x2y
        for pred_ent in eg.x.ents:
            indices = align_x2y[pred_ent.start : pred_ent.end]
            if len(indices):
                row = units[sent_ids[indices[0]]].setdefault(pred_ent.label_, [0, 0, 0])
                labels.setdefault(pred_ent.label_)
                g_span = eg.y[indices[0] : indices[-1] + 1]
                if all(token.ent_iob != 0 for token in g_span):
                    key = (pred_ent.label_, indices[0], indices[-1] + 1)
                    if key in golds:
                        row[TP] += 1
                        golds.remove(key)
                    else:
                        row[FP] += 1
        for label, start, _ in golds:
            units[sent_ids[start]].setdefault(label, [0, 0, 0])[FN] += 1
            labels.setdefault(label)
    return DocCounts("ents", sorted(labels), _to_array(per_doc, sorted(labels)))


def cats_doc_counts(
    examples: Iterable[Example],
    *,
    multi_label: bool,
    labels: Optional[Sequence[str]] = None,
    threshold: Optional[float] = None,
) -> DocCounts:
    """Category counts per document and label, as ``Scorer.score_cats`` counts them.

    ``labels`` is the label set the scorer uses (a text classifier's labels); by default
    the labels the predictions carry, as spaCy's text classifiers write every label into
    ``doc.cats`` (the gold labels when no document has predictions). Exclusive classes
    compare the top predicted label with the top gold label (no threshold, as in spaCy);
    multi-label classes count each label at ``threshold`` (default 0.5).
    """
    examples = list(examples)
    if labels is None:
        found = {label for eg in examples for label in eg.predicted.cats}
        if not found:
            found = {label for eg in examples for label in eg.reference.cats}
        labels = sorted(found)
    labels = list(labels)
    label_set = set(labels)
    if threshold is None:
        threshold = 0.5
    per_doc: List[Dict[str, List[int]]] = []
    correct = np.zeros(len(examples), dtype=np.float64)
    exclusive = not multi_label
    for i, eg in enumerate(examples):
        doc_counts: Dict[str, List[int]] = {}
        per_doc.append(doc_counts)
        pred_all = eg.predicted.cats
        gold_all = eg.reference.cats
        # Accuracy as hybridnlp.evaluation computes it: top prediction against top gold
        # label, over all labels (not only the scorer's).
        if pred_all and gold_all and max(pred_all, key=pred_all.get) == max(gold_all, key=gold_all.get):
            correct[i] = 1.0
        if gold_all and sum(1 for v in gold_all.values() if v >= 0.5) != 1:
            exclusive = False
        pred_cats = {k: v for k, v in pred_all.items() if k in label_set}
        gold_cats = {k: v for k, v in gold_all.items() if k in label_set}
        if multi_label:
            for label in labels:
                pred_score = pred_cats.get(label, 0.0)
                gold_score = gold_cats.get(label)
                if gold_score is None:
                    continue
                if pred_score >= threshold and gold_score > 0:
                    doc_counts.setdefault(label, [0, 0, 0])[TP] += 1
                elif pred_score >= threshold and gold_score == 0:
                    doc_counts.setdefault(label, [0, 0, 0])[FP] += 1
                elif pred_score < threshold and gold_score > 0:
                    doc_counts.setdefault(label, [0, 0, 0])[FN] += 1
        elif pred_cats and gold_cats:
            pred_label = max(pred_cats.items(), key=lambda it: it[1])[0]
            gold_label = max(gold_cats.items(), key=lambda it: it[1])[0]
            if pred_label == gold_label:
                doc_counts.setdefault(pred_label, [0, 0, 0])[TP] += 1
            else:
                doc_counts.setdefault(gold_label, [0, 0, 0])[FN] += 1
                doc_counts.setdefault(pred_label, [0, 0, 0])[FP] += 1
        elif gold_cats:
            # spaCy 3.8 means this (its code unpacks a key here); a missing prediction is a miss.
            gold_label, gold_score = max(gold_cats.items(), key=lambda it: it[1])
            if gold_score > 0:
                doc_counts.setdefault(gold_label, [0, 0, 0])[FN] += 1
        elif pred_cats:
            pred_label = max(pred_cats.items(), key=lambda it: it[1])[0]
            doc_counts.setdefault(pred_label, [0, 0, 0])[FP] += 1
    return DocCounts(
        "cats",
        labels,
        _to_array(per_doc, labels),
        correct if exclusive and examples else None,
        multi_label,
    )


def _to_array(per_doc: List[Dict[str, List[int]]], labels: Sequence[str]) -> np.ndarray:
    index = {label: j for j, label in enumerate(labels)}
    counts = np.zeros((len(per_doc), len(labels), 3), dtype=np.float64)
    for i, doc_counts in enumerate(per_doc):
        for label, row in doc_counts.items():
            counts[i, index[label]] = row
    return counts


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray):
    precision = tp / (tp + fp + _EPS)
    recall = tp / (tp + fn + _EPS)
    fscore = 2 * (precision * recall) / (precision + recall + _EPS)
    return precision, recall, fscore


def scores_from_totals(
    doc_counts: DocCounts, totals: np.ndarray, correct_sums: Optional[np.ndarray], n_docs: np.ndarray
) -> Dict[ScoreKey, np.ndarray]:
    """Scores from summed counts, vectorised over resamples.

    ``totals`` has shape (R, n_labels, 3); ``correct_sums`` (R,) the number of correct
    documents and ``n_docs`` (R,) the number of documents per resample. Returns spaCy's
    score names mapped to arrays of shape (R,); per-type entity scores are keyed by tuples
    ``("ents_per_type", LABEL, "p")`` (and ``"r"``, ``"f"``).
    """
    tp, fp, fn = totals[..., TP], totals[..., FP], totals[..., FN]
    p, r, f = _prf(tp, fp, fn)
    micro_p, micro_r, micro_f = _prf(tp.sum(-1), fp.sum(-1), fn.sum(-1))
    scores: Dict[ScoreKey, np.ndarray] = {}
    if doc_counts.kind == "ents":
        scores.update(ents_p=micro_p, ents_r=micro_r, ents_f=micro_f)
        for j, label in enumerate(doc_counts.labels):
            scores[("ents_per_type", label, "p")] = p[..., j]
            scores[("ents_per_type", label, "r")] = r[..., j]
            scores[("ents_per_type", label, "f")] = f[..., j]
    else:
        n_labels = len(doc_counts.labels) + _EPS
        scores["cats_macro_f"] = f.sum(-1) / n_labels
        scores["cats_micro_f"] = micro_f
        if correct_sums is not None:
            scores["accuracy"] = correct_sums / np.maximum(n_docs, 1)
    return scores


def point_scores(doc_counts: DocCounts) -> Dict[ScoreKey, float]:
    """The scores over all documents (equal to spaCy's Scorer), flat names as in
    :func:`scores_from_totals`."""
    totals = doc_counts.counts.sum(0)[None]
    correct = None if doc_counts.correct is None else np.array([doc_counts.correct.sum()])
    scores = scores_from_totals(doc_counts, totals, correct, np.array([doc_counts.n_docs]))
    return {name: float(values[0]) for name, values in scores.items()}


def _weight_blocks(n_docs: int, n_resamples: int, seed: int):
    """Yield (R_block, n_docs) matrices: how often each document is drawn per resample."""
    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, _BLOCK_ELEMENTS // max(n_docs, 1)))
    done = 0
    while done < n_resamples:
        size = min(block, n_resamples - done)
        draws = rng.integers(0, n_docs, size=(size, n_docs))
        offsets = (np.arange(size) * n_docs)[:, None]
        weights = np.bincount((draws + offsets).ravel(), minlength=size * n_docs)
        yield weights.reshape(size, n_docs).astype(np.float64)
        done += size


def bootstrap_samples(doc_counts: DocCounts, n_resamples: int = 1000, seed: int = 0) -> Dict[ScoreKey, np.ndarray]:
    """Every score on ``n_resamples`` bootstrap resamples of the documents (drawn with
    replacement, as many as there are). Returns score name -> array (n_resamples,)."""
    n = doc_counts.n_docs
    flat = doc_counts.counts.reshape(n, -1)
    parts: List[Dict[ScoreKey, np.ndarray]] = []
    for weights in _weight_blocks(n, n_resamples, seed):
        totals = (weights @ flat).reshape(len(weights), len(doc_counts.labels), 3)
        correct = None if doc_counts.correct is None else weights @ doc_counts.correct
        parts.append(scores_from_totals(doc_counts, totals, correct, np.full(len(weights), n)))
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]} if parts else {}


def bootstrap_intervals(
    doc_counts: DocCounts, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> Dict[ScoreKey, Dict[str, float]]:
    """Percentile bootstrap intervals: score name -> {"value", "low", "high"}, where value
    is the score over all documents. Without documents or resamples, low and high are None."""
    values = point_scores(doc_counts)
    if doc_counts.n_docs == 0 or n_resamples <= 0:
        return {name: {"value": v, "low": None, "high": None} for name, v in values.items()}
    samples = bootstrap_samples(doc_counts, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    out = {}
    for name, value in values.items():
        low, high = np.quantile(samples[name], [alpha, 1.0 - alpha])
        out[name] = {"value": value, "low": float(low), "high": float(high)}
    return out


def paired_test(
    a: DocCounts,
    b: DocCounts,
    metric: str,
    n_resamples: int = 1000,
    seed: int = 0,
) -> float:
    """Two-sided approximate randomisation test over documents; returns the p-value.

    Under the null hypothesis the two systems are interchangeable, so each document's
    outputs are swapped between them with probability 1/2 and ``metric`` recomputed;
    p = (1 + #{|difference| >= observed |difference|}) / (1 + n_resamples). Both count
    sets must be over the same documents in the same order; labels are aligned on their
    union.
    """
    if a.n_docs != b.n_docs:
        raise ValueError(f"paired test needs the same documents: {a.n_docs} != {b.n_docs}")
    labels = sorted(set(a.labels) | set(b.labels))
    a, b = a.with_labels(labels), b.with_labels(labels)
    n = a.n_docs
    if n == 0:
        return 1.0
    shape = (len(labels), 3)
    flat_a, flat_b = a.counts.reshape(n, -1), b.counts.reshape(n, -1)
    diff = flat_b - flat_a
    has_correct = a.correct is not None and b.correct is not None
    correct_diff = (b.correct - a.correct) if has_correct else None

    def metric_of(doc_counts, totals, correct):
        count = np.full(len(totals), n)
        return scores_from_totals(doc_counts, totals.reshape(len(totals), *shape), correct, count)[metric]

    total_a, total_b = flat_a.sum(0)[None], flat_b.sum(0)[None]
    corr_a = np.array([a.correct.sum()]) if has_correct else None
    corr_b = np.array([b.correct.sum()]) if has_correct else None
    observed = abs(float(metric_of(a, total_a, corr_a)[0] - metric_of(b, total_b, corr_b)[0]))
    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, _BLOCK_ELEMENTS // n))
    extreme = 0
    done = 0
    while done < n_resamples:
        size = min(block, n_resamples - done)
        swap = rng.integers(0, 2, size=(size, n)).astype(np.float64)
        moved = swap @ diff
        moved_correct = swap @ correct_diff if has_correct else None
        new_a = metric_of(a, total_a + moved, corr_a + moved_correct if has_correct else None)
        new_b = metric_of(b, total_b - moved, corr_b - moved_correct if has_correct else None)
        # A small tolerance so floating-point noise does not break exact ties.
        extreme += int(np.sum(np.abs(new_a - new_b) >= observed - 1e-12))
        done += size
    return (1 + extreme) / (1 + n_resamples)


def nest_scores(flat: Dict[ScoreKey, object]) -> Dict[str, object]:
    """Turn ``("ents_per_type", LABEL, "p")`` keys into spaCy's nesting,
    ``{"ents_per_type": {LABEL: {"p": ..}}}``; other keys stay as they are."""
    out: Dict[str, object] = {}
    for name, value in flat.items():
        if isinstance(name, tuple):
            group, label, key = name
            out.setdefault(group, {}).setdefault(label, {})[key] = value
        else:
            out[name] = value
    return out


def primary_metric(task: str, multi_label: bool) -> str:
    """The score that ranks systems: accuracy for exclusive categories, macro-F for
    multi-label categories, overall entity F for NER."""
    if task == "ner":
        return "ents_f"
    return "cats_macro_f" if multi_label else "accuracy"
