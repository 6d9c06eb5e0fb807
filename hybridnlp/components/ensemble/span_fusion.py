"""``span_fusion``: fuse the scored spans of several entity recognizers into final entities.

Every span predictor in hybridnlp writes ``doc.spans[source]`` with one confidence per span.
This component reads those sources, scores every candidate span (any span a source proposed)
with a logistic regression over the sources' confidences, and keeps the most probable
non-overlapping candidates above a threshold (by default the one with the best
cross-validated F1 on the dev examples). It writes ``doc.spans[key]`` (default
``"hybrid"``) with the fused probability in ``attrs["scores"]`` and, per span, the sources
that proposed it in ``attrs["sources"]`` (provenance is part of the output), and ``doc.ents``.

The weights are fitted in ``initialize`` on held-out examples (``dev_corpus``), never on the
sources' own training data: a CRF or a gazetteer is nearly always right on the text it was
fitted on, and fusion weights learned there would trust it blindly. The features of a
candidate with label L are, for each source: its confidence (0 when it did not propose the
span), its log-odds (the scale on which a logistic regression multiplies the evidence of
independent sources) and whether it proposed it; each source's confidence for L separately (sources differ
by type: a CRF may be the better MISC tagger, the transformer the better ORG one); a bias per
label; and the share of sources that agree. A label no dev span had gets the shared features
only. The weights are plain numbers saved as JSON.
"""

import math
from functools import partial
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from ...errors import Errors
from ..classical.rule_ner import rule_ner_score
from ..outputs import write_spans
from ._base import FusionPipe, check_probability

# Confidences are clipped to [_CLIP, 1 - _CLIP] before taking log-odds.
_CLIP = 1e-4
# (start, end, label) -> {source: confidence}
Candidates = Dict[Tuple[int, int, str], Dict[str, float]]
FusedSpan = Tuple[int, int, str, float, List[str]]


class SpanFusion(FusionPipe):
    """Fuses ``doc.spans[source]`` of several span predictors; see the module docstring."""

    CONFIG_SETTINGS = ("key", "set_ents", "threshold", "fixed_threshold")

    def __init__(
        self,
        vocab,
        name: str = "span_fusion",
        *,
        sources: Sequence[str] = (),
        key: str = "hybrid",
        set_ents: bool = True,
        threshold: Optional[float] = None,
        regularization: float = 1.0,
    ) -> None:
        if threshold is not None:
            threshold = check_probability(name, "threshold", threshold, ", or null to choose it on the dev examples")
        if isinstance(regularization, bool) or not (isinstance(regularization, (int, float)) and regularization > 0):
            raise ValueError(Errors.E104.format(name=name, key="regularization", value=regularization,
                                                hint="Use a positive number (scikit-learn's C)."))
        super().__init__(vocab, name, sources=sources, key=key, set_ents=bool(set_ents), threshold=threshold,
                         fixed_threshold=threshold is not None, regularization=float(regularization), bias=None)
        self.scorer = partial(rule_ner_score, source=key, set_ents=bool(set_ents))

    def weights_by_feature(self) -> Dict[str, float]:
        """The fitted weights by feature name (for inspection), plus ``"bias"``."""
        self._require_initialized()
        out = dict(zip(_feature_names(self.cfg["sources"], self.cfg["labels"]), self.cfg["weights"]))
        out["bias"] = self.cfg["bias"]
        return out

    # ---- features ---------------------------------------------------------------------

    def _candidates(self, doc: Doc) -> Candidates:
        """Every span some source proposed, with each proposing source's confidence."""
        found: Candidates = {}
        for source in self.cfg["sources"]:
            if source not in doc.spans:
                # Fitted with every source's vote: fusing fewer would be worse than either alone.
                raise ValueError(Errors.E554.format(name=self.name, source=source, setting="sources"))
            group = doc.spans[source]
            scores = group.attrs.get("scores")
            if scores is None or len(scores) != len(group):
                raise ValueError(Errors.E513.format(name=self.name, source=source))
            for span, score in zip(group, scores):
                votes = found.setdefault((span.start, span.end, span.label_), {})
                votes[source] = max(float(score), votes.get(source, 0.0))
        return found

    def _featurize(self, candidates: Candidates) -> numpy.ndarray:
        sources, labels = self.cfg["sources"], self.cfg["labels"]
        n_s, n_l = len(sources), len(labels)
        label_index = {label: j for j, label in enumerate(labels)}
        X = numpy.zeros((len(candidates), len(_feature_names(sources, labels))), dtype="float64")
        for row, ((_, _, label), votes) in enumerate(candidates.items()):
            j = label_index.get(label)
            for i, source in enumerate(sources):
                if source in votes:
                    conf = votes[source]
                    X[row, i] = conf
                    X[row, n_s + i] = 1.0
                    clipped = min(max(conf, _CLIP), 1.0 - _CLIP)
                    X[row, 2 * n_s + i] = math.log(clipped / (1.0 - clipped))
                    if j is not None:
                        X[row, 3 * n_s + i * n_l + j] = conf
            if j is not None:
                X[row, 3 * n_s + n_s * n_l + j] = 1.0
            X[row, -1] = len(votes) / max(n_s, 1)
        return X

    def _probabilities(self, candidates: Candidates) -> numpy.ndarray:
        if not candidates:
            return numpy.zeros(0)
        from scipy.special import expit  # a logistic that does not overflow

        return expit(self._featurize(candidates) @ numpy.asarray(self.cfg["weights"]) + self.cfg["bias"])

    # ---- prediction -------------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[List[FusedSpan]]:
        """Fused spans ``(start, end, label, probability, sources)`` per doc; docs untouched."""
        self._require_initialized()
        out = []
        for doc in docs:
            candidates = self._candidates(doc)
            keys = list(candidates)
            probs = self._probabilities(candidates)
            chosen = _select(keys, probs, self.cfg["threshold"])
            out.append([(*keys[i], float(probs[i]), [s for s in self.cfg["sources"] if s in candidates[keys[i]]])
                        for i in chosen])
        return out

    def set_annotations(self, docs: Iterable[Doc], fused: List[List[FusedSpan]]) -> None:
        """Write ``doc.spans[key]`` (``attrs["scores"]``, ``attrs["sources"]``) and ``doc.ents``."""
        for doc, spans in zip(docs, fused):
            group = write_spans(doc, self.cfg["key"], [s[:4] for s in spans], set_ents=self.cfg["set_ents"])
            group.attrs["sources"] = [list(s[4]) for s in spans]

    # ---- fitting ------------------------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        dev_corpus: Optional[Callable[[Language], Iterable[Example]]] = None,
    ) -> None:
        """Fit the fusion weights on ``dev_corpus`` (a reader ``nlp -> examples``), or on
        ``get_examples()`` when none is given (then pass held-out examples yourself).

        The pipes before this one (trained already) annotate the examples' text first. With
        ``sources`` empty, every span predictor before this one is a source.
        """
        examples, docs = self._annotated_examples(get_examples, nlp, dev_corpus, _span_source)
        per_doc = [self._candidates(doc) for doc in docs]
        labels = sorted({label for cands in per_doc for (_, _, label) in cands})
        self.cfg["labels"] = labels
        rows, targets, golds = [], [], []
        for eg, cands in zip(examples, per_doc):
            gold = {(s.start, s.end, s.label_) for s in eg.get_aligned_spans_y2x(eg.reference.ents)}
            golds.append(gold)
            rows.append(self._featurize(cands))
            targets.append(numpy.asarray([key in gold for key in cands], dtype=bool))
        y = numpy.concatenate(targets) if targets else numpy.zeros(0, dtype=bool)
        if len(y) == 0 or y.all() or not y.any():
            raise ValueError(Errors.E512.format(name=self.name, n=len(y), n_right=int(y.sum())))
        C = self.cfg["regularization"]
        if not self.cfg["fixed_threshold"]:
            self.cfg["threshold"] = _best_threshold(per_doc, rows, targets, golds, C)
        weights, bias = _fit_logistic(numpy.vstack(rows), y, C)
        self.cfg["weights"], self.cfg["bias"] = weights, bias
        self.cfg["n_fit"] = len(examples)

    # ---- serialization ------------------------------------------------------------------

    def _check_cfg(self, cfg: Dict[str, Any]) -> None:
        super()._check_cfg(cfg)
        if cfg["weights"] is not None:
            expected = len(_feature_names(cfg["sources"], cfg["labels"]))
            if len(cfg["weights"]) != expected or not isinstance(cfg["bias"], (int, float)):
                raise ValueError(f"{len(cfg['weights'])} weights for {expected} features")

    def _after_load(self) -> None:
        self.scorer = partial(rule_ner_score, source=self.cfg["key"], set_ents=self.cfg["set_ents"])


def _feature_names(sources: Sequence[str], labels: Sequence[str]) -> List[str]:
    """The features of a candidate span, in the column order of ``_featurize``."""
    names = [f"{s}:confidence" for s in sources] + [f"{s}:proposed" for s in sources]
    names += [f"{s}:log_odds" for s in sources]
    names += [f"{s}:confidence:{label}" for s in sources for label in labels]
    names += [f"label:{label}" for label in labels]
    names.append("agreement")
    return names


def _select(keys: Sequence[Tuple[int, int, str]], probs: numpy.ndarray, threshold: float) -> List[int]:
    """Indices of the candidates kept: most probable first (ties: longer, then earlier),
    at least ``threshold``, never overlapping one kept before; in document order."""
    order = sorted(range(len(keys)), key=lambda i: (-probs[i], keys[i][0] - keys[i][1], keys[i][0]))
    taken: set = set()
    chosen = []
    for i in order:
        if probs[i] < threshold:
            break
        tokens = range(keys[i][0], keys[i][1])
        if any(t in taken for t in tokens):
            continue
        taken.update(tokens)
        chosen.append(i)
    return sorted(chosen, key=lambda i: keys[i])


def _fit_logistic(X: numpy.ndarray, y: numpy.ndarray, C: float) -> Tuple[List[float], float]:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=2000).fit(X, y)
    return [float(w) for w in clf.coef_[0]], float(clf.intercept_[0])


# Folds for choosing the threshold, and the thresholds tried.
THRESHOLD_FOLDS = 5
THRESHOLD_GRID = [round(0.05 * k, 2) for k in range(1, 19)]


def _best_threshold(per_doc: List[Candidates], rows: List[numpy.ndarray], targets: List[numpy.ndarray],
                    golds: List[set], C: float) -> float:
    """The threshold with the best entity F1 on the examples, from out-of-fold probabilities
    (each fold scored by weights fitted on the others, so the choice is not flattered by
    probabilities fitted on the very spans they score). A probability is worth keeping when
    it exceeds about half the F1 that can be reached, so a corpus where the sources are
    often wrong (WNUT-17) needs a lower threshold than one where they agree (CoNLL-2003)."""
    from scipy.special import expit

    n = len(per_doc)
    k = min(THRESHOLD_FOLDS, n)
    fold_of = [i * k // n for i in range(n)]  # contiguous: a story's sentences stay together
    probs: List[Optional[numpy.ndarray]] = [None] * n
    for fold in range(k):
        train = [i for i in range(n) if fold_of[i] != fold and len(targets[i])]
        y = numpy.concatenate([targets[i] for i in train]) if train else numpy.zeros(0, dtype=bool)
        if y.all() or not y.any():
            return 0.5  # too few examples to cross-validate: the calibrated midpoint
        weights, bias = _fit_logistic(numpy.vstack([rows[i] for i in train]), y, C)
        for i in range(n):
            if fold_of[i] == fold:
                probs[i] = expit(rows[i] @ numpy.asarray(weights) + bias)
    n_gold = sum(len(g) for g in golds)
    best = (-1.0, 0.0, 0.5)
    for threshold in THRESHOLD_GRID:
        tp = n_pred = 0
        for cands, p, gold in zip(per_doc, probs, golds):
            keys = list(cands)
            chosen = _select(keys, p, threshold)
            n_pred += len(chosen)
            tp += sum(keys[i] in gold for i in chosen)
        f = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
        best = max(best, (f, -abs(threshold - 0.5), threshold))
    return best[2]


def _span_source(nlp: Language, name: str, pipe: Any) -> Optional[str]:
    """The ``doc.spans`` key a pipe writes its scored spans under, if it is a span predictor."""
    source = getattr(pipe, "source", None)
    if not isinstance(source, str) or "doc.spans" not in nlp.get_pipe_meta(name).assigns:
        return None
    return source


@Language.factory(
    "span_fusion",
    assigns=["doc.ents", "doc.spans"],
    default_config={"sources": [], "key": "hybrid", "set_ents": True, "threshold": None, "regularization": 1.0},
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_span_fusion(
    nlp: Language,
    name: str,
    sources: List[str],
    key: str,
    set_ents: bool,
    threshold: Optional[float],
    regularization: float,
) -> SpanFusion:
    """Fuse the scored spans of several entity recognizers (``doc.spans[source]``).

    sources: span keys to read (component sources); empty: every span predictor before it.
    key: where the fused spans go (``doc.spans[key]``, with ``attrs["scores"]`` and
        ``attrs["sources"]``).
    set_ents: also write the fused spans to ``doc.ents``.
    threshold: fused probability a candidate span needs to be kept; null: the one with the
        best cross-validated F1 on the dev examples (0.05 to 0.9).
    regularization: inverse regularisation strength of the logistic regression (C).
    """
    return SpanFusion(nlp.vocab, name, sources=sources, key=key, set_ents=set_ents,
                      threshold=threshold, regularization=regularization)
