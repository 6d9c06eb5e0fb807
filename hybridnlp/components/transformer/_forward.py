"""The encoder's forward pass: spacy-transformers' own, with the per-token Python work vectorized.

spacy-transformers' ``TransformerModel`` forward does three things per batch whose cost grows
with the number of spaCy tokens, in pure Python: it maps every token to its position with a
``Token``-keyed dict (twice: once to align, once to split the batch per doc), it aligns
wordpieces to tokens one token at a time through sets, and it turns every wordpiece id back
into its string with one tokenizer call per id. On a CPU that is a few percent of a MiniLM
forward pass; on a GPU, where the model itself takes a fraction of a millisecond per text,
it is most of the time spent per batch.

This module computes the same values with NumPy over the whole batch:

* token positions come from each doc's ``IDX``/``LENGTH`` arrays and the doc's first
  position in the batch;
* a wordpiece ``j`` with character offsets ``[a, b)`` is aligned to every token whose
  characters ``[idx, idx + len]`` (the end inclusive, later tokens winning, exactly as
  ``spacy_transformers.align.get_span2wp_from_offset_mapping``) contain a character in
  ``[a, b)``; the aligned wordpiece indices of a token are sorted and unique;
* wordpiece strings are looked up in an array of the tokenizer's vocabulary.

The outputs are identical to upstream's (``tests/test_transformer_forward.py`` compares them
on odd and long texts), so pipelines trained with either predict the same. Tokenizers without
offset mappings (slow, Python tokenizers) and batches without spans take upstream's path.
"""

import weakref
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, cast

import numpy
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc, Span
from thinc.api import NumpyOps, torch2xp
from thinc.types import Ints1d, Ragged

import torch
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData, WordpieceBatch
from spacy_transformers.layers.transformer_model import forward as upstream_forward
from spacy_transformers.truncate import truncate_oversize_splits
from transformers import PreTrainedTokenizerFast
from transformers.file_utils import ModelOutput
from transformers.modeling_outputs import BaseModelOutput

from ...errors import Errors
from .._forking import torch_ran
from ._casing import case_token_types, case_type_base

# id -> wordpiece string for each tokenizer seen (weakly keyed: no copy outlives its tokenizer).
_VOCAB_STRINGS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def wordpiece_strings(tokenizer, input_ids: numpy.ndarray) -> List[List[str]]:
    """``tokenizer.convert_ids_to_tokens`` of every row of ``input_ids``, by array lookup."""
    vocab = _VOCAB_STRINGS.get(tokenizer)
    if vocab is None:
        strings = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        vocab = numpy.empty(len(strings), dtype=object)
        vocab[:] = strings
        _VOCAB_STRINGS[tokenizer] = vocab
    if input_ids.size and int(input_ids.max()) >= len(vocab):
        # An id beyond the vocabulary as we saw it (a token added since): ask the tokenizer.
        return [tokenizer.convert_ids_to_tokens(row.tolist()) for row in input_ids]
    return vocab[input_ids].tolist()


def doc_positions(flat_spans: List[Span]) -> Tuple[Dict[int, int], List[Doc]]:
    """Each doc's first token position in the batch (keyed by ``id(doc)``), and the docs in
    order. Positions number the tokens of every doc that has a span, in order of first
    appearance, as ``spacy_transformers.align.get_token_positions`` does."""
    starts: Dict[int, int] = {}
    docs: List[Doc] = []
    n_tokens = 0
    for span in flat_spans:
        doc = span.doc
        if id(doc) not in starts:
            starts[id(doc)] = n_tokens
            docs.append(doc)
            n_tokens += len(doc)
    return starts, docs


def align_by_offsets(flat_spans: List[Span], offsets: numpy.ndarray) -> Tuple[Ragged, Dict[int, int]]:
    """The token-to-wordpiece alignment of a batch (upstream's ``get_alignment_via_offset_mapping``)
    and each doc's first token position.

    offsets: ``(n_spans, n_wordpieces, 2)`` character offsets of each span's wordpieces,
        relative to the span's text (``(0, 0)`` for special and padding pieces).
    """
    doc_starts, docs = doc_positions(flat_spans)
    # Lay the docs out on one character axis, two characters apart, so that a token's
    # inclusive end never reaches the next doc.
    char_base: Dict[int, int] = {}
    token_starts, token_ends = [], []
    base = 0
    for doc in docs:
        char_base[id(doc)] = base
        if len(doc):
            arr = doc.to_array([IDX, LENGTH]).astype("int64")
            token_starts.append(arr[:, 0] + base)
            token_ends.append(arr[:, 0] + arr[:, 1] + base)
        # len(doc.text) without building the text: where the last token's whitespace ends.
        base += (doc[-1].idx + len(doc[-1].text_with_ws) if len(doc) else 0) + 2
    n_tokens = sum(len(doc) for doc in docs)
    if not token_starts:
        return Ragged(numpy.zeros((0,), dtype="i"), numpy.zeros((n_tokens,), dtype="i")), doc_starts
    starts = numpy.concatenate(token_starts)
    ends = numpy.concatenate(token_ends)
    n_spans, n_pieces = offsets.shape[:2]
    span_base = numpy.array(
        [span.start_char + char_base[id(span.doc)] for span in flat_spans], dtype="int64"
    )
    offsets = offsets.astype("int64", copy=False)
    widths = numpy.maximum(offsets[:, :, 1] - offsets[:, :, 0], 0).ravel()
    piece_starts = (offsets[:, :, 0] + span_base[:, None]).ravel()
    # One row per (wordpiece, character) pair.
    piece = numpy.repeat(numpy.arange(n_spans * n_pieces, dtype="int64"), widths)
    first = numpy.cumsum(widths) - widths
    chars = numpy.repeat(piece_starts - first, widths) + numpy.arange(piece.size, dtype="int64")
    token = numpy.searchsorted(starts, chars, side="right") - 1
    inside = token >= 0
    inside[inside] = chars[inside] <= ends[token[inside]]
    keys = numpy.unique(token[inside] * (n_spans * n_pieces) + piece[inside])
    positions = keys // (n_spans * n_pieces)
    lengths = numpy.bincount(positions, minlength=n_tokens)
    align = Ragged(
        cast(Ints1d, (keys % (n_spans * n_pieces)).astype("i")), cast(Ints1d, lengths.astype("i"))
    )
    return align, doc_starts


@dataclass
class IndexedTransformerBatch(FullTransformerBatch):
    """A FullTransformerBatch that knows each doc's first token position, so splitting it
    per doc needs no ``Token``-keyed lookups. Everything else is upstream's."""

    doc_starts: Optional[Dict[int, int]] = None

    def split_by_doc(self) -> List[TransformerData]:
        if self.doc_starts is None:
            return super().split_by_doc()
        xp_model_output = ModelOutput()
        last_hidden_state = cast(BaseModelOutput, self.model_output).last_hidden_state
        for key, output in self.model_output.items():
            if isinstance(output, torch.Tensor):
                xp_model_output[key] = torch2xp(output)
            elif (
                isinstance(output, tuple)
                and all(isinstance(t, torch.Tensor) for t in output)
                and all(t.shape[0] == last_hidden_state.shape[0] for t in output)
            ):
                xp_model_output[key] = [torch2xp(t) for t in output]
        outputs = []
        start = 0
        prev_tokens = 0
        for doc_spans in self.spans:
            if len(doc_spans) == 0 or len(doc_spans[0]) == 0:
                outputs.append(TransformerData.empty())
                continue
            first = self.doc_starts[id(doc_spans[0].doc)]
            start_i = first + doc_spans[0].start
            end_i = first + doc_spans[-1].end
            end = start + len(doc_spans)
            doc_tokens = self.wordpieces[start:end]
            doc_align = self.align[start_i:end_i]
            doc_align.data = doc_align.data - prev_tokens
            model_output = ModelOutput()
            for key, output in xp_model_output.items():
                if not isinstance(output, list):
                    model_output[key] = output[start:end]
                else:
                    model_output[key] = [t[start:end] for t in output]
            outputs.append(TransformerData(wordpieces=doc_tokens, model_output=model_output, align=doc_align))
            prev_tokens += doc_tokens.input_ids.size
            start += len(doc_spans)
        return outputs


def fast_forward(model, docs: List[Doc], is_train: bool) -> Tuple[FullTransformerBatch, Callable]:
    """spacy-transformers' TransformerModel forward (same inputs, outputs and gradients),
    with the alignment, the split per doc and the wordpiece strings computed by NumPy."""
    torch_ran()
    tokenizer = model.tokenizer
    nested_spans = model.attrs["get_spans"](docs)
    flat_spans = [span for doc_spans in nested_spans for span in doc_spans]
    case_types = model.attrs.get("case_types", False)
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        if case_types:
            raise ValueError(Errors.E515.format(problem=f"{type(tokenizer).__name__} gives no character offsets"))
        return upstream_forward(model, docs, is_train)
    if not flat_spans:
        return upstream_forward(model, docs, is_train)
    # Upstream also draws a number from Python's `random` here to decide whether to empty
    # torch's CUDA cache (with chance 0 in hybridnlp's configs). Not drawing it changes the
    # shuffling of every epoch after the first, so a run retrained with this forward is an
    # equally valid but not an identical run (docs/benchmarks.md, "make bench").
    # Upstream's huggingface_tokenize, less its one convert_ids_to_tokens call per text.
    texts = [span.text for span in flat_spans]
    encoding = tokenizer(
        texts,
        add_special_tokens=True,
        return_attention_mask=True,
        return_offsets_mapping=True,
        return_tensors="np",
        return_token_type_ids=None,
        padding="longest",
    )
    input_ids = encoding["input_ids"]
    ops = NumpyOps()  # on the CPU, like upstream: one copy to the device per batch
    token_type_ids = encoding.get("token_type_ids")
    if case_types:  # each wordpiece's capitalisation as its token type (_casing.py)
        base = case_type_base(model.transformer)
        token_type_ids = case_token_types(texts, encoding["offset_mapping"], base).astype(input_ids.dtype)
    wordpieces = WordpieceBatch(
        strings=wordpiece_strings(tokenizer, input_ids),
        input_ids=ops.asarray(input_ids, dtype=input_ids.dtype),
        attention_mask=ops.asarray2f(encoding["attention_mask"]),
        lengths=(input_ids != tokenizer.pad_token_id).sum(axis=1).tolist()
        if tokenizer.pad_token_id is not None
        else [input_ids.shape[1]] * input_ids.shape[0],
        token_type_ids=ops.asarray(token_type_ids, dtype=token_type_ids.dtype)
        if token_type_ids is not None
        else None,
    )
    align, doc_starts = align_by_offsets(flat_spans, encoding["offset_mapping"])
    wordpieces, align = truncate_oversize_splits(wordpieces, align, tokenizer.model_max_length)
    model_output, backprop_tensors = model.layers[0](wordpieces, is_train)
    output = IndexedTransformerBatch(
        spans=nested_spans, wordpieces=wordpieces, model_output=model_output, align=align, doc_starts=doc_starts
    )

    def backprop(d_output: FullTransformerBatch) -> List[Doc]:
        backprop_tensors(d_output.model_output)
        return docs

    return output, backprop
