"""The encoder's vectorized forward pass gives exactly what spacy-transformers' forward gives:
same wordpieces, alignment, outputs and per-doc split, on odd, overlapping and long texts."""

import numpy
import pytest
import spacy

try:
    from .transformer_fixtures import tiny_bert_dir, tiny_bert_master
except ImportError:  # tests/ is not a package
    from transformer_fixtures import tiny_bert_dir, tiny_bert_master

from hybridnlp.components.transformer._forward import align_by_offsets, fast_forward

ODD_TEXTS = [
    "John lives in Paris .",
    "",
    "   ",
    "two  spaces\tand a tab\nand a newline",
    "Café naïve résumé — “quotes” and emoji 😀👍🏽 here",
    "control\x00chars\x07 and \u200bzero width",
    "don't stop-words, e.g. U.S.A. at 3:30pm!!!",
    "ALL CAPS AND MiXeD cAsE",
    "a",
    "  leading and trailing spaces  ",
    "日本語のテキスト と English",
]


def to_numpy(array):
    return array.get() if hasattr(array, "get") else numpy.asarray(array)


def build_model(model_dir, span_getter):
    import hybridnlp.components.transformer.architectures  # noqa: F401

    nlp = spacy.blank("en")
    trf = nlp.add_pipe(
        "transformer",
        config={"model": {"@architectures": "hybridnlp.TransformerModel.v1", "name": str(model_dir), "get_spans": span_getter}},
    )
    nlp.initialize()
    return nlp, trf.model


def assert_same_batch(ours, theirs):
    assert ours.wordpieces.strings == theirs.wordpieces.strings
    assert list(ours.wordpieces.lengths) == list(theirs.wordpieces.lengths)
    for attr in ("input_ids", "attention_mask", "token_type_ids"):
        numpy.testing.assert_array_equal(to_numpy(getattr(ours.wordpieces, attr)), to_numpy(getattr(theirs.wordpieces, attr)))
    numpy.testing.assert_array_equal(ours.align.dataXd, theirs.align.dataXd)
    numpy.testing.assert_array_equal(ours.align.lengths, theirs.align.lengths)
    numpy.testing.assert_array_equal(
        ours.model_output.last_hidden_state.detach().cpu().numpy(),
        theirs.model_output.last_hidden_state.detach().cpu().numpy(),
    )
    ours_docs, theirs_docs = ours.doc_data, theirs.doc_data
    assert len(ours_docs) == len(theirs_docs)
    for a, b in zip(ours_docs, theirs_docs):
        numpy.testing.assert_array_equal(a.align.dataXd, b.align.dataXd)
        numpy.testing.assert_array_equal(a.align.lengths, b.align.lengths)
        assert a.wordpieces.strings == b.wordpieces.strings
        assert sorted(a.model_output.keys()) == sorted(b.model_output.keys())
        if "last_hidden_state" in b.model_output:
            numpy.testing.assert_array_equal(
                to_numpy(a.model_output.last_hidden_state), to_numpy(b.model_output.last_hidden_state)
            )


@pytest.mark.parametrize(
    "span_getter",
    [
        {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 6, "stride": 4},
        {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96},
        {"@span_getters": "spacy-transformers.doc_spans.v1"},
    ],
)
def test_fast_forward_matches_upstream(tiny_bert_dir, span_getter):
    from spacy_transformers.layers.transformer_model import forward as upstream_forward

    nlp, model = build_model(tiny_bert_dir, span_getter)
    docs = [nlp.make_doc(text) for text in ODD_TEXTS]
    docs.append(docs[0])  # the same Doc twice in one batch
    if "doc_spans" in span_getter["@span_getters"]:
        # Upstream raises IndexError on the empty span of an empty doc; ours gives it an
        # empty TransformerData, as it does for a doc without spans.
        ours, _ = fast_forward(model, docs, is_train=False)
        assert [len(data.tensors) == 0 for data in ours.doc_data] == [len(doc) == 0 for doc in docs]
        docs = [doc for doc in docs if len(doc)]
    ours, _ = fast_forward(model, docs, is_train=False)
    theirs, _ = upstream_forward(model, docs, is_train=False)
    assert_same_batch(ours, theirs)


def test_fast_forward_matches_upstream_on_long_doc(tiny_bert_dir):
    """Past the model's 512 wordpieces: strided windows, and one oversize span that upstream
    truncates (the same either way)."""
    from spacy_transformers.layers.transformer_model import forward as upstream_forward

    text = " ".join(f"word{i} Paris, naïve-{i % 7}!" for i in range(400))
    for getter in (
        {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96},
        {"@span_getters": "spacy-transformers.doc_spans.v1"},
    ):
        nlp, model = build_model(tiny_bert_dir, getter)
        docs = [nlp.make_doc(text), nlp.make_doc("short one")]
        ours, _ = fast_forward(model, docs, is_train=False)
        theirs, _ = upstream_forward(model, docs, is_train=False)
        assert_same_batch(ours, theirs)


def test_fast_forward_backprop_matches_upstream(tiny_bert_dir):
    """Training goes through the same path: equal gradients for an equal loss."""
    import torch
    from spacy_transformers.layers.transformer_model import forward as upstream_forward

    nlp, model = build_model(
        tiny_bert_dir, {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 6, "stride": 4}
    )
    docs = [nlp.make_doc(text) for text in ODD_TEXTS[:5]]
    grads = []
    for forward in (fast_forward, upstream_forward):
        model.layers[0].shims[0]._model.zero_grad()
        torch.manual_seed(0)  # the same dropout masks
        output, backprop = forward(model, docs, is_train=True)
        xp = model.ops.xp
        d_output = output.unsplit_by_doc([[xp.ones_like(t) for t in d.tensors] for d in output.doc_data if d.tensors])
        backprop(d_output)
        grads.append([p.grad.detach().clone() for p in model.layers[0].shims[0]._model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads):
        assert numpy.allclose(a.cpu().numpy(), b.cpu().numpy())


def test_alignment_of_whitespace_and_merged_tokens():
    """Hand-checked: a wordpiece covering two spaCy tokens aligns to both; a token with no
    wordpiece (whitespace) aligns to none; special pieces align to nothing."""
    nlp = spacy.blank("en")
    doc = nlp.make_doc("ab  cd")  # tokens: "ab", " ", "cd"
    assert [t.text for t in doc] == ["ab", " ", "cd"]
    # [CLS] (0,0), "ab" (0,2), "cd" (4,6), [SEP] (0,0)
    offsets = numpy.array([[[0, 0], [0, 2], [4, 6], [0, 0]]])
    align, starts = align_by_offsets([doc[:]], offsets)
    assert list(align.lengths) == [1, 0, 1]
    assert list(align.dataXd) == [1, 2]
    assert starts == {id(doc): 0}


def test_batch_pooling_matches_upstream(tiny_bert_dir):
    """The listener's batched wordpiece pooling: same token vectors and same gradients as
    spacy-transformers' per-doc trfs2arrays, with empty, whitespace-only and odd docs."""
    from spacy_transformers.data_classes import TransformerData
    from spacy_transformers.layers.trfs2arrays import trfs2arrays
    from thinc.api import reduce_mean

    from hybridnlp.components.transformer._pooling import batch_trfs2arrays

    nlp, model = build_model(
        tiny_bert_dir, {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 6, "stride": 4}
    )
    docs = [nlp.make_doc(text) for text in ODD_TEXTS]
    trf_datas = list(fast_forward(model, docs, is_train=False)[0].doc_data)
    # A doc whose tokens align to no wordpiece (upstream gives it zero rows).
    empty_align = TransformerData.zeros(3, trf_datas[0].width, xp=model.ops.xp)
    empty_align.align.lengths[:] = 0
    empty_align.align.data = model.ops.xp.zeros((0,), dtype="i")
    trf_datas.append(empty_align)
    ours, theirs = batch_trfs2arrays(reduce_mean(), 0.5), trfs2arrays(reduce_mean(), 0.5)
    Y_ours, bp_ours = ours(trf_datas, is_train=True)
    Y_theirs, bp_theirs = theirs(trf_datas, is_train=True)
    assert len(Y_ours) == len(Y_theirs) == len(trf_datas)
    for a, b in zip(Y_ours, Y_theirs):
        numpy.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    rng = numpy.random.default_rng(0)
    dY = [model.ops.asarray2f(rng.normal(size=y.shape).astype("f")) for y in Y_theirs]
    d_ours, d_theirs = bp_ours([d.copy() for d in dY]), bp_theirs([d.copy() for d in dY])
    assert len(d_ours) == len(d_theirs)
    for a, b in zip(d_ours, d_theirs):
        numpy.testing.assert_allclose(
            to_numpy(a.model_output.last_hidden_state), to_numpy(b.model_output.last_hidden_state), rtol=1e-6, atol=1e-7
        )


def test_predict_stays_in_eval_mode_and_matches_thinc(tiny_bert_dir):
    """The shim's predict equals thinc's (no dropout, no gradients) and leaves the module in
    eval mode; a training step switches it back to train mode."""
    from spacy_transformers.layers.hf_shim import HFShim

    nlp, model = build_model(
        tiny_bert_dir, {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96}
    )
    docs = [nlp.make_doc(text) for text in ODD_TEXTS]
    shim = model.layers[0].shims[0]
    model.begin_update(docs)
    assert shim._model.training
    ours = model.predict(docs).model_output.last_hidden_state
    assert not shim._model.training and not ours.requires_grad
    theirs_predict = HFShim.predict.__get__(shim)
    original, shim.predict = shim.predict, theirs_predict
    try:
        theirs = model.predict(docs).model_output.last_hidden_state
    finally:
        shim.predict = original
    numpy.testing.assert_array_equal(ours.detach().cpu().numpy(), theirs.detach().cpu().numpy())
    model.begin_update(docs)
    assert shim._model.training
