"""``cats_fusion``: fuse the category probabilities of several text classifiers.

Every category predictor in hybridnlp writes ``doc._.hybrid_cats[source]``. This component
pools the sources' probabilities log-linearly (a weighted geometric mean: the fused score
of a label is the weighted sum of the sources' log-probabilities, renormalised over the
labels for exclusive classes; for multi-label data the weighted sum of each label's
log-odds through a logistic) and writes the result to ``doc.cats`` and
``doc._.hybrid_cats[key]``. A source that is confident and often right gets more weight;
two sources that err differently (a TF-IDF model and a transformer) correct each other.
A label that a source never learned (missing from its scores) is scored by the sources that
know it: no opinion is not a probability of zero.

The weights (non-negative, summing to one) are chosen in ``initialize`` on held-out examples
(``dev_corpus``): the point of a grid over the weight simplex with the best accuracy
(exclusive) or micro-F1 at 0.5 (multi-label), ties going to the lower log-loss. Fitting them
on the sources' own training data would favour whichever source memorised it best.
"""

import itertools
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from ...errors import Errors
from ..outputs import write_cats
from ._base import FusionPipe, check_probability

_EPS = 1e-7


class CatsFusion(FusionPipe):
    """Fuses ``doc._.hybrid_cats[source]`` of several text classifiers; see the module docstring."""

    CONFIG_SETTINGS = ("key", "threshold")

    def __init__(
        self,
        vocab,
        name: str = "cats_fusion",
        *,
        sources: Sequence[str] = (),
        key: str = "hybrid",
        multi_label: bool = False,
        threshold: float = 0.5,
    ) -> None:
        threshold = check_probability(name, "threshold", threshold)
        super().__init__(vocab, name, sources=sources, key=key, multi_label=bool(multi_label), threshold=threshold)

    def weights_by_source(self) -> Dict[str, float]:
        self._require_initialized()
        return dict(zip(self.cfg["sources"], self.cfg["weights"]))

    # ---- prediction -------------------------------------------------------------------

    def _source_scores(self, docs: Sequence[Doc]) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """(n_sources, n_docs, n_labels) log-probabilities (exclusive) or log-odds
        (multi-label), and whether each source scored each label at all (a source trained
        without a label has no opinion on it, which is not a probability of 0)."""
        labels = self.cfg["labels"]
        out = numpy.zeros((len(self.cfg["sources"]), len(docs), len(labels)))
        known = numpy.ones(out.shape, dtype=bool)
        per_doc = [(doc._.hybrid_cats or {}) if Doc.has_extension("hybrid_cats") else {} for doc in docs]
        for i, source in enumerate(self.cfg["sources"]):
            for j, doc_cats in enumerate(per_doc):
                cats = doc_cats.get(source)
                if cats is None:
                    raise ValueError(Errors.E514.format(name=self.name, source=source))
                known[i, j] = [label in cats for label in labels]
                p = numpy.clip([float(cats.get(label, 0.0)) for label in labels], _EPS, 1.0 - _EPS)
                out[i, j] = numpy.log(p) - (numpy.log1p(-p) if self.cfg["multi_label"] else 0.0)
        return out, known

    def _fuse(self, source_scores: Tuple[numpy.ndarray, numpy.ndarray], weights: numpy.ndarray) -> numpy.ndarray:
        """(n_docs, n_labels) fused probabilities.

        A label's score is the weighted mean over the sources that scored it; with every
        label known to every source (the usual case) that is the plain weighted sum, the
        weights summing to one. A label no weighted source knows gets probability ~0.
        """
        scores, known = source_scores
        mass = numpy.tensordot(weights, known.astype("float64"), axes=1)
        z = numpy.tensordot(weights, numpy.where(known, scores, 0.0), axes=1)
        floor = numpy.log(_EPS) - (numpy.log1p(-_EPS) if self.cfg["multi_label"] else 0.0)
        z = numpy.where(mass > 0, z / numpy.where(mass > 0, mass, 1.0), floor)
        if self.cfg["multi_label"]:
            from scipy.special import expit

            return expit(z)
        z = z - z.max(axis=1, keepdims=True)
        e = numpy.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, docs: Iterable[Doc]) -> numpy.ndarray:
        """Fused probabilities, one row per doc, one column per label (``self.labels``)."""
        self._require_initialized()
        docs = list(docs)
        if not docs:
            return numpy.zeros((0, len(self.cfg["labels"])))
        return self._fuse(self._source_scores(docs), numpy.asarray(self.cfg["weights"]))

    def set_annotations(self, docs: Iterable[Doc], scores: numpy.ndarray) -> None:
        """Write ``doc.cats`` and ``doc._.hybrid_cats[key]``."""
        labels = self.cfg["labels"]
        for doc, row in zip(docs, scores):
            write_cats(doc, self.cfg["key"], {label: float(p) for label, p in zip(labels, row)})

    # ---- fitting ------------------------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        dev_corpus: Optional[Callable[[Language], Iterable[Example]]] = None,
    ) -> None:
        """Choose the weights on ``dev_corpus`` (a reader ``nlp -> examples``), or on
        ``get_examples()`` when none is given (then pass held-out examples yourself). The
        pipes before this one (trained already) annotate the examples' text first; with
        ``sources`` empty, every category predictor before this one is a source."""
        examples, docs = self._annotated_examples(get_examples, nlp, dev_corpus, _cats_source)
        labels = sorted({label for eg in examples for label in eg.reference.cats})
        if not labels or not docs:
            raise ValueError(Errors.E101.format(name=self.name, what="categories"))
        self.cfg["labels"] = labels
        gold = numpy.array([[float(eg.reference.cats.get(label, 0.0)) >= 0.5 for label in labels] for eg in examples])
        if not self.cfg["multi_label"]:
            keep = gold.sum(axis=1) == 1  # docs with exactly one gold class
            docs = [doc for doc, k in zip(docs, keep) if k]
            gold = gold[keep]
        if not len(docs):
            raise ValueError(Errors.E101.format(name=self.name, what="categories"))
        scores = self._source_scores(docs)
        best = None
        for weights in _simplex(len(self.cfg["sources"])):
            probs = self._fuse(scores, weights)
            quality, log_loss = self._quality(probs, gold)
            candidate = (quality, -log_loss, -float(numpy.abs(weights - weights.mean()).sum()))
            if best is None or candidate > best[0]:
                best = (candidate, weights)
        self.cfg["weights"] = [float(w) for w in best[1]]
        self.cfg["n_fit"] = len(docs)

    def _quality(self, probs: numpy.ndarray, gold: numpy.ndarray) -> Tuple[float, float]:
        """(accuracy or micro-F1, mean log-loss) of fused probabilities against gold."""
        p = numpy.clip(probs, _EPS, 1.0 - _EPS)
        if self.cfg["multi_label"]:
            predicted = probs >= self.cfg["threshold"]
            tp = float((predicted & gold).sum())
            f1 = 2 * tp / (predicted.sum() + gold.sum()) if predicted.sum() + gold.sum() else 1.0
            log_loss = -float(numpy.mean(gold * numpy.log(p) + (1 - gold) * numpy.log(1 - p)))
            return f1, log_loss
        accuracy = float(numpy.mean(probs.argmax(axis=1) == gold.argmax(axis=1)))
        return accuracy, -float(numpy.mean(numpy.log(p[gold])))

    # ---- scoring and serialization --------------------------------------------------

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        kwargs.setdefault("multi_label", self.cfg["multi_label"])
        kwargs.setdefault("threshold", self.cfg["threshold"])
        return Scorer.score_cats(examples, "cats", labels=self.labels, **kwargs)

    def _check_cfg(self, cfg: Dict[str, Any]) -> None:
        super()._check_cfg(cfg)
        if cfg["weights"] is not None and len(cfg["weights"]) != len(cfg["sources"]):
            raise ValueError(f"{len(cfg['weights'])} weights for {len(cfg['sources'])} sources")


def _simplex(n: int) -> Iterable[numpy.ndarray]:
    """Weight vectors on the simplex: steps of 0.05 for up to 3 sources, 0.1 beyond."""
    steps = 20 if n <= 3 else 10
    for combo in itertools.product(range(steps + 1), repeat=n - 1):
        if sum(combo) <= steps:
            yield numpy.array(list(combo) + [steps - sum(combo)], dtype="float64") / steps


def _cats_source(nlp: Language, name: str, pipe: Any) -> Optional[str]:
    """The ``doc._.hybrid_cats`` key a pipe writes, if it is a category predictor."""
    if "doc._.hybrid_cats" not in nlp.get_pipe_meta(name).assigns:
        return None
    source = getattr(pipe, "source", None) or getattr(pipe, "cfg", {}).get("source")
    return source if isinstance(source, str) and source else name


@Language.factory(
    "cats_fusion",
    assigns=["doc.cats", "doc._.hybrid_cats"],
    default_config={"sources": [], "key": "hybrid", "multi_label": False, "threshold": 0.5},
    default_score_weights={"cats_score": 1.0, "cats_micro_f": None, "cats_macro_f": None},
)
def make_cats_fusion(
    nlp: Language, name: str, sources: List[str], key: str, multi_label: bool, threshold: float
) -> CatsFusion:
    """Fuse the category probabilities of several text classifiers (``doc._.hybrid_cats``).

    sources: keys to read; empty: every category predictor before it.
    key: where the fused probabilities go in ``doc._.hybrid_cats`` (also ``doc.cats``).
    multi_label: independent labels (log-odds pooled per label) instead of exclusive classes.
    threshold: probability at which a label counts as predicted (multi-label scoring).
    """
    return CatsFusion(nlp.vocab, name, sources=sources, key=key, multi_label=multi_label, threshold=threshold)
