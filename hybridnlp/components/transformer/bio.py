"""BIO tag sets, gold-tag conversion and constrained decoding with span confidences.

Pure numpy, used by the transformer NER head (``ner.py``): the head predicts one probability
distribution over BIO tags per token; this module turns those into entity spans, each with
a confidence.
"""

from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy

OUTSIDE = "O"
# Probabilities are clipped before taking logs so a tag the model rules out stays reachable
# when the constraints leave nothing better (and log(0) never appears).
_EPS = 1e-12


def bio_tags(labels: Sequence[str]) -> List[str]:
    """The tag set for ``labels``: ``["O", "B-L1", "I-L1", "B-L2", ...]`` (column order of scores)."""
    tags = [OUTSIDE]
    for label in labels:
        tags.extend((f"B-{label}", f"I-{label}"))
    return tags


def biluo_to_bio(tag: Optional[str]) -> Optional[str]:
    """Map a BILUO tag from ``Example.get_aligned_ner`` to BIO; ``None`` stays unknown.

    ``U-X`` starts an entity (``B-X``) and ``L-X`` continues one (``I-X``); ``"-"`` and the
    empty string mean "missing" in spaCy and become ``None``.
    """
    if tag is None or tag in ("", "-"):
        return None
    if tag == OUTSIDE:
        return OUTSIDE
    prefix, _, label = tag.partition("-")
    if prefix in ("B", "U"):
        return f"B-{label}"
    if prefix in ("I", "L"):
        return f"I-{label}"
    return None


def allowed_transitions(tags: Sequence[str]) -> numpy.ndarray:
    """Boolean matrix ``[prev, cur]``: ``I-X`` may only follow ``B-X`` or ``I-X``."""
    return _constraints(tuple(tags))[0].copy()


@lru_cache(maxsize=32)
def _constraints(tags: Tuple[str, ...]) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """``(allowed, transition log-scores, start log-scores)`` for a tag set (cached: a
    component decodes every batch with the same tags)."""
    n = len(tags)
    allowed = numpy.ones((n, n), dtype=bool)
    for cur, tag in enumerate(tags):
        if tag.startswith("I-"):
            label = tag[2:]
            allowed[:, cur] = False
            allowed[tags.index(f"B-{label}"), cur] = True
            allowed[cur, cur] = True
    trans = numpy.where(allowed, 0.0, -numpy.inf)
    start = numpy.array([-numpy.inf if tag.startswith("I-") else 0.0 for tag in tags])
    for array in (allowed, trans, start):
        array.flags.writeable = False
    return allowed, trans, start


def viterbi_bio(probs: numpy.ndarray, tags: Sequence[str]) -> List[int]:
    """The most probable valid BIO tag sequence (indices into ``tags``) for one document.

    ``probs`` is ``(n_tokens, n_tags)``; a sequence is valid when every ``I-X`` follows
    ``B-X`` or ``I-X`` (so it never starts the document or follows ``O``).
    """
    return viterbi_bio_batch([probs], tags)[0]


def viterbi_bio_batch(batch: Sequence[numpy.ndarray], tags: Sequence[str]) -> List[List[int]]:
    """``viterbi_bio`` for each document of a batch, run over the whole batch at once.

    The documents are sorted by length and padded, so each step of the dynamic programme is
    one array operation over the documents still running (the ones longer than the step)
    instead of one Python loop per document. Same paths as a per-document Viterbi pass,
    ties included (both take the first best tag).
    """
    lengths = numpy.array([probs.shape[0] for probs in batch], dtype="int64")
    paths: List[List[int]] = [[] for _ in batch]
    if not lengths.any():
        return paths
    _, trans, start = _constraints(tuple(tags))
    n_tags = len(tags)
    order = numpy.argsort(-lengths, kind="stable")
    lengths = lengths[order]
    n_docs, n_steps = int(numpy.count_nonzero(lengths)), int(lengths[0])
    lengths = lengths[:n_docs]
    # Padded log-probabilities, longest document first: row-major filling of the mask puts
    # the concatenated documents in place.
    logp = numpy.zeros((n_docs, n_steps, n_tags), dtype="float64")
    present = numpy.arange(n_steps) < lengths[:, None]
    rows = numpy.concatenate([batch[i] for i in order[:n_docs]]).astype("float64", copy=False)
    logp[present] = numpy.log(numpy.clip(rows, _EPS, 1.0))
    # Documents still running at each step: a prefix of the sorted batch.
    running = (lengths[None, :] > numpy.arange(n_steps)[:, None]).sum(axis=1)
    score = logp[:, 0] + start
    backpointers = numpy.zeros((n_docs, n_steps, n_tags), dtype="int32")
    for t in range(1, n_steps):
        k = running[t]
        candidates = score[:k, :, None] + trans  # [doc, prev, cur]
        best_prev = candidates.argmax(axis=1)
        backpointers[:k, t] = best_prev
        score[:k] = numpy.take_along_axis(candidates, best_prev[:, None, :], axis=1)[:, 0] + logp[:k, t]
    best = numpy.zeros((n_docs, n_steps), dtype="int64")
    best[numpy.arange(n_docs), lengths - 1] = score.argmax(axis=1)
    for t in range(n_steps - 1, 0, -1):
        k = running[t]
        best[:k, t - 1] = backpointers[numpy.arange(k), t, best[:k, t]]
    for rank in range(n_docs):
        paths[order[rank]] = best[rank, : lengths[rank]].tolist()
    return paths


def decode_bio(probs: numpy.ndarray, tags: Sequence[str]) -> List[Tuple[int, int, str, float]]:
    """Entity spans ``(start, end, label, confidence)`` from per-token tag probabilities.

    The tag sequence is the constrained Viterbi path. A span's confidence is the probability,
    under the model's per-token distributions, of exactly that span: ``P(B-X at start)`` times
    ``P(I-X)`` for each inside token times ``1 - P(I-X)`` for the token after the end (the
    entity stops there). It falls when any token is uncertain or the boundary is unclear.
    """
    return decode_bio_batch([probs], tags)[0]


def decode_bio_batch(
    batch: Sequence[numpy.ndarray], tags: Sequence[str]
) -> List[List[Tuple[int, int, str, float]]]:
    """``decode_bio`` for each document of a batch (one batched Viterbi pass)."""
    inside_of = {tag[2:]: i for i, tag in enumerate(tags) if tag.startswith("I-")}
    return [
        _spans_on_path(probs, path, tags, inside_of)
        for probs, path in zip(batch, viterbi_bio_batch(batch, tags))
    ]


def _spans_on_path(
    probs: numpy.ndarray, path: List[int], tags: Sequence[str], inside_of: Dict[str, int]
) -> List[Tuple[int, int, str, float]]:
    spans: List[Tuple[int, int, str, float]] = []
    n_tokens = len(path)
    t = 0
    while t < n_tokens:
        tag = tags[path[t]]
        if not tag.startswith("B-"):
            t += 1
            continue
        label = tag[2:]
        inside = inside_of[label]
        start = t
        confidence = float(probs[t, path[t]])
        t += 1
        while t < n_tokens and path[t] == inside:
            confidence *= float(probs[t, inside])
            t += 1
        if t < n_tokens:
            confidence *= 1.0 - float(probs[t, inside])
        spans.append((start, t, label, confidence))
    return spans
