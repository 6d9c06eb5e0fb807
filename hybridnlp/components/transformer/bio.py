"""BIO tag sets, gold-tag conversion and constrained decoding with span confidences.

Pure numpy, used by the transformer NER head (``ner.py``): the head predicts one probability
distribution over BIO tags per token; this module turns those into entity spans, each with
a confidence.
"""

from typing import List, Optional, Sequence, Tuple

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
    n = len(tags)
    allowed = numpy.ones((n, n), dtype=bool)
    for cur, tag in enumerate(tags):
        if tag.startswith("I-"):
            label = tag[2:]
            allowed[:, cur] = False
            allowed[tags.index(f"B-{label}"), cur] = True
            allowed[cur, cur] = True
    return allowed


def viterbi_bio(probs: numpy.ndarray, tags: Sequence[str]) -> List[int]:
    """The most probable valid BIO tag sequence (indices into ``tags``) for one document.

    ``probs`` is ``(n_tokens, n_tags)``; a sequence is valid when every ``I-X`` follows
    ``B-X`` or ``I-X`` (so it never starts the document or follows ``O``).
    """
    n_tokens = probs.shape[0]
    if n_tokens == 0:
        return []
    logp = numpy.log(numpy.clip(probs.astype("float64"), _EPS, 1.0))
    allowed = allowed_transitions(tags)
    trans = numpy.where(allowed, 0.0, -numpy.inf)
    start_ok = numpy.array([not tag.startswith("I-") for tag in tags])
    score = numpy.where(start_ok, logp[0], -numpy.inf)
    backpointers = numpy.zeros((n_tokens, len(tags)), dtype="int32")
    for t in range(1, n_tokens):
        candidates = score[:, None] + trans  # [prev, cur]
        backpointers[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + logp[t]
    best = [int(score.argmax())]
    for t in range(n_tokens - 1, 0, -1):
        best.append(int(backpointers[t, best[-1]]))
    return best[::-1]


def decode_bio(probs: numpy.ndarray, tags: Sequence[str]) -> List[Tuple[int, int, str, float]]:
    """Entity spans ``(start, end, label, confidence)`` from per-token tag probabilities.

    The tag sequence is the constrained Viterbi path. A span's confidence is the probability,
    under the model's per-token distributions, of exactly that span: ``P(B-X at start)`` times
    ``P(I-X)`` for each inside token times ``1 - P(I-X)`` for the token after the end (the
    entity stops there). It falls when any token is uncertain or the boundary is unclear.
    """
    path = viterbi_bio(probs, tags)
    spans: List[Tuple[int, int, str, float]] = []
    n_tokens = len(path)
    t = 0
    while t < n_tokens:
        tag = tags[path[t]]
        if not tag.startswith("B-"):
            t += 1
            continue
        label = tag[2:]
        inside = tags.index(f"I-{label}")
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
