"""``cascade``: run the expensive components only on the documents the cheap ones are unsure of.

A cascade pipeline holds cheap components, enabled as usual (``tfidf_textcat``; or
``rule_ner`` + ``crf_ner``), and expensive ones (``transformer``, ``trf_textcat`` or
``trf_ner``, and a fusion of cheap and expensive outputs) that sit in the pipeline
**disabled**, so ``nlp.pipe`` does not run them. This component comes last. For each batch
it reads the cheap source's confidence in each doc, and the docs below ``route_threshold`` go
through the expensive components, whose output then owns ``doc.cats`` / ``doc.ents``; the
others keep the cheap answer. ``doc._.hybrid_route`` says which way each doc went
(``"cheap"`` or ``"expensive"``).

The confidence of a doc:

- category source (``doc._.hybrid_cats[source]``): the top probability for exclusive
  classes; for multi-label data that of the least certain label (``max(p, 1 - p)``);
- span source (``doc.spans[source]``): ``attrs["doc_confidence"]`` where the predictor
  gives one (``crf_ner``: the lowest marginal of any token's decoded tag, so a doc where
  the CRF hesitated goes on even if it proposed no entity), else its least confident span
  (1 for a doc without spans).

The threshold is chosen in ``initialize`` on held-out examples (``dev_corpus``): every
example goes through both routes, and the threshold kept is the lowest (the fewest docs
sent on) whose dev quality (accuracy for exclusive classes, micro-F1 at 0.5 for multi-label
data, entity micro-F1 for spans) reaches ``target_quality`` or, without one, comes within
``max_quality_loss`` of sending every doc on. The dev curve (share routed against quality)
is saved with the pipeline (:meth:`Cascade.dev_curve`). A ``route_threshold`` given in the config
is kept as it is.
"""

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples

from ...errors import Errors
from ..outputs import ensure_extensions
from ._base import JsonCfgPipe, run_pipes
from .cats_fusion import _cats_source
from .span_fusion import _span_source

CHEAP, EXPENSIVE = "cheap", "expensive"
CATS, SPANS = "cats", "spans"
# Points of the dev curve kept in the saved cfg.
CURVE_POINTS = 51


class Cascade(JsonCfgPipe):
    """Routes uncertain docs to the pipeline's disabled expensive components; see the module
    docstring."""

    CONFIG_SETTINGS = ("route_threshold", "fixed_threshold")

    def __init__(
        self,
        nlp: Language,
        name: str = "cascade",
        *,
        source: Optional[str] = None,
        expensive: Sequence[str] = (),
        multi_label: bool = False,
        route_threshold: Optional[float] = None,
        target_quality: Optional[float] = None,
        max_quality_loss: float = 0.0,
    ) -> None:
        ensure_extensions()  # doc._.hybrid_route exists before the first doc is routed
        self.vocab = nlp.vocab
        self.name = name
        # The pipeline whose disabled components this one calls (as spaCy's entity_ruler
        # keeps its nlp).
        self._nlp = nlp
        if source is not None and (not isinstance(source, str) or not source):
            raise ValueError(Errors.E104.format(name=name, key="source", value=source,
                                                hint="Give the doc._.hybrid_cats or doc.spans key of the cheap predictor, or null."))
        if route_threshold is not None:
            route_threshold = _check_number(name, "route_threshold", route_threshold, 0.0, 1.0,
                                            ", or null to choose it on the dev examples")
        if target_quality is not None:
            target_quality = _check_number(name, "target_quality", target_quality, 0.0, 1.0,
                                           ", or null to aim at the quality of sending every doc on")
        max_quality_loss = _check_number(name, "max_quality_loss", max_quality_loss, 0.0, 1.0)
        self.cfg: Dict[str, Any] = {
            "source": source,
            "kind": None,
            "expensive": list(expensive),
            "multi_label": bool(multi_label),
            "route_threshold": route_threshold,
            "fixed_threshold": route_threshold is not None,
            "target_quality": target_quality,
            "max_quality_loss": max_quality_loss,
            "labels": [],
            "dev": None,
            "curve": [],
        }

    @property
    def route_threshold(self) -> Optional[float]:
        """Docs whose confidence is below it go to the expensive components."""
        return self.cfg["route_threshold"]

    @property
    def is_initialized(self) -> bool:
        return self.cfg["route_threshold"] is not None and self.cfg["kind"] is not None and bool(self.cfg["expensive"])

    @property
    def _micro_f1(self) -> bool:
        """Whether quality is a micro-F1 (entities, multi-label data) rather than accuracy."""
        return self.cfg["kind"] == SPANS or self.cfg["multi_label"]

    def dev_curve(self) -> List[Dict[str, float]]:
        """The dev examples' trade-off, as fitted: for each threshold, the share of docs sent
        to the expensive components and the quality of the cascade."""
        return [dict(zip(("threshold", "routed", "quality"), point)) for point in self.cfg["curve"]]

    # ---- prediction -------------------------------------------------------------------

    def confidences(self, docs: Sequence[Doc]) -> numpy.ndarray:
        """The cheap source's confidence in each doc (see the module docstring)."""
        if self.cfg["kind"] == SPANS:
            return numpy.array([self._span_confidence(doc) for doc in docs], dtype="float64")
        return numpy.array([self._cats_confidence(doc) for doc in docs], dtype="float64")

    def _cats_confidence(self, doc: Doc) -> float:
        source = self.cfg["source"]
        cats = (doc._.hybrid_cats or {}).get(source) if Doc.has_extension("hybrid_cats") else None
        if cats is None:
            raise ValueError(Errors.E514.format(name=self.name, source=source))
        if not cats:
            return 0.0
        if self.cfg["multi_label"]:
            return min(max(p, 1.0 - p) for p in cats.values())
        return max(cats.values())

    def _span_confidence(self, doc: Doc) -> float:
        source = self.cfg["source"]
        if source not in doc.spans:
            raise ValueError(Errors.E554.format(name=self.name, source=source, setting="source"))
        group = doc.spans[source]
        confidence = group.attrs.get("doc_confidence")
        if confidence is None:
            confidence = min(group.attrs.get("scores") or [], default=1.0)
        return float(confidence)

    def predict(self, docs: Iterable[Doc]) -> numpy.ndarray:
        """Whether each doc goes to the expensive components (a boolean per doc)."""
        if not self.is_initialized:
            raise ValueError(Errors.E100.format(name=self.name))
        docs = list(docs)
        return self.confidences(docs) < self.cfg["route_threshold"]

    def set_annotations(self, docs: Iterable[Doc], routes: numpy.ndarray) -> None:
        """Run the expensive components on the routed docs; write ``doc._.hybrid_route``."""
        docs = list(docs)
        pipes = self._expensive_pipes()  # checked whether or not this batch sends any doc on
        hard = [doc for doc, routed in zip(docs, routes) if routed]
        if hard:
            run_pipes(pipes, hard)
        for doc, routed in zip(docs, routes):
            doc._.hybrid_route = EXPENSIVE if routed else CHEAP

    def _expensive_pipes(self, nlp: Optional[Language] = None, *, check_disabled: bool = True) -> List[Any]:
        """The expensive components, in pipeline order; E550 for one the pipeline lacks,
        E551 for one that is enabled (it would run on every doc before the cascade)."""
        nlp = nlp if nlp is not None else self._nlp
        names = list(nlp.component_names)
        for name in self.cfg["expensive"]:
            if name not in names:
                raise ValueError(Errors.E550.format(name=self.name, pipe=name, pipeline=names))
            if check_disabled and name not in nlp.disabled:
                raise ValueError(Errors.E551.format(name=self.name, pipe=name))
        return [nlp.get_pipe(name) for name in names if name in self.cfg["expensive"]]

    # ---- fitting ------------------------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        dev_corpus: Optional[Callable[[Language], Iterable[Example]]] = None,
    ) -> None:
        """Choose the threshold on ``dev_corpus`` (a reader ``nlp -> examples``), or on
        ``get_examples()`` when none is given (then pass held-out examples yourself). The
        components before this one (trained already) annotate the examples' text: the cheap
        ones, then the expensive ones on every example. With ``source`` unset, the last
        category predictor among the cheap components is the source (the last span
        predictor when there is none)."""
        validate_get_examples(get_examples, f"{type(self).__name__}.initialize")
        examples = list(dev_corpus(nlp) if dev_corpus is not None else get_examples())
        if not examples:
            raise ValueError(Errors.E101.format(name=self.name, what="categories or entities"))
        self.cfg["kind"] = None  # found again from the pipeline
        confidence, cheap_counts, expensive_counts = self._both_routes(examples, nlp)
        micro_f1 = self._micro_f1
        thresholds, routed, quality = _tradeoff(confidence, cheap_counts, expensive_counts, micro_f1)
        if not self.cfg["fixed_threshold"]:
            goal = self.cfg["target_quality"]
            if goal is None:
                goal = quality[-1] - self.cfg["max_quality_loss"]
            reaching = numpy.flatnonzero(quality >= goal - 1e-12)
            # Unreachable target: the best quality there is, with the fewest docs sent on.
            pick = int(reaching[0]) if len(reaching) else int(numpy.argmax(quality))
            self.cfg["route_threshold"] = float(thresholds[pick])
        sent = confidence < self.cfg["route_threshold"]
        chosen = numpy.where(sent[:, None], expensive_counts, cheap_counts).sum(axis=0, keepdims=True)
        self.cfg["dev"] = {
            "n": len(examples),
            "cheap": float(quality[0]),
            "expensive": float(quality[-1]),
            "cascade": float(_quality(chosen, len(examples), micro_f1)[0]),
            "routed": float(sent.mean()) if len(examples) else 0.0,
        }
        keep = numpy.unique(numpy.linspace(0, len(thresholds) - 1, CURVE_POINTS).round().astype(int))
        self.cfg["curve"] = [[float(thresholds[i]), float(routed[i]), float(quality[i])] for i in keep]

    def tradeoff(self, examples: Sequence[Example]) -> List[Dict[str, float]]:
        """On ``examples`` (say a test split), every threshold that routes a different set
        of docs: the share of docs it sends to the expensive components and the quality the
        cascade reaches (as :meth:`dev_curve`, unabridged). Runs both routes on every doc."""
        examples = list(examples)
        confidence, cheap_counts, expensive_counts = self._both_routes(examples, None)
        points = zip(*_tradeoff(confidence, cheap_counts, expensive_counts, self._micro_f1))
        return [dict(zip(("threshold", "routed", "quality"), map(float, point))) for point in points]

    def _both_routes(self, examples: List[Example], nlp: Optional[Language]
                     ) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """The cheap source's confidence in each example's doc, and the per-doc counts
        (see ``_counts``) of the pipeline's answer after the cheap components and after the
        expensive ones as well. Sets ``kind`` and ``source`` when not set yet."""
        nlp = nlp if nlp is not None else self._nlp
        if self.name not in nlp.component_names:
            raise ValueError(Errors.E552.format(name=self.name))
        if not self.cfg["expensive"]:
            raise ValueError(Errors.E553.format(name=self.name))
        # spaCy disables frozen components while it initializes the others: here the
        # pipeline order decides what is cheap (not expensive, before this component).
        expensive = self._expensive_pipes(nlp, check_disabled=False)
        names = list(nlp.component_names)
        cheap = [(name, nlp.get_pipe(name)) for name in names[: names.index(self.name)]
                 if name not in self.cfg["expensive"]]
        if self.cfg["kind"] is None:
            self.cfg["kind"], self.cfg["source"] = self._find_source(nlp, cheap)
            labels = sorted({label for eg in examples for label in eg.reference.cats})
            if self.cfg["kind"] == CATS and not labels:
                raise ValueError(Errors.E101.format(name=self.name, what="categories"))
            self.cfg["labels"] = labels
        docs = run_pipes([pipe for _, pipe in cheap], [eg.predicted.copy() for eg in examples],
                         desc=f"{self.name}: cheap")
        confidence = self.confidences(docs)
        cheap_counts = self._counts(examples, docs)
        docs = run_pipes(expensive, docs, desc=f"{self.name}: expensive")
        return confidence, cheap_counts, self._counts(examples, docs)

    def _find_source(self, nlp: Language, cheap: Sequence[Tuple[str, Any]]) -> Tuple[str, str]:
        """(kind, key) of the cheap source: the configured key, or the last category
        predictor among the cheap components (the last span predictor when there is none);
        E552 when no cheap component writes it."""
        cats = [s for name, pipe in cheap if (s := _cats_source(nlp, name, pipe))]
        spans = [s for name, pipe in cheap if (s := _span_source(nlp, name, pipe))]
        source = self.cfg["source"]
        if source is None:
            if cats or spans:
                return (CATS, cats[-1]) if cats else (SPANS, spans[-1])
        elif source in cats or source in spans:
            return (CATS if source in cats else SPANS), source
        raise ValueError(Errors.E552.format(name=self.name))

    def _counts(self, examples: Sequence[Example], docs: Sequence[Doc]) -> numpy.ndarray:
        """Per doc (n_docs, 3), of the pipeline's answer so far (``doc.cats``, ``doc.ents``),
        counted as spaCy's Scorer and the bench harness count: for exclusive classes (top
        label right, 1, 0); otherwise (true positives, false positives, false negatives) of
        the labels at 0.5, or of the entities."""
        from ...harness.metrics import cats_doc_counts, ner_doc_counts

        scored = [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]
        if self.cfg["kind"] == SPANS:  # one call per doc: the harness counts per sentence
            return numpy.array([ner_doc_counts([eg]).counts.sum(axis=(0, 1)) for eg in scored],
                               dtype="float64").reshape(len(scored), 3)
        counts = cats_doc_counts(scored, multi_label=self.cfg["multi_label"], labels=self.cfg["labels"],
                                 threshold=0.5)
        if self.cfg["multi_label"]:
            return counts.counts.sum(axis=1).astype("float64")
        correct = numpy.asarray(counts.correct, dtype="float64")
        return numpy.stack([correct, numpy.ones_like(correct), numpy.zeros_like(correct)], axis=1)

    # ---- scoring and serialization --------------------------------------------------

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """spaCy's scores of the final ``doc.cats`` (or ``doc.ents``), and the share of docs
        sent to the expensive components (``cascade_routed``)."""
        examples = list(examples)
        if self.cfg["kind"] == SPANS:
            scores = get_ner_prf(examples)
        else:
            kwargs.setdefault("multi_label", self.cfg["multi_label"])
            scores = Scorer.score_cats(examples, "cats", labels=self.cfg["labels"], **kwargs)
        routes = [eg.predicted._.hybrid_route for eg in examples] if Doc.has_extension("hybrid_route") else []
        scores["cascade_routed"] = (sum(r == EXPENSIVE for r in routes) / len(routes)) if routes else None
        return scores

    def _check_cfg(self, cfg: Dict[str, Any]) -> None:
        if cfg["kind"] not in (None, CATS, SPANS):
            raise ValueError(f"unknown kind {cfg['kind']!r}")
        if cfg["route_threshold"] is not None:
            cfg["route_threshold"] = float(cfg["route_threshold"])
        if not isinstance(cfg["expensive"], list) or not all(isinstance(n, str) for n in cfg["expensive"]):
            raise ValueError(f"'expensive' must be a list of component names, not {cfg['expensive']!r}")
        cfg["curve"] = [[float(v) for v in point] for point in cfg["curve"]]


def _tradeoff(confidence: numpy.ndarray, cheap: numpy.ndarray, expensive: numpy.ndarray,
              micro_f1: bool) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """For every threshold that routes a different set of docs (ascending, from sending none
    to sending all): the threshold, the share of docs routed and the cascade's quality.

    Docs are sent on when their confidence is below the threshold; thresholds fall midway
    between consecutive distinct confidences, so docs of equal confidence go the same way.
    """
    order = numpy.argsort(confidence, kind="stable")
    conf = confidence[order]
    # Routing the k least confident docs swaps their cheap counts for expensive ones.
    gain = numpy.vstack([numpy.zeros((1, 3)), numpy.cumsum(expensive[order] - cheap[order], axis=0)])
    totals = cheap.sum(axis=0) + gain
    n = len(conf)
    ks = numpy.concatenate([[0], numpy.flatnonzero(numpy.diff(conf) > 0) + 1, [n]]) if n else numpy.array([0])
    ks = numpy.unique(ks)
    thresholds = numpy.empty(len(ks))
    for j, k in enumerate(ks):
        if k == 0:
            thresholds[j] = 0.0
        elif k == n:
            thresholds[j] = numpy.nextafter(conf[-1], numpy.inf)
        else:
            thresholds[j] = (conf[k - 1] + conf[k]) / 2
    return thresholds, ks / max(n, 1), _quality(totals[ks], n, micro_f1)


def _quality(totals: numpy.ndarray, n: int, micro_f1: bool) -> numpy.ndarray:
    """Accuracy (rows of summed (right, 1, 0) counts over ``n`` docs) or micro-F1 (rows of
    summed (tp, fp, fn)); a micro-F1 with nothing to find and nothing found is 1."""
    if not micro_f1:
        return totals[:, 0] / max(n, 1)
    denominator = 2 * totals[:, 0] + totals[:, 1] + totals[:, 2]
    return numpy.where(denominator > 0, 2 * totals[:, 0] / numpy.where(denominator > 0, denominator, 1), 1.0)


def _check_number(name: str, key: str, value: Any, low: float, high: float, hint: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(Errors.E104.format(name=name, key=key, value=value,
                                            hint=f"Use a number from {low:g} to {high:g}{hint}."))
    return float(value)


@Language.factory(
    "cascade",
    assigns=["doc.cats", "doc.ents", "doc._.hybrid_route"],
    default_config={
        "source": None,
        "expensive": [],
        "multi_label": False,
        "route_threshold": None,
        "target_quality": None,
        "max_quality_loss": 0.0,
    },
    default_score_weights={"cats_score": 1.0, "cats_micro_f": None, "cats_macro_f": None, "cascade_routed": None},
)
def make_cascade(
    nlp: Language,
    name: str,
    source: Optional[str],
    expensive: List[str],
    multi_label: bool,
    route_threshold: Optional[float],
    target_quality: Optional[float],
    max_quality_loss: float,
) -> Cascade:
    """Send the docs a cheap predictor is unsure of through the pipeline's disabled
    expensive components.

    source: the ``doc._.hybrid_cats`` (or ``doc.spans``) key of the cheap predictor; null:
        the last category predictor before the cascade that is not expensive (or the last
        span predictor when there is none).
    expensive: names of the components to run on uncertain docs (disabled in the pipeline,
        so that nothing else runs them).
    multi_label: the classes are independent labels (confidence of the least certain one);
        not used with a span source.
    route_threshold: docs whose confidence is below it are sent on; null: choose it on dev.
    target_quality: the dev accuracy (micro-F1 for multi-label data and entities) to reach
        with the fewest docs sent on; null: the quality of sending every doc on, less ``max_quality_loss``.
    """
    return Cascade(nlp, name, source=source, expensive=expensive, multi_label=multi_label,
                   route_threshold=route_threshold, target_quality=target_quality, max_quality_loss=max_quality_loss)
