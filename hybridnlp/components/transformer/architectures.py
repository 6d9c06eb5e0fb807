"""Registered model constructors for the transformer components (thin; the maths lives in
spacy-transformers, thinc and ``encoder.py``).

Everything imported at module level is cheap: this module is a ``spacy_architectures`` entry
point, and spaCy may import it on any ``spacy.load``. torch, transformers and
spacy-transformers are imported inside the constructors.
"""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, Softmax, chain, concatenate, with_array
from thinc.types import Floats2d, Ragged


@registry.architectures("hybridnlp.TransformerModel.v1")
def create_transformer_model(
    name: str,
    get_spans: Callable,
    tokenizer_config: dict = {},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
    case_types: bool = False,
    layer_decay: float = 1.0,
) -> Model:
    """A pretrained transformer for spacy-transformers' ``transformer`` pipe, loaded offline.

    Same arguments as ``spacy-transformers.TransformerModel.v3``. ``name`` is a known
    symbolic name (``"all-MiniLM-L6-v2"``) or a local Hugging Face model directory, resolved
    when the pipeline is initialized; a saved pipeline carries its weights (as safetensors)
    and does not need the directory. ``mixed_precision`` is used only when a GPU is active.
    ``case_types``: give each wordpiece its capitalisation (lower, Title, UPPER, miXed) as its
    token type, so that an uncased model sees case in all its layers (``_casing.py``; needs
    a BERT-style model with token-type embeddings and a fast tokenizer).
    ``layer_decay``: layer-wise learning-rate decay; the top layer learns at the optimizer's
    rate, each layer below at ``layer_decay`` times the one above, the embeddings last
    (1.0: all at one rate).
    """
    from .encoder import LocalTransformerModel

    return LocalTransformerModel(
        name,
        get_spans,
        tokenizer_config=tokenizer_config,
        transformer_config=transformer_config,
        mixed_precision=mixed_precision,
        grad_scaler_config=grad_scaler_config,
        case_types=case_types,
        layer_decay=layer_decay,
    )


@registry.architectures("hybridnlp.TransformerListener.v1")
def create_transformer_listener(
    pooling: Model[Ragged, Floats2d], grad_factor: float = 1.0, upstream: str = "*"
) -> Model[List[Doc], List[Floats2d]]:
    """``spacy-transformers.TransformerListener.v1`` whose output for an empty doc has the
    transformer's width, and whose wordpiece pooling runs once per batch instead of once
    per doc (same values; see ``_pooling.py``).

    Upstream returns ``(0, 0)`` arrays for empty docs, which breaks any layer that joins the
    docs of a batch (concatenation, ``list2ragged``) when empty and non-empty docs meet in
    one batch; ``(0, width)`` arrays join cleanly and carry no gradient.
    """
    from spacy_transformers.layers import TransformerListener

    return _token_vectors(TransformerListener(upstream_name=upstream), pooling, grad_factor)


@registry.architectures("hybridnlp.Tok2VecTransformer.v1")
def create_tok2vec_transformer(
    name: str,
    get_spans: Callable,
    pooling: Model[Ragged, Floats2d],
    grad_factor: float = 1.0,
    tokenizer_config: dict = {},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
    case_types: bool = False,
    layer_decay: float = 1.0,
) -> Model[List[Doc], List[Floats2d]]:
    """A transformer inside one component: what ``nlp.replace_listeners`` makes of a
    ``hybridnlp.TransformerListener.v1`` listening to a ``hybridnlp.TransformerModel.v1``
    (the arguments of both; the same layers, so the weights saved with it load back)."""
    from spacy_transformers.layers._util import replace_listener

    transformer = create_transformer_model(
        name, get_spans, tokenizer_config, transformer_config, mixed_precision, grad_scaler_config,
        case_types, layer_decay,
    )
    return _token_vectors(replace_listener(transformer), pooling, grad_factor)


def _token_vectors(source: Model, pooling: Model[Ragged, Floats2d], grad_factor: float) -> Model:
    """Token vectors pooled from ``source``'s transformer output (a listener, or the
    transformer itself), one ``(0, width)`` array for an empty doc."""
    from ._pooling import batch_trfs2arrays

    # Upstream's listener chain, with the wordpiece pooling done once per batch (_pooling.py).
    listener_chain = chain(source, batch_trfs2arrays(pooling, grad_factor))
    listener_chain.set_ref("listener", source)
    return Model(
        "empty_doc_width",
        _empty_doc_width_forward,
        init=_empty_doc_width_init,
        layers=[listener_chain],
        refs={"listener": source},
        dims={"nO": None},
    )


def _empty_doc_width_init(model: Model, X=None, Y=None) -> None:
    model.layers[0].initialize(X=X)
    width = model.get_ref("listener").maybe_get_dim("nO")
    if width is not None:
        model.set_dim("nO", width, force=True)


def _empty_doc_width_forward(
    model: Model, docs: List[Doc], is_train: bool
) -> Tuple[List[Floats2d], Callable]:
    Xs, backprop_listener = model.layers[0](docs, is_train)
    width = next((X.shape[1] for X in Xs if X.shape[0]), None)
    if width is None:
        width = model.get_ref("listener").maybe_get_dim("nO") or 0
    shapes = [X.shape for X in Xs]
    Ys = [X if X.shape[0] else model.ops.alloc2f(0, width) for X in Xs]

    def backprop(dYs: List[Floats2d]):
        return backprop_listener(
            [dY if shape[0] else model.ops.alloc2f(*shape) for dY, shape in zip(dYs, shapes)]
        )

    return Ys, backprop


@registry.architectures("hybridnlp.TextCatReduce.v1")
def build_reduce_text_classifier(
    tok2vec: Model[List[Doc], List[Floats2d]],
    exclusive_classes: bool,
    use_reduce_first: bool,
    use_reduce_last: bool,
    use_reduce_max: bool,
    use_reduce_mean: bool,
    nO: Optional[int] = None,
) -> Model[List[Doc], Floats2d]:
    """``spacy.TextCatReduce.v1`` (same arguments, same weights) that also classifies an
    empty doc in a batch with others: the reductions see one zero vector for it, so every
    reduction gives zeros and the head answers with its learned prior, whatever the batch.

    thinc's max, first and last reductions refuse zero-length sequences, so spaCy's own
    model fails on a batch that mixes empty and non-empty docs whenever one of them is on
    (mean pooling alone gives zeros for an empty doc, as this model does).
    """
    from spacy.ml.models.textcat import build_reduce_text_classifier as build_spacy_reduce

    model = build_spacy_reduce(
        chain(tok2vec, _empty_doc_as_zero_vector()),
        exclusive_classes=exclusive_classes,
        use_reduce_first=use_reduce_first,
        use_reduce_last=use_reduce_last,
        use_reduce_max=use_reduce_max,
        use_reduce_mean=use_reduce_mean,
        nO=nO,
    )
    model.set_ref("tok2vec", tok2vec)
    return model


def _empty_doc_as_zero_vector() -> Model[List[Floats2d], List[Floats2d]]:
    """Give a doc without token vectors one zero vector (of the batch's width); no gradient
    flows back through it."""
    return Model("empty_doc_as_zero_vector", _empty_doc_as_zero_vector_forward)


def _empty_doc_as_zero_vector_forward(
    model: Model, Xs: List[Floats2d], is_train: bool
) -> Tuple[List[Floats2d], Callable]:
    shapes = [X.shape for X in Xs]
    Ys = [X if X.shape[0] else model.ops.alloc2f(1, X.shape[1]) for X in Xs]

    def backprop(dYs: List[Floats2d]) -> List[Floats2d]:
        return [dY if shape[0] else model.ops.alloc2f(*shape) for dY, shape in zip(dYs, shapes)]

    return Ys, backprop


@registry.architectures("hybridnlp.TokenClassifier.v1")
def build_token_classifier(
    tok2vec: Model[List[Doc], List[Floats2d]],
    casing: Optional[Model[List[Doc], List[Floats2d]]] = None,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Per-token softmax over BIO tags on transformer vectors, optionally with casing features.

    tok2vec: the token vectors, usually ``hybridnlp.TransformerListener.v1``.
    casing: a small embedding of word-shape attributes (e.g. ``spacy.Tok2Vec.v2`` over
        ``MultiHashEmbed`` of SHAPE, IS_TITLE, IS_UPPER), concatenated to the transformer
        vectors. An uncased model cannot see capitalisation; these features give it back.
    nO: the number of tags (set by the component from its labels).
    Returns a model from docs to one ``(n_tokens, n_tags)`` probability array per doc.
    """
    features = concatenate(tok2vec, casing) if casing is not None else tok2vec
    output_layer = Softmax(nO=nO)
    model = chain(features, with_array(output_layer))
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    if casing is not None:
        model.set_ref("casing", casing)
    return model
