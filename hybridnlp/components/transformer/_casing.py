"""Capitalisation as token types: an uncased transformer that sees each wordpiece's case.

An uncased model (all-MiniLM-L6-v2 is one) lower-cases its input, so "Apple" and "apple",
"US" and "us" reach it as the same wordpieces. Entity recognition leans on capitalisation,
and features added only under the head (``hybridnlp.TokenClassifier.v1``'s ``casing``) reach
the tagger after the 6 layers of context are computed. Here every wordpiece gets its case
as its *token type*, which BERT-style models add to the input embeddings of every position:

* ``0`` lower case or no letters (and the special and padding pieces): token type 0, the
  segment every single-text input uses, so such pieces embed exactly as before;
* ``1`` Title (first letter upper, the rest lower; also a single capital, "A"),
* ``2`` UPPER (two or more letters, none lower),
* ``3`` miXed (any other mix).

Cases 1-3 use three token-type rows appended to the model's table (``type_vocab_size`` grows
from n to n + 3), each starting as a copy of row 0: the grown model computes exactly what the
pretrained one did until fine-tuning moves the new rows apart. The HF config keeps the row
where case 1 starts (``hybridnlp_case_type_base``), so a saved pipeline rebuilds the same table.
"""

from typing import List

import numpy

from ...errors import Errors

CONFIG_KEY = "hybridnlp_case_type_base"
N_CASES = 3  # Title, UPPER, miXed (case 0 keeps token type 0)


def case_type_base(transformer) -> int:
    """The token type of case 1 in ``transformer`` (grown by :func:`add_case_types`), or E515."""
    base = getattr(transformer.config, CONFIG_KEY, None)
    if base is None:
        raise ValueError(Errors.E515.format(problem="the model's token-type table was never grown for casing"))
    return int(base)


def add_case_types(transformer) -> None:
    """Grow ``transformer``'s token-type embeddings by :data:`N_CASES` rows copied from row 0
    (in place, once: a model that already has them is left alone)."""
    import torch

    if getattr(transformer.config, CONFIG_KEY, None) is not None:
        return
    embeddings = getattr(transformer, "embeddings", None)
    table = getattr(embeddings, "token_type_embeddings", None)
    if not isinstance(table, torch.nn.Embedding):
        raise ValueError(
            Errors.E515.format(problem=f"{type(transformer).__name__} has no token-type embeddings")
        )
    n_types, width = table.weight.shape
    grown = torch.nn.Embedding(n_types + N_CASES, width, device=table.weight.device, dtype=table.weight.dtype)
    with torch.no_grad():
        grown.weight[:n_types] = table.weight
        grown.weight[n_types:] = table.weight[0]
    embeddings.token_type_embeddings = grown
    # BERT keeps a zero buffer of token types for calls without token_type_ids; it stays valid.
    transformer.config.type_vocab_size = n_types + N_CASES
    setattr(transformer.config, CONFIG_KEY, n_types)


def char_case_flags(text: str):
    """Two boolean arrays over the characters of ``text``: upper (changes when lower-cased)
    and lower (changes when upper-cased)."""
    codes = numpy.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    lowered, uppered = text.lower(), text.upper()
    if len(lowered) == len(text):
        is_upper = codes != numpy.frombuffer(lowered.encode("utf-32-le"), dtype="<u4")
    else:  # a character whose lower case is longer ("İ"): compare one by one
        is_upper = numpy.array([c != c.lower() for c in text], dtype=bool)
    if len(uppered) == len(text):
        is_lower = codes != numpy.frombuffer(uppered.encode("utf-32-le"), dtype="<u4")
    else:  # "ß" -> "SS"
        is_lower = numpy.array([c != c.upper() for c in text], dtype=bool)
    return is_upper, is_lower


def wordpiece_cases(texts: List[str], offsets: numpy.ndarray) -> numpy.ndarray:
    """The case (0-3, see the module docstring) of every wordpiece of a batch.

    texts: the text of each row of the batch.
    offsets: ``(n_texts, n_pieces, 2)`` character offsets of each row's wordpieces in its text
        (``(0, 0)`` for special and padding pieces), as fast tokenizers return them.
    """
    n_texts, n_pieces = offsets.shape[:2]
    text = "".join(texts)
    is_upper, is_lower = char_case_flags(text)
    n_upper = numpy.concatenate([[0], numpy.cumsum(is_upper)])
    n_lower = numpy.concatenate([[0], numpy.cumsum(is_lower)])
    row_base = numpy.cumsum([0] + [len(t) for t in texts[:-1]]).astype("int64")
    starts = offsets[:, :, 0].astype("int64") + row_base[:, None]
    ends = numpy.maximum(offsets[:, :, 1].astype("int64") + row_base[:, None], starts)
    upper = n_upper[ends] - n_upper[starts]
    lower = n_lower[ends] - n_lower[starts]
    nonempty = ends > starts
    first_upper = numpy.zeros(starts.shape, dtype=bool)
    first_upper[nonempty] = is_upper[starts[nonempty]]
    cases = numpy.full((n_texts, n_pieces), 3, dtype="int64")
    cases[upper == 0] = 0
    cases[(upper == 1) & first_upper] = 1
    cases[(upper >= 2) & (lower == 0)] = 2
    return cases


def case_token_types(texts: List[str], offsets: numpy.ndarray, base: int) -> numpy.ndarray:
    """Token type ids for a batch: 0 for case 0, ``base + case - 1`` for cases 1-3."""
    cases = wordpiece_cases(texts, offsets)
    return numpy.where(cases == 0, 0, base + cases - 1)
