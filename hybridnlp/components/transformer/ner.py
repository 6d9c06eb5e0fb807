"""Named-entity recognition head on the shared transformer, with a confidence per entity:
``trf_ner``.

Design: **token classification with BIO tags and constrained decoding.** Each token gets a
softmax over ``O, B-X, I-X`` from its transformer vector concatenated with a small embedding
of casing features (SHAPE, IS_TITLE, IS_UPPER); the most probable *valid* tag sequence is
found by Viterbi (``I-X`` only after ``B-X``/``I-X``), and each entity's confidence is the
probability, under the per-token distributions, of exactly that span (see ``bio.decode_bio``).

Why not the alternatives:

* spaCy's ``ner`` is a transition parser: it gives no per-entity confidence and its features
  are built for its own tok2vec.
* Span categorisation scores every candidate span (n x max_len per doc) and then needs a
  separate overlap-resolution step to produce ``doc.ents``; for flat, non-overlapping
  entities (CoNLL, WNUT) token classification is the standard strong baseline, costs one
  linear layer per token, and its decoding yields non-overlapping spans directly.
* Casing features are there because the default encoder (all-MiniLM-L6-v2) is uncased:
  "Apple" and "apple" reach it as the same wordpieces. Measured gain so far is small: CoNLL-2003
  dev entity F1 after 420 steps was 0.8995 with them and 0.8950 without (one run each, H100
  sweep in benchmarks/gpu/). Token vectors are mean-pooled over each
  token's wordpieces, so tokens split into several pieces still get one vector.

Outputs follow hybridnlp's contract: ``doc.spans[source]`` (``attrs["scores"]`` holds one
confidence per span) and, with ``set_ents`` (default), ``doc.ents``. Scoring uses spaCy's
``get_ner_prf`` (``ents_f``/``ents_p``/``ents_r``/``ents_per_type``).
"""

from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline.trainable_pipe import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate

from ...errors import Errors
from .._pipe import ConfigSettingsOnLoad
from ..outputs import write_spans
from .bio import bio_tags, biluo_to_bio, decode_bio_batch
from ._update import check_learn_rate_scale, finish_update_scaled
from .textcat import require_transformer_output, require_upstream_transformer

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "hybridnlp.TokenClassifier.v1"
nO = null

[model.tok2vec]
@architectures = "hybridnlp.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[model.tok2vec.pooling]
@layers = "reduce_mean.v1"

[model.casing]
@architectures = "spacy.Tok2Vec.v2"

[model.casing.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 32
attrs = ["SHAPE", "IS_TITLE", "IS_UPPER"]
rows = [1000, 16, 16]
include_static_vectors = false

[model.casing.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 32
depth = 1
window_size = 1
maxout_pieces = 2
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


class TransformerEntityRecognizer(ConfigSettingsOnLoad, TrainablePipe):
    """Token-classification NER that writes scored spans (see the module docstring)."""

    CONFIG_SETTINGS = ("source", "set_ents")

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "trf_ner",
        *,
        source: Optional[str] = None,
        set_ents: bool = True,
        scorer: Optional[Callable] = None,
        learn_rate_scale: float = 1.0,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict = {
            "labels": [],
            "source": source,
            "set_ents": set_ents,
            "learn_rate_scale": check_learn_rate_scale(learn_rate_scale),
        }

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels, in the order their B/I tags appear in the scores."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    @property
    def tags(self) -> List[str]:
        """The BIO tag set: the column order of the per-token probabilities."""
        return bio_tags(self.labels)

    @property
    def source(self) -> str:
        """The key of this component's spans in ``doc.spans``."""
        return self.cfg.get("source") or self.name

    def add_label(self, label: str) -> int:
        """Add an entity label before initialization; returns 1 if added, 0 if known."""
        self._validate_label(label)
        if label in self.labels:
            return 0
        if self.model.get_ref("output_layer").has_dim("nO"):
            raise ValueError(Errors.E507.format(name=self.name, label=label))
        self.cfg["labels"].append(label)
        return 1

    def _validate_label(self, label) -> None:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(Errors.E506.format(name=self.name, label=label))

    def _require_initialized(self) -> None:
        if not self.labels or not self.model.get_ref("output_layer").has_dim("nO"):
            raise ValueError(Errors.E100.format(name=self.name))

    def predict(self, docs: Iterable[Doc]) -> List[numpy.ndarray]:
        """Per-token tag probabilities: one ``(len(doc), len(self.tags))`` array per doc."""
        docs = list(docs)
        self._require_initialized()
        n_tags = len(self.tags)
        if not any(len(doc) for doc in docs):
            return [numpy.zeros((len(doc), n_tags), dtype="float32") for doc in docs]
        require_transformer_output(self, docs)
        scores = list(self.model.predict(docs))
        return _split_rows(_rows_to_host(self.model.ops, scores, n_tags), scores)

    def set_annotations(self, docs: Iterable[Doc], scores: List[numpy.ndarray]) -> None:
        """Decode each doc's tag probabilities and write ``doc.spans[source]`` (+ ``doc.ents``)."""
        set_ents = bool(self.cfg["set_ents"])
        for doc, spans in zip(docs, decode_bio_batch(list(scores), self.tags)):
            write_spans(doc, self.source, spans, set_ents=set_ents)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """One gradient step on a batch; adds the batch's cross-entropy to ``losses[name]``."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "TransformerEntityRecognizer.update")
        # The transformer sends nothing to its listeners for a batch without tokens.
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, scores)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the head's weights, at ``learn_rate_scale`` times the optimizer's rate."""
        finish_update_scaled(self.model, sgd, self.cfg.get("learn_rate_scale", 1.0))

    def get_loss(self, examples: Iterable[Example], scores) -> Tuple[float, List]:
        """Cross-entropy against the gold BIO tags and its gradient w.r.t. the softmax input.

        Tokens whose gold tag is unknown (missing annotation, misaligned tokenization, or a
        label this component does not predict) get no gradient.
        """
        validate_examples(examples, "TransformerEntityRecognizer.get_loss")
        index = {tag: i for i, tag in enumerate(self.tags)}
        ops = self.model.ops
        scores = list(scores)
        # One copy from the device and one back per batch, not one per doc.
        probs = _rows_to_host(ops, scores, len(index))
        truth = numpy.zeros(probs.shape, dtype="float32")
        known = numpy.zeros((probs.shape[0], 1), dtype="float32")
        start = 0
        for eg, doc_scores in zip(examples, scores):
            n_tokens = doc_scores.shape[0]
            for i, tag in enumerate(eg.get_aligned_ner()[:n_tokens]):
                col = index.get(biluo_to_bio(tag))
                if col is not None:
                    truth[start + i, col] = 1.0
                    known[start + i, 0] = 1.0
            start += n_tokens
        picked = (probs * truth).sum(axis=1)
        loss = float(-(numpy.log(numpy.clip(picked, 1e-9, 1.0)) * known[:, 0]).sum())
        return loss, _split_rows(ops.asarray2f((probs - truth) * known), scores)

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Iterable[str]] = None,
    ) -> None:
        """Infer the entity labels from the examples (or take ``labels``) and size the model."""
        validate_get_examples(get_examples, "TransformerEntityRecognizer.initialize")
        require_upstream_transformer(self, nlp)
        if labels is None:
            labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})
        labels = list(dict.fromkeys(labels))
        for label in labels:
            self._validate_label(label)
        if not labels:
            raise ValueError(Errors.E101.format(name=self.name, what="entities"))
        self.cfg["labels"] = labels
        self.model.get_ref("output_layer").set_dim("nO", len(self.tags), force=True)
        doc_sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.initialize(X=doc_sample)


def _rows_to_host(ops, arrays: List, width: int) -> numpy.ndarray:
    """The rows of per-doc arrays stacked into one float32 host array: one device-to-host
    copy per batch instead of one per doc."""
    if not arrays:
        return numpy.zeros((0, width), dtype="float32")
    return ops.to_numpy(ops.xp.concatenate(arrays, axis=0)).astype("float32", copy=False)


def _split_rows(flat, arrays: List) -> List:
    """``flat`` (rows stacked as by :func:`_rows_to_host`) cut back into per-doc views."""
    ends = numpy.cumsum([a.shape[0] for a in arrays])
    return [flat[end - a.shape[0] : end] for a, end in zip(arrays, ends)]


@Language.factory(
    "trf_ner",
    assigns=["doc.ents", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "source": None,
        "set_ents": True,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
        "learn_rate_scale": 1.0,
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_trf_ner(
    nlp: Language,
    name: str,
    model: Model,
    source: Optional[str],
    set_ents: bool,
    scorer: Optional[Callable],
    learn_rate_scale: float,
) -> TransformerEntityRecognizer:
    """Entity recognizer head on a shared ``transformer`` component, one confidence per entity.

    model: docs -> per-token BIO tag probabilities (default: transformer vectors + casing
        features -> softmax).
    source: key in ``doc.spans``; defaults to the component name.
    set_ents: also write the entities to ``doc.ents``.
    learn_rate_scale: multiplies the learning rate for the head's own weights (the
        transformer's weights keep the base rate).
    """
    return TransformerEntityRecognizer(
        nlp.vocab, model, name, source=source, set_ents=set_ents, scorer=scorer,
        learn_rate_scale=learn_rate_scale,
    )

