"""Text classification head on the shared transformer: ``trf_textcat`` and
``trf_textcat_multilabel``.

Both are spaCy's own text categorizers (``textcat`` / ``textcat_multilabel``: training by
``nlp.update``, label inference in ``initialize``, thinc serialization, the textcat scorers)
with these differences:

* the default model mean-pools the transformer's token vectors (``hybridnlp.TextCatReduce.v1``,
  spaCy's ``TextCatReduce.v1`` that also takes empty docs with max/first/last pooling, over
  ``hybridnlp.TransformerListener.v1``). MiniLM was trained for mean-pooled sentence
  embeddings, and a reduce model has no second path to the transformer, so it avoids the
  listener-order gotcha of TextCatEnsemble when a pipeline shares one transformer;
* outputs follow hybridnlp's contract: ``doc.cats`` and ``doc._.hybrid_cats[source]``;
* ``trf_textcat`` can train for equally likely classes (``logit_adjustment``) when the
  training data over-represents some;
* an empty doc gets the model's answer for a doc without evidence (zero token vectors, i.e.
  the learned prior), the same whether it is predicted alone or in a batch; spaCy returns
  zeros for a batch of empty docs only, which are not probabilities.

A component predicting before it is initialized raises E100; one whose transformer is missing
from the pipeline raises E503 at initialization.
"""

from typing import Callable, Iterable, List, Optional

import numpy
from spacy.language import Language
from spacy.pipeline.textcat import TextCategorizer
from spacy.pipeline.textcat_multilabel import MultiLabel_TextCategorizer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer

from ...errors import Errors
from .._pipe import ConfigSettingsOnLoad
from ..outputs import write_cats
from ._probe import fit_linear_probe, upstream_transformer
from ._update import check_learn_rate_scale, finish_update_scaled

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "hybridnlp.TextCatReduce.v1"
exclusive_classes = true
use_reduce_first = false
use_reduce_last = false
use_reduce_max = false
use_reduce_mean = true
nO = null

[model.tok2vec]
@architectures = "hybridnlp.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[model.tok2vec.pooling]
@layers = "reduce_mean.v1"
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]
DEFAULT_MULTILABEL_MODEL = Config().from_str(
    DEFAULT_MODEL_CONFIG.replace("exclusive_classes = true", "exclusive_classes = false")
)["model"]

SCORE_WEIGHTS = {
    "cats_score": 1.0,
    "cats_score_desc": None,
    "cats_micro_p": None,
    "cats_micro_r": None,
    "cats_micro_f": None,
    "cats_macro_p": None,
    "cats_macro_r": None,
    "cats_macro_f": None,
    "cats_macro_auc": None,
    "cats_f_per_type": None,
}


def listens_to_transformer(model: Model) -> bool:
    """Whether ``model`` contains a spacy-transformers listener (needs a transformer pipe)."""
    return any(node.name == "transformer-listener" for node in model.walk())


def require_upstream_transformer(component, nlp: Optional[Language]) -> None:
    """Raise E503 when ``component`` listens to a transformer that the pipeline lacks."""
    if nlp is None or not listens_to_transformer(component.model):
        return
    for _, proc in nlp.pipeline:
        if component.name in getattr(proc, "listening_components", ()):
            return
    raise ValueError(Errors.E503.format(name=component.name))


def require_transformer_output(component, docs: List[Doc]) -> None:
    """Raise E520 when ``component`` listens to a transformer that did not run on ``docs``
    (disabled or excluded): spacy-transformers' listener would give it zero vectors."""
    if not Doc.has_extension("trf_data") or not listens_to_transformer(component.model):
        return
    if any(len(doc) and doc._.trf_data is None for doc in docs):
        raise ValueError(Errors.E520.format(name=component.name))


def check_label_smoothing(value: float) -> float:
    """``value`` as a float if it is a number in [0, 1), else E516."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(Errors.E516.format(value=value))
    return float(value)


def check_logit_adjustment(value: float) -> float:
    """``value`` as a float if it is a finite number >= 0, else E518."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < float("inf"):
        raise ValueError(Errors.E518.format(value=value))
    return float(value)


def check_linear_probe(value: int) -> int:
    """``value`` if it is a whole number >= 0, else E510."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(Errors.E510.format(value=value))
    return value


class _HybridCatsMixin(ConfigSettingsOnLoad):
    """Prediction and output writing shared by the exclusive and multi-label heads."""

    CONFIG_SETTINGS = ("source", "threshold")

    # Classes a smoothed target spreads its mass over: all labels for exclusive classes,
    # the two outcomes of each label for multi-label.
    _n_smoothing_classes: Optional[int] = None

    def _set_head_cfg(
        self, source: Optional[str], learn_rate_scale: float, linear_probe: int, label_smoothing: float
    ) -> None:
        """Validate hybridnlp's settings and keep them in ``cfg`` (saved with the pipeline)."""
        self.cfg["source"] = source
        self.cfg["learn_rate_scale"] = check_learn_rate_scale(learn_rate_scale)
        self.cfg["linear_probe"] = check_linear_probe(linear_probe)
        self.cfg["label_smoothing"] = check_label_smoothing(label_smoothing)

    @property
    def source(self) -> str:
        """The key of this component's scores in ``doc._.hybrid_cats``."""
        return self.cfg.get("source") or self.name

    def _require_initialized(self) -> None:
        if not self.labels or not self.model.has_dim("nO"):
            raise ValueError(Errors.E100.format(name=self.name))

    def predict(self, docs: Iterable[Doc]):
        """Class probabilities, one row per doc and one column per label (``self.labels``)."""
        docs = list(docs)
        self._require_initialized()
        if not docs:
            return self.model.ops.alloc2f(0, len(self.labels))
        require_transformer_output(self, docs)
        if not any(len(doc) for doc in docs):
            # The transformer skips a batch without tokens; a one-token doc without
            # transformer output has zero token vectors, which is what an empty doc
            # contributes inside a mixed batch.
            docs = [Doc(self.vocab, words=[" "], spaces=[False]) for _ in docs]
        return self.model.ops.asarray(self.model.predict(docs))

    def set_annotations(self, docs: Iterable[Doc], scores) -> None:
        """Write the probabilities to ``doc.cats`` and ``doc._.hybrid_cats[source]``."""
        scores = self.model.ops.to_numpy(scores)
        for i, doc in enumerate(docs):
            write_cats(doc, self.source, {label: float(scores[i, j]) for j, label in enumerate(self.labels)})

    def _examples_to_truth(self, examples):
        """spaCy's targets, moved ``label_smoothing`` of the way to uniform: with 77
        exclusive classes and 0.1, the gold label gets 0.9 + 0.1/77 and the others 0.1/77."""
        truths, not_missing = super()._examples_to_truth(examples)
        smoothing = self.cfg.get("label_smoothing", 0.0)
        if smoothing:
            n_classes = self._n_smoothing_classes or len(self.labels)
            truths = truths * (1.0 - smoothing) + smoothing / n_classes
        return truths, not_missing

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the head's weights, at ``learn_rate_scale`` times the optimizer's rate."""
        finish_update_scaled(self.model, sgd, self.cfg.get("learn_rate_scale", 1.0))

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Iterable[str]] = None,
        **kwargs,
    ) -> None:
        """Infer labels from the examples' ``cats`` (or take ``labels``) and size the model;
        with ``linear_probe`` > 0, fit the output layer on the pretrained encoder's features
        of that many training examples (drawn at random) before training starts. Each
        label's number of positive training examples goes to ``cfg["class_counts"]`` (saved
        with the pipeline; ``logit_adjustment`` uses it)."""
        require_upstream_transformer(self, nlp)
        if self.cfg.get("linear_probe", 0):
            upstream_transformer(self, nlp)  # E509 before any work when there is none
        super().initialize(get_examples, nlp=nlp, labels=labels, **kwargs)
        fit_linear_probe(self, get_examples(), nlp, self.cfg.get("linear_probe", 0))
        counts = dict.fromkeys(self.labels, 0)
        for eg in get_examples():
            for label, value in eg.reference.cats.items():
                if label in counts and value >= 0.5:
                    counts[label] += 1
        self.cfg["class_counts"] = counts


class TransformerTextCategorizer(_HybridCatsMixin, TextCategorizer):
    """Exclusive classes (one label per doc, probabilities sum to 1) on the transformer."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "trf_textcat",
        *,
        threshold: float = 0.0,
        scorer: Optional[Callable] = None,
        source: Optional[str] = None,
        learn_rate_scale: float = 1.0,
        linear_probe: int = 0,
        label_smoothing: float = 0.0,
        logit_adjustment: float = 0.0,
    ) -> None:
        super().__init__(vocab, model, name, threshold=threshold, scorer=scorer)
        self._set_head_cfg(source, learn_rate_scale, linear_probe, label_smoothing)
        self.cfg["logit_adjustment"] = check_logit_adjustment(logit_adjustment)

    def log_class_prior(self) -> numpy.ndarray:
        """log of each label's share of the training examples (``self.labels`` order), with
        one added to every count so that a label without examples has a finite prior."""
        counts = self.cfg.get("class_counts") or {}
        n = numpy.array([counts.get(label, 0) for label in self.labels], dtype="float32") + 1.0
        return numpy.log(n / n.sum())

    def get_loss(self, examples: Iterable[Example], scores):
        """spaCy's loss, or with ``logit_adjustment`` = tau > 0 the logit-adjusted softmax
        loss (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021): the
        gradient is softmax(logits + tau * log prior) - target, so the model's own scores
        learn what is left once the classes' training frequencies are taken out. With tau = 1
        they estimate p(label | text) for equally likely classes, the choice that maximises
        accuracy on a test set balanced over the labels."""
        tau = self.cfg.get("logit_adjustment", 0.0)
        if not tau:
            return super().get_loss(examples, scores)
        ops = self.model.ops
        adjusted = scores * ops.asarray(numpy.exp(tau * self.log_class_prior()))
        adjusted = adjusted / adjusted.sum(axis=1, keepdims=True)
        return super().get_loss(examples, adjusted)


class MultiLabelTransformerTextCategorizer(_HybridCatsMixin, MultiLabel_TextCategorizer):
    """Independent labels (each probability in [0, 1]) on the transformer."""

    _n_smoothing_classes = 2

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "trf_textcat_multilabel",
        *,
        threshold: float = 0.5,
        scorer: Optional[Callable] = None,
        source: Optional[str] = None,
        learn_rate_scale: float = 1.0,
        linear_probe: int = 0,
        label_smoothing: float = 0.0,
        logit_adjustment: float = 0.0,
    ) -> None:
        super().__init__(vocab, model, name, threshold=threshold, scorer=scorer)
        self._set_head_cfg(source, learn_rate_scale, linear_probe, label_smoothing)
        if check_logit_adjustment(logit_adjustment):
            raise ValueError(Errors.E519.format(name=name, value=logit_adjustment))


@Language.factory(
    "trf_textcat",
    assigns=["doc.cats", "doc._.hybrid_cats"],
    default_config={
        "threshold": 0.0,
        "model": DEFAULT_MODEL,
        "scorer": {"@scorers": "spacy.textcat_scorer.v2"},
        "source": None,
        "learn_rate_scale": 1.0,
        "linear_probe": 0,
        "label_smoothing": 0.0,
        "logit_adjustment": 0.0,
    },
    default_score_weights=SCORE_WEIGHTS,
)
def make_trf_textcat(
    nlp: Language,
    name: str,
    model: Model,
    threshold: float,
    scorer: Optional[Callable],
    source: Optional[str],
    learn_rate_scale: float,
    linear_probe: int,
    label_smoothing: float,
    logit_adjustment: float,
) -> TransformerTextCategorizer:
    """Exclusive text classification head on a shared ``transformer`` component.

    model: docs -> (n_docs, n_labels) probabilities; the default mean-pools the transformer's
        token vectors into a softmax layer.
    threshold: unused for exclusive classes (kept for spaCy's textcat API).
    source: key in ``doc._.hybrid_cats``; defaults to the component name.
    learn_rate_scale: multiplies the learning rate for the head's own weights (the
        transformer's weights keep the base rate); > 1 lets a freshly initialized output
        layer keep pace with a pretrained encoder.
    linear_probe: before training, fit the output layer as a logistic regression on the
        pretrained encoder's features of up to this many training examples, so fine-tuning
        starts from a head that already knows the classes (0: start from zeros).
    label_smoothing: train towards targets moved this far from the gold labels to uniform
        (0.1: the gold class gets 0.9 plus its share of 0.1), as spaCy's tagger does.
    logit_adjustment: train for classes that are equally likely, whatever their share of
        the training data (1.0), or part of the way there (0 < tau < 1): the loss adds tau
        times each class's log training frequency to its logit, so ``doc.cats`` no longer
        favours classes that were frequent in training. 0: the training frequencies stand.
    """
    return TransformerTextCategorizer(
        nlp.vocab, model, name, threshold=threshold, scorer=scorer, source=source,
        learn_rate_scale=learn_rate_scale, linear_probe=linear_probe,
        label_smoothing=label_smoothing, logit_adjustment=logit_adjustment,
    )


@Language.factory(
    "trf_textcat_multilabel",
    assigns=["doc.cats", "doc._.hybrid_cats"],
    default_config={
        "threshold": 0.5,
        "model": DEFAULT_MULTILABEL_MODEL,
        "scorer": {"@scorers": "spacy.textcat_multilabel_scorer.v2"},
        "source": None,
        "learn_rate_scale": 1.0,
        "linear_probe": 0,
        "label_smoothing": 0.0,
        "logit_adjustment": 0.0,
    },
    default_score_weights=SCORE_WEIGHTS,
)
def make_trf_textcat_multilabel(
    nlp: Language,
    name: str,
    model: Model,
    threshold: float,
    scorer: Optional[Callable],
    source: Optional[str],
    learn_rate_scale: float,
    linear_probe: int,
    label_smoothing: float,
    logit_adjustment: float,
) -> MultiLabelTransformerTextCategorizer:
    """Multi-label text classification head on a shared ``transformer`` component.

    model: docs -> (n_docs, n_labels) independent probabilities (logistic outputs).
    threshold: probability at which a label counts as predicted when scoring.
    source: key in ``doc._.hybrid_cats``; defaults to the component name.
    learn_rate_scale: multiplies the learning rate for the head's own weights (the
        transformer's weights keep the base rate); > 1 lets a freshly initialized output
        layer keep pace with a pretrained encoder.
    linear_probe: before training, fit the output layer as a logistic regression on the
        pretrained encoder's features of up to this many training examples, so fine-tuning
        starts from a head that already knows the classes (0: start from zeros).
    label_smoothing: train each label towards a target moved this far to 0.5 (0.1: 0.95
        for a label the doc has, 0.05 for one it lacks).
    logit_adjustment: 0 only (accepted so that one config serves both heads; see
        ``trf_textcat``).
    """
    return MultiLabelTransformerTextCategorizer(
        nlp.vocab, model, name, threshold=threshold, scorer=scorer, source=source,
        learn_rate_scale=learn_rate_scale, linear_probe=linear_probe,
        label_smoothing=label_smoothing, logit_adjustment=logit_adjustment,
    )
