"""Start a text classification head from a linear probe of the pretrained encoder.

A head's output layer starts from zeros while the encoder under it is pretrained. Fine-tuning
both from there asks the encoder to serve a head that does not yet know the classes: with many
classes (banking77 has 77) the head needs many steps, or a higher learning rate that costs
corpora with few classes. Fitting the output layer first, as a logistic regression on the
frozen encoder's pooled features, and fine-tuning everything from that point ("linear probing
then fine-tuning", Kumar et al., ICLR 2022) starts the run where frozen sentence embeddings +
logistic regression end, so the selected checkpoint does not fall behind that baseline on dev.

The features are exactly what the head's output layer sees (the model up to its output layer,
over the transformer pipe's predictions), so the fitted weights drop in unchanged.

What it does to training, measured (docs/benchmarks.md): the probe is fitted on standardised features,
so in the raw feature space its weights are large next to an Adam step of 1e-4..1e-3; the
head then stays close to the probe and the encoder adapts to it (trec6 ran the same dev
curve with learn_rate_scale 1 and 10). That suits many classes whose frozen features are
already good (banking77, 700-step budget: test accuracy 0.932 against 0.923 with a zero
head at 10x) and not a task the frozen features serve poorly (trec6, where the probe starts at dev macro-F1 0.81:
0.952 against 0.956).
"""

from typing import Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Model

from ...errors import Errors

# Inverse regularisation strength of the probe (scikit-learn's C) on standardised features.
PROBE_C = 1.0
PROBE_BATCH = 64


def fit_linear_probe(
    component, examples: Iterable[Example], nlp: Optional[Language], max_examples: int, *, seed: int = 0
) -> int:
    """Fit ``component``'s output layer on the frozen encoder's features of up to
    ``max_examples`` training examples; returns how many examples were used (0: nothing done).

    ``component`` is an initialized ``trf_textcat`` or ``trf_textcat_multilabel``.
    """
    if max_examples <= 0:
        return 0
    trf = upstream_transformer(component, nlp)
    labels = list(component.labels)
    multi_label = bool(component.model.attrs.get("multi_label"))
    docs, targets = _sample(examples, labels, multi_label, max_examples, seed)
    if not docs:
        return 0
    X = _features(component.model, trf, docs)
    W, b = _fit(X, targets, len(labels), multi_label)
    output_layer = component.model.get_ref("output_layer")
    ops = output_layer.ops
    output_layer.set_param("W", ops.asarray2f(W))
    output_layer.set_param("b", ops.asarray1f(b))
    return len(docs)


def upstream_transformer(component, nlp: Optional[Language]):
    """The ``transformer`` pipe that ``component`` listens to (E509 when there is none)."""
    if nlp is not None:
        for _, proc in nlp.pipeline:
            if component.name in getattr(proc, "listening_components", ()):
                return proc
    raise ValueError(Errors.E509.format(name=component.name))


def _sample(examples, labels: Sequence[str], multi_label: bool, max_examples: int, seed: int):
    """Up to ``max_examples`` (doc, target) pairs drawn at random; exclusive targets are class
    indices (examples without a positive class are left out), multi-label targets 0/1 rows."""
    index = {label: i for i, label in enumerate(labels)}
    pairs: List[Tuple[Doc, object]] = []
    for eg in examples:
        cats = eg.reference.cats
        if multi_label:
            row = numpy.zeros(len(labels), dtype="float32")
            for label, value in cats.items():
                if label in index:
                    row[index[label]] = float(value >= 0.5)
            pairs.append((eg.predicted, row))
        else:
            positive = [index[label] for label, value in cats.items() if label in index and value >= 0.5]
            if len(positive) == 1:
                pairs.append((eg.predicted, positive[0]))
    if len(pairs) > max_examples:
        rng = numpy.random.default_rng(seed)
        keep = numpy.sort(rng.choice(len(pairs), size=max_examples, replace=False))
        pairs = [pairs[i] for i in keep]
    docs = [doc for doc, _ in pairs]
    targets = numpy.asarray([target for _, target in pairs])
    return docs, targets


def _features(model: Model, trf, docs: List[Doc]) -> numpy.ndarray:
    """The input of ``model``'s output layer for each doc, from the transformer's predictions
    (docs sorted by length so batches carry little padding; progress bar on stderr)."""
    from tqdm import tqdm

    output_layer = model.get_ref("output_layer")
    featurizer = _layers_before(model, output_layer)
    order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
    X = numpy.zeros((len(docs), output_layer.get_dim("nI")), dtype="float32")
    with tqdm(total=len(docs), desc="linear probe", unit="doc", leave=False) as bar:
        for start in range(0, len(order), PROBE_BATCH):
            batch_ids = order[start:start + PROBE_BATCH]
            # The pipe works on copies: the examples' docs keep no transformer output.
            batch = [docs[i].copy() for i in batch_ids]
            batch = list(trf.pipe(batch, batch_size=PROBE_BATCH))
            if not any(len(doc) for doc in batch):
                bar.update(len(batch))
                continue  # zero features, as an empty doc gets at prediction time
            Y = batch
            for layer in featurizer:
                Y = layer.predict(Y)
            X[batch_ids] = model.ops.to_numpy(Y)
            bar.update(len(batch))
    return X


def _layers_before(model: Model, target: Model) -> List[Model]:
    """The layers of the chain ``model`` (descending into nested chains) that run before the
    one holding ``target``."""
    from thinc.layers.chain import forward as chain_forward

    before: List[Model] = []
    for layer in model.layers:
        if not any(node is target for node in layer.walk()):
            before.append(layer)
            continue
        if layer is not target and layer._func is chain_forward:
            before.extend(_layers_before(layer, target))
        return before
    raise ValueError("the output layer is not part of the model")


def _fit(X: numpy.ndarray, targets: numpy.ndarray, n_labels: int, multi_label: bool):
    """Logistic regression on standardised features, folded back into weights for the raw
    features: ``W`` (n_labels, n_features) and ``b`` (n_labels,)."""
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-6] = 1.0
    Z = (X - mean) / scale
    W = numpy.zeros((n_labels, X.shape[1]), dtype="float64")
    b = numpy.zeros(n_labels, dtype="float64")
    if multi_label:
        for j in range(n_labels):
            y = targets[:, j]
            if y.min() == y.max():  # one class only: the prior, no weights
                p = numpy.clip(y.mean(), 1e-3, 1 - 1e-3)
                b[j] = numpy.log(p / (1 - p))
                continue
            clf = LogisticRegression(C=PROBE_C, max_iter=1000).fit(Z, y)
            W[j], b[j] = clf.coef_[0], clf.intercept_[0]
    else:
        present = numpy.unique(targets)
        if len(present) == 1:  # every sampled doc has one class: favour it, no weights
            b[:] = -10.0
            b[present[0]] = 0.0
        else:
            clf = LogisticRegression(C=PROBE_C, max_iter=1000).fit(Z, targets)
            coef, intercept = clf.coef_, clf.intercept_
            if len(present) == 2:  # scikit-learn gives one row for two classes
                coef = numpy.vstack([-coef[0] / 2, coef[0] / 2])
                intercept = numpy.array([-intercept[0] / 2, intercept[0] / 2])
            # Classes absent from the sample keep zero weights and a low bias.
            b[:] = intercept.min() - 10.0
            W[present], b[present] = coef, intercept
    W_raw = W / scale
    b_raw = b - W_raw @ mean
    return W_raw.astype("float32"), b_raw.astype("float32")
