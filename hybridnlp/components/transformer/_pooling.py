"""Wordpiece-to-token pooling for the listeners, over the whole batch at once.

spacy-transformers' ``trfs2arrays`` aligns every doc's wordpiece vectors to its tokens with
its own gather (and, going back, its own zeroed array and scatter-add). On a GPU each of
those is a kernel launch plus a host-to-device copy of the indices, per doc; with short
texts that costs more than the transformer. :func:`batch_trfs2arrays` computes the same
values with one gather and one scatter-add per batch: the docs' wordpiece rows are
concatenated, their alignment indices shifted by each doc's first row, and the pooling
layer runs once over all tokens (upstream pools all docs at once too).

A doc whose tokens align to no wordpiece at all gets one zero row per token, as upstream's
``_apply_empty_alignment`` gives it; a doc without transformer output gets a ``(0, 0)``
array (the listener wrapper in ``architectures.py`` widens those). Outputs and gradients
equal upstream's (``tests/test_transformer_forward.py``).
"""

from typing import Callable, List, Optional, Tuple, cast

import numpy
from spacy_transformers.data_classes import TransformerData
from thinc.api import Model
from thinc.types import Floats2d, Ragged
from transformers.file_utils import ModelOutput


def _host(array) -> numpy.ndarray:
    return array.get() if hasattr(array, "get") else numpy.asarray(array)


def batch_trfs2arrays(pooling: Model[Ragged, Floats2d], grad_factor: float) -> Model[List[TransformerData], List[Floats2d]]:
    """Pool transformer data into token-aligned arrays (drop-in for upstream's ``trfs2arrays``)."""
    return Model("trfs2arrays", _forward, layers=[pooling], attrs={"grad_factor": grad_factor})


def _forward(model: Model, trf_datas: List[TransformerData], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    pooling = model.layers[0]
    grad_factor = model.attrs["grad_factor"]
    ops = model.ops
    xp = ops.xp
    blocks: List[Floats2d] = []  # wordpiece rows (or zero rows) of each pooled doc, in order
    indices: List[numpy.ndarray] = []
    lengths: List[numpy.ndarray] = []
    pooled: List[Tuple[int, int, int, bool]] = []  # (doc index, first row, rows, has gradient)
    n_rows = 0
    for i, trf_data in enumerate(trf_datas):
        if not isinstance(trf_data, TransformerData):
            raise ValueError(
                "Expected spacy_transformers.data_classes.TransformerData in trf_data, got: "
                f"{type(trf_data)}. Check that the pipeline has a transformer component before this one."
            )
        state = trf_data.model_output.get("last_hidden_state")
        if state is None or state.size == 0:
            continue
        # The alignment is on the host, except in TransformerData.zeros(xp=cupy).
        length = _host(trf_data.align.lengths)
        if length.sum():
            block = ops.reshape2f(state, -1, trf_data.width)
            index = _host(trf_data.align.dataXd).astype("int64") + n_rows
            has_gradient = True
        else:  # no token has a wordpiece: one zero row per token
            block = ops.alloc2f(length.shape[0], trf_data.width)
            index = numpy.arange(block.shape[0], dtype="int64") + n_rows
            length = numpy.ones((block.shape[0],), dtype=length.dtype)
            has_gradient = False
        blocks.append(block)
        indices.append(index)
        lengths.append(length)
        pooled.append((i, n_rows, block.shape[0], has_gradient))
        n_rows += block.shape[0]
    outputs: List[Optional[Floats2d]] = [ops.alloc2f(0, 0) for _ in trf_datas]
    if not blocks:
        return outputs, lambda d_outputs: []
    X = xp.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]
    index = ops.asarray(numpy.concatenate(indices), dtype="int64")
    token_lengths = numpy.concatenate(lengths)
    Y, backprop_pooling = pooling(Ragged(X[index], ops.asarray(token_lengths.astype("int32"))), is_train)
    n_tokens = [len(length) for length in lengths]
    for (i, _, _, _), Y_doc in zip(pooled, xp.split(Y, numpy.cumsum(n_tokens)[:-1])):
        outputs[i] = Y_doc

    def backprop(d_outputs: List[Floats2d]) -> List[TransformerData]:
        d_pooled = backprop_pooling(xp.concatenate([d_outputs[i] for i, _, _, _ in pooled], axis=0))
        dX = ops.alloc2f(*X.shape)
        ops.scatter_add(dX, index, cast(Floats2d, d_pooled.dataXd))
        if grad_factor != 1.0:
            dX *= grad_factor
        d_trf_datas = []
        for i, first, rows, has_gradient in pooled:
            trf_data = trf_datas[i]
            state = trf_data.model_output.last_hidden_state
            if has_gradient:
                d_state = dX[first : first + rows]
            else:
                d_state = ops.alloc2f(*ops.reshape2f(state, -1, trf_data.width).shape)
            d_trf_datas.append(
                TransformerData(
                    model_output=ModelOutput(last_hidden_state=d_state.reshape(state.shape)),
                    wordpieces=trf_data.wordpieces,
                    align=trf_data.align,
                )
            )
        return d_trf_datas

    return cast(List[Floats2d], outputs), backprop
