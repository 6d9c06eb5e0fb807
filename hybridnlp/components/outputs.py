"""How predictors write their outputs onto a Doc (shared by every component).

Category predictors write ``doc.cats`` and ``doc._.hybrid_cats[source]``; span predictors
write ``doc.spans[source]`` with one confidence per span in ``attrs["scores"]`` and, when
asked to, ``doc.ents``. Keeping this in one place keeps the contract identical across the
classical, transformer and LLM components.
"""

from typing import Dict, Iterable, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span, SpanGroup
from spacy.util import filter_spans


def ensure_extensions() -> None:
    """Register the ``Doc._`` attributes hybridnlp writes (idempotent)."""
    if not Doc.has_extension("hybrid_cats"):
        Doc.set_extension("hybrid_cats", default=None)
    if not Doc.has_extension("hybrid_route"):
        Doc.set_extension("hybrid_route", default=None)


def write_cats(doc: Doc, source: str, scores: Dict[str, float], *, set_doc_cats: bool = True) -> None:
    """Store one source's category probabilities; also as ``doc.cats`` unless disabled."""
    ensure_extensions()
    scores = {label: float(p) for label, p in scores.items()}
    if doc._.hybrid_cats is None:
        doc._.hybrid_cats = {}
    doc._.hybrid_cats[source] = scores
    if set_doc_cats:
        doc.cats = dict(scores)


class ScoredSpans(list):
    """One doc's scored spans ``(start_token, end_token, label, confidence)``, and how sure
    the predictor is of the doc's whole labelling, the tokens it left outside entities
    included (``doc_confidence``, a probability; None when the predictor cannot say)."""

    def __init__(self, spans: Iterable[Tuple[int, int, str, float]] = (), doc_confidence: Optional[float] = None):
        super().__init__(spans)
        self.doc_confidence = doc_confidence


def write_spans(
    doc: Doc,
    source: str,
    spans: Sequence[Tuple[int, int, str, float]],
    *,
    set_ents: bool = False,
) -> SpanGroup:
    """Store scored spans ``(start_token, end_token, label, confidence)`` as a SpanGroup;
    the ``doc_confidence`` of :class:`ScoredSpans` goes to ``attrs["doc_confidence"]``.

    With ``set_ents`` the spans also become ``doc.ents`` (overlaps resolved the way spaCy's
    ``filter_spans`` does: longest first, then earliest).
    """
    span_objs = [Span(doc, start, end, label=label) for start, end, label, _ in spans]
    group = SpanGroup(doc, name=source, spans=span_objs)
    group.attrs["scores"] = [float(score) for *_, score in spans]
    doc_confidence = getattr(spans, "doc_confidence", None)
    if doc_confidence is not None:
        group.attrs["doc_confidence"] = float(doc_confidence)
    doc.spans[source] = group
    if set_ents:
        doc.set_ents(filter_spans(span_objs), default="outside")
    return group


def span_scores(doc: Doc, source: str) -> Iterable[Tuple[Span, float]]:
    """Pairs of (span, confidence) from ``doc.spans[source]``."""
    group = doc.spans[source]
    return zip(group, group.attrs.get("scores", [None] * len(group)))
