"""Corpus readers and writers: CoNLL (NER), JSONL (text classification), spaCy DocBin.

A corpus is a directory with one file per split, ``{train,dev,test}.{conll,jsonl,spacy}``,
or a single file. :func:`resolve_corpus` also accepts a bare name, looked up under the
directory named by the environment variable ``$HYBRIDNLP_DATA`` (``banking77`` ->
``$HYBRIDNLP_DATA/banking77``). The task follows from the files: ``.conll`` is NER,
``.jsonl`` is text classification, and a ``.spacy`` DocBin is NER if its docs have
entities and text classification if they have categories.

Formats
-------
CoNLL (``.conll``, ``.iob``, ``.bio``)
    One token per line, a blank line between sentences, UTF-8. Columns are separated by a
    TAB (``token<TAB>tag``) or, when the first token line has no TAB, by spaces. More than
    two columns are accepted (``token POS chunk tag`` as in the CoNLL-2003 originals): the
    token is the FIRST column and the tag the LAST, and every line of a file must have as
    many columns as its first token line. ``-DOCSTART-`` lines are skipped and end the
    current sentence. A tag is ``O`` or ``PREFIX-TYPE`` (``B-PER``, ``I-creative-work``).
    The predicted doc of an example is ``Doc(nlp.vocab, words=tokens)`` with a space after
    every token but the last; the reference doc carries the entities in ``doc.ents`` (every
    other token is ``O``, not missing).
JSONL (``.jsonl``)
    One JSON object per line (blank lines are skipped), UTF-8. Either exclusive classes,
    ``{"text": ..., "label": "L"}``, or multi-label, ``{"text": ..., "labels": ["L1", ...]}``;
    one kind per file. The predicted doc is ``nlp.make_doc(text)``; the reference doc has
    ``cats`` with 1.0 for the text's labels and 0.0 for every other label seen anywhere in
    the same file (plus any extra ``labels`` passed in). Empty and whitespace-only texts
    are kept: they are valid docs.
DocBin (``.spacy``)
    Written by ``spacy.tokens.DocBin.to_disk``; each stored doc is the reference, and the
    predicted doc is ``nlp.make_doc(reference.text)``, as ``spacy.Corpus.v1`` does.

Tag schemes
-----------
IOB1, IOB2 (aliases ``iob``, ``bio``) and BILUO (aliases ``bioes``, ``iobes``; ``E-``/``S-``
are read as ``L-``/``U-``) are accepted. Unless a ``scheme`` is passed, it is detected per
file: any ``L-``/``U-``/``E-``/``S-`` tag means BILUO; otherwise a file in which some
``I-X`` starts an entity and ``B-X`` never follows anything but an ``X`` tag is IOB1; every
other file is IOB2.

Invalid tag sequences are repaired, not rejected
------------------------------------------------
Tags are turned into entities the way the CoNLL evaluation script ``conlleval`` reads them,
whatever the scheme: an ``I-X`` (or ``L-X``) that does not continue an ``X`` entity starts a
new entity (``O I-PER`` is a PER entity; ``B-PER I-LOC`` is a PER entity followed by a LOC
entity), and an entity left open (BILUO ``B-X O``) ends at its last tagged token. So IOB1,
IOB2 and BILUO encodings of the same sentences give identical entities. Pass
``strict=True`` to reject any sequence that is invalid in the file's scheme instead, with
an error naming the file and line.

Malformed input (wrong column count, empty token, bad tag syntax, invalid JSON, missing or
non-string ``"text"``, non-string labels, both or neither of ``"label"``/``"labels"``, bytes
that are not UTF-8) raises :class:`CorpusError` (a ``ValueError``) whose message starts with
``path:line:``.

The reader ``hybridnlp.Corpus.v1`` (:func:`create_corpus_reader`) is registered in spaCy's
``readers`` registry, so ``python -m spacy train CONFIG --paths.train FILE --paths.dev FILE``
reads these formats directly.
"""

import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import (Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence,
                    Set, Tuple, Union)

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.vocab import Vocab

from .errors import Errors

SPLITS = ("train", "dev", "test")
CONLL_SUFFIXES = (".conll", ".iob", ".bio")
JSONL_SUFFIXES = (".jsonl",)
DOCBIN_SUFFIXES = (".spacy",)
CORPUS_SUFFIXES = CONLL_SUFFIXES + JSONL_SUFFIXES + DOCBIN_SUFFIXES
DATA_ENV = "HYBRIDNLP_DATA"

# Canonical scheme names and their aliases.
SCHEMES = {
    "iob1": "iob1",
    "iob2": "iob2",
    "iob": "iob2",
    "bio": "iob2",
    "biluo": "biluo",
    "bioes": "biluo",
    "iobes": "biluo",
}
_SCHEME_PREFIXES = {"iob1": "BI", "iob2": "BI", "biluo": "BILUES"}
# BIOES letters are read as their BILUO equivalents.
_PREFIX_ALIASES = {"E": "L", "S": "U"}
_TAG_RE = re.compile(r"^([BILUES])-(\S+)$")
_DOCSTART = "-DOCSTART-"

PathLike = Union[str, Path]
Span3 = Tuple[int, int, str]


class CorpusError(ValueError):
    """Malformed or unusable corpus input; the message carries a numbered error code."""


class ConllSentence(NamedTuple):
    """One CoNLL sentence: tokens, their tags as written, decoded entity spans
    ``(start, end, label)`` (token offsets, end exclusive) and the 1-based line number of
    its first token."""

    tokens: List[str]
    tags: List[str]
    spans: List[Span3]
    line: int


class JsonlRecord(NamedTuple):
    """One JSONL text-classification record: its text, its positive labels, whether the
    record used the multi-label ``"labels"`` key, and its 1-based line number."""

    text: str
    labels: List[str]
    multi_label: bool
    line: int


# ----------------------------------------------------------------------------- helpers


def _problem(path: PathLike, line: int, problem: str) -> CorpusError:
    return CorpusError(Errors.E002.format(path=path, line=line, problem=problem))


def _require_file(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(Errors.E014.format(path=path))
    return path


def _file_format(path: Path) -> str:
    """Return "conll", "jsonl" or "docbin" for a corpus file, from its suffix."""
    suffix = path.suffix.lower()
    if suffix in CONLL_SUFFIXES:
        return "conll"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in DOCBIN_SUFFIXES:
        return "docbin"
    raise CorpusError(Errors.E005.format(suffix=path.suffix, path=path))


def _iter_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line, decoded as UTF-8 without its newline.

    Decoding line by line (rather than opening the file in text mode) lets a bad byte be
    reported with the line it is on.
    """
    with open(path, "rb") as file_:
        for lineno, raw in enumerate(file_, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise _problem(
                    path, lineno,
                    f"not valid UTF-8: byte 0x{raw[err.start]:02x} at column {err.start + 1}"
                    " (re-save the file as UTF-8)",
                ) from None
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield lineno, line.rstrip("\r\n")


def normalize_scheme(scheme: Optional[str]) -> Optional[str]:
    """Return the canonical scheme name ("iob1", "iob2" or "biluo") for ``scheme`` or one
    of its aliases; None stays None (detect per file). Raises CorpusError if unknown."""
    if scheme is None:
        return None
    canonical = SCHEMES.get(str(scheme).lower())
    if canonical is None:
        raise CorpusError(Errors.E011.format(scheme=scheme, known=", ".join(sorted(SCHEMES))))
    return canonical


def _split_tag(tag: str) -> Tuple[str, str]:
    """Split a syntactically valid tag into (prefix, type); "O" gives ("O", "").
    BIOES prefixes come back as BILUO ones."""
    if tag == "O":
        return "O", ""
    prefix, label = tag.split("-", 1)
    return _PREFIX_ALIASES.get(prefix, prefix), label


def _check_tag_syntax(tag: str) -> Optional[str]:
    if tag == "O" or _TAG_RE.match(tag):
        return None
    return (f"bad tag {tag!r}: expected 'O' or PREFIX-TYPE with PREFIX one of B, I, L, U, "
            "E, S (e.g. 'B-PER')")


# ----------------------------------------------------------------------------- tags <-> spans


def _end_of_chunk(prev_prefix: str, prefix: str, prev_type: str, type_: str) -> bool:
    # Same rules as conlleval's endOfChunk (with L/U for E/S).
    if prev_prefix in ("L", "U"):
        return True
    if prev_prefix in ("B", "I") and prefix in ("B", "U", "O"):
        return True
    return prev_prefix != "O" and prev_type != type_


def _start_of_chunk(prev_prefix: str, prefix: str, prev_type: str, type_: str) -> bool:
    # Same rules as conlleval's startOfChunk (with L/U for E/S).
    if prefix in ("B", "U"):
        return True
    if prev_prefix in ("L", "U", "O") and prefix in ("I", "L"):
        return True
    return prefix != "O" and prev_type != type_


def tags_to_spans(tags: Sequence[str]) -> List[Span3]:
    """Decode a tag sequence in any scheme (IOB1, IOB2, BILUO/BIOES) into entity spans.

    Returns ``(start, end, label)`` token offsets (end exclusive). Invalid sequences are
    repaired the way ``conlleval`` reads them: an ``I-X``/``L-X`` that does not continue an
    ``X`` entity starts a new one, and an entity left open ends at its last tagged token.
    Tags must be syntactically valid ("O" or PREFIX-TYPE).
    """
    spans: List[Span3] = []
    start: Optional[int] = None
    prev_prefix, prev_type = "O", ""
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, type_ = _split_tag(tag)
        if start is not None and _end_of_chunk(prev_prefix, prefix, prev_type, type_):
            spans.append((start, i, prev_type))
            start = None
        if _start_of_chunk(prev_prefix, prefix, prev_type, type_):
            start = i
        prev_prefix, prev_type = prefix, type_
    return spans


def spans_to_tags(n_tokens: int, spans: Iterable[Span3], scheme: str = "iob2") -> List[str]:
    """Encode non-overlapping entity spans ``(start, end, label)`` as tags in ``scheme``.

    ``scheme`` is "iob2" (default), "iob1", "biluo" or "bioes" (BILUO with E-/S- letters).
    Returns one tag per token.
    """
    letters = {"L": "E", "U": "S"} if str(scheme).lower() == "bioes" else {"L": "L", "U": "U"}
    scheme = normalize_scheme(scheme)
    tags = ["O"] * n_tokens
    prev_end, prev_label = -1, None
    for start, end, label in sorted(spans):
        if scheme == "iob2":
            tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
        elif scheme == "iob1":
            # IOB1 uses B- only where an entity directly follows one of the same type.
            first = "B" if (start == prev_end and label == prev_label) else "I"
            tags[start:end] = [f"{first}-{label}"] + [f"I-{label}"] * (end - start - 1)
        elif end - start == 1:
            tags[start] = f"{letters['U']}-{label}"
        else:
            tags[start:end] = ([f"B-{label}"] + [f"I-{label}"] * (end - start - 2)
                               + [f"{letters['L']}-{label}"])
        prev_end, prev_label = end, label
    return tags


def _sequence_problem(tags: Sequence[str], scheme: str) -> Optional[Tuple[int, str]]:
    """Return ``(token_index, problem)`` for the first tag that is invalid in ``scheme``
    (canonical name), or None if the sequence is valid."""
    prev_tag, prev_prefix, prev_type = "O", "O", ""
    for i, tag in enumerate(tags):
        prefix, type_ = _split_tag(tag)
        continues = prev_prefix in ("B", "I") and prev_type == type_
        if scheme == "iob2" and prefix == "I" and not continues:
            return i, (f"invalid IOB2 sequence: {tag} after {prev_tag} (an entity must start "
                       f"with B-{type_})")
        if scheme == "iob1" and prefix == "B" and not continues:
            return i, (f"invalid IOB1 sequence: {tag} after {prev_tag} (IOB1 uses B- only "
                       f"between two adjacent {type_} entities)")
        if scheme == "biluo":
            inside = prev_prefix in ("B", "I")
            if inside and not (prefix in ("I", "L") and type_ == prev_type):
                return i, (f"invalid BILUO sequence: {tag} after {prev_tag} (expected "
                           f"I-{prev_type} or L-{prev_type})")
            if not inside and prefix in ("I", "L"):
                return i, (f"invalid BILUO sequence: {tag} after {prev_tag} (an entity must "
                           f"start with B-{type_}, or be U-{type_})")
        prev_tag, prev_prefix, prev_type = tag, prefix, type_
    if scheme == "biluo" and prev_prefix in ("B", "I"):
        return len(tags) - 1, (f"invalid BILUO sequence: the sentence ends inside an entity "
                               f"({prev_tag} is not followed by L-{prev_type})")
    return None


def _detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    i_starts = False
    b_after_other = False
    for tags in tag_sequences:
        prev_prefix, prev_type = "O", ""
        for tag in tags:
            prefix, type_ = _split_tag(tag)
            if prefix in ("L", "U"):
                return "biluo"
            continues = prev_prefix in ("B", "I") and prev_type == type_
            if prefix == "I" and not continues:
                i_starts = True
            elif prefix == "B" and not continues:
                b_after_other = True
            prev_prefix, prev_type = prefix, type_
    return "iob1" if i_starts and not b_after_other else "iob2"


# ----------------------------------------------------------------------------- CoNLL


class _Row(NamedTuple):
    line: int
    token: str
    tag: str


def _iter_conll_rows(path: Path) -> Iterator[List[_Row]]:
    """Yield each sentence of a CoNLL file as a list of rows, checking line syntax."""
    sep: Optional[str] = None
    n_cols = 0
    first_line = 0
    rows: List[_Row] = []
    for lineno, line in _iter_lines(path):
        if not line.strip(" \t"):
            if rows:
                yield rows
                rows = []
            continue
        if line.lstrip(" \t").split(None, 1)[0] == _DOCSTART:
            if rows:
                yield rows
                rows = []
            continue
        if sep is None:
            sep = "\t" if "\t" in line else " "
        if sep == "\t":
            cols = [col.strip(" ") for col in line.rstrip(" \t").split("\t")]
        else:
            cols = re.split(r"[ \t]+", line.strip(" \t"))
        kind = "TAB-separated" if sep == "\t" else "space-separated"
        if len(cols) < 2:
            raise _problem(path, lineno, f"expected {kind} columns 'token{sep!r}tag', found "
                                         f"{len(cols)} column: {line!r}")
        if not n_cols:
            n_cols, first_line = len(cols), lineno
        elif len(cols) != n_cols:
            raise _problem(path, lineno, f"expected {n_cols} {kind} columns (as on line "
                                         f"{first_line}), found {len(cols)}: {line!r}")
        token, tag = cols[0], cols[-1]
        if not token.strip():
            raise _problem(path, lineno, f"empty token in {line!r}")
        bad = _check_tag_syntax(tag)
        if bad:
            raise _problem(path, lineno, bad)
        rows.append(_Row(lineno, token, tag))
    if rows:
        yield rows


def detect_scheme(path: PathLike) -> str:
    """Read a CoNLL file and return its tag scheme: "iob1", "iob2" or "biluo" (see the
    module docstring for the rule)."""
    path = _require_file(path)
    return _detect_scheme([row.tag for row in rows] for rows in _iter_conll_rows(path))


def iter_conll(path: PathLike, *, scheme: Optional[str] = None,
               strict: bool = False) -> Iterator[ConllSentence]:
    """Stream the sentences of a CoNLL file as :class:`ConllSentence` tuples.

    ``scheme`` is the tag scheme ("iob1", "iob2", "biluo" or an alias); None detects it
    from the file (one extra pass). Invalid tag sequences (an ``I-X`` after ``O``, BILUO
    ``L-X`` without ``B-X``, ...) are repaired as conlleval does: an ``I-X`` that does not
    continue an ``X`` entity starts a new entity. With ``strict=True`` they raise
    CorpusError naming file and line instead. Malformed lines always raise.
    """
    path = _require_file(path)
    canonical = normalize_scheme(scheme)
    if canonical is None:
        canonical = detect_scheme(path)
    allowed = _SCHEME_PREFIXES[canonical]
    for rows in _iter_conll_rows(path):
        tags = [row.tag for row in rows]
        for row in rows:
            if row.tag != "O" and row.tag[0] not in allowed:
                raise _problem(path, row.line, f"tag {row.tag!r} is not valid in the "
                                               f"{canonical} scheme (prefixes "
                                               f"{', '.join(allowed)})")
        if strict:
            found = _sequence_problem(tags, canonical)
            if found is not None:
                index, problem = found
                raise _problem(path, rows[index].line, problem + "; strict=False repairs it")
        yield ConllSentence([row.token for row in rows], tags, tags_to_spans(tags),
                            rows[0].line)


def _conll_example(nlp: Language, sents: Sequence[ConllSentence]) -> Example:
    """One Example from consecutive sentences: tokens joined by single spaces, the
    sentence boundaries set on the reference (``doc.sents``), entities offset."""
    words: List[str] = []
    sent_starts: List[bool] = []
    ents: List[Span3] = []
    for sent in sents:
        offset = len(words)
        words.extend(sent.tokens)
        sent_starts.extend([True] + [False] * (len(sent.tokens) - 1))
        ents.extend((start + offset, end + offset, label) for start, end, label in sent.spans)
    spaces = [True] * (len(words) - 1) + [False]
    predicted = Doc(nlp.vocab, words=words, spaces=spaces)
    reference = Doc(nlp.vocab, words=words, spaces=spaces, sent_starts=sent_starts)
    reference.ents = [Span(reference, start, end, label=label) for start, end, label in ents]
    return Example(predicted, reference)


def _conll_examples(path: Path, nlp: Language, scheme: Optional[str],
                    strict: bool, n_sents: int = 1) -> Iterator[Example]:
    group: List[ConllSentence] = []
    for sent in iter_conll(path, scheme=scheme, strict=strict):
        group.append(sent)
        if len(group) >= n_sents:
            yield _conll_example(nlp, group)
            group = []
    if group:
        yield _conll_example(nlp, group)


def _check_n_sents(n_sents: int) -> int:
    if isinstance(n_sents, bool) or not isinstance(n_sents, int) or n_sents < 1:
        raise ValueError(Errors.E015.format(value=n_sents))
    return n_sents


# ----------------------------------------------------------------------------- JSONL


def _record_problem(obj: object) -> Optional[str]:
    """Return what is wrong with a parsed JSONL record, or None if it is valid."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, found {type(obj).__name__}"
    if "text" not in obj:
        return 'missing "text"'
    if not isinstance(obj["text"], str):
        return f'"text" must be a string, found {type(obj["text"]).__name__}'
    has_label, has_labels = "label" in obj, "labels" in obj
    if has_label and has_labels:
        return ('has both "label" and "labels": use "label" for one class per text or '
                '"labels" for multi-label')
    if not has_label and not has_labels:
        return 'has neither "label" (one class per text) nor "labels" (multi-label)'
    if has_label:
        label = obj["label"]
        if not isinstance(label, str):
            return f'"label" must be a string, found {type(label).__name__} {label!r:.40}'
        if not label:
            return '"label" is an empty string'
        return None
    labels = obj["labels"]
    if not isinstance(labels, list):
        return f'"labels" must be a list of strings, found {type(labels).__name__}'
    for label in labels:
        if not isinstance(label, str):
            return (f'"labels" must be a list of strings, found {type(label).__name__} '
                    f'{label!r:.40}')
        if not label:
            return '"labels" contains an empty string'
    return None


def iter_jsonl(path: PathLike) -> Iterator[JsonlRecord]:
    """Stream the records of a JSONL text-classification file as :class:`JsonlRecord`.

    Blank lines are skipped; empty texts are kept. A malformed line, or a file mixing
    ``"label"`` and ``"labels"`` records, raises CorpusError naming file and line.
    """
    path = _require_file(path)
    first_kind: Optional[Tuple[bool, int]] = None
    for lineno, line in _iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise _problem(path, lineno, f"invalid JSON: {err.msg} at column {err.colno}") \
                from None
        problem = _record_problem(obj)
        if problem:
            raise _problem(path, lineno, problem)
        multi = "labels" in obj
        if first_kind is None:
            first_kind = (multi, lineno)
        elif first_kind[0] != multi:
            used, other = ("labels", "label") if multi else ("label", "labels")
            raise _problem(path, lineno, f'uses "{used}" but line {first_kind[1]} uses '
                                         f'"{other}": use one kind per file')
        labels = list(dict.fromkeys(obj["labels"])) if multi else [obj["label"]]
        yield JsonlRecord(obj["text"], labels, multi, lineno)


def _jsonl_examples(path: Path, nlp: Language,
                    labels: Optional[Iterable[str]]) -> Iterator[Example]:
    # First pass: the label set of the whole file (and validation, so a bad line fails
    # before any example is produced). Second pass: build examples, one at a time.
    all_labels: Set[str] = set(labels or ())
    for record in iter_jsonl(path):
        all_labels.update(record.labels)
    negatives = {label: 0.0 for label in sorted(all_labels)}
    for record in iter_jsonl(path):
        predicted = nlp.make_doc(record.text)
        reference = predicted.copy()
        cats = dict(negatives)
        cats.update((label, 1.0) for label in record.labels)
        reference.cats = cats
        yield Example(predicted, reference)


# ----------------------------------------------------------------------------- DocBin


def _load_docbin(path: Path, vocab: Vocab) -> List[Doc]:
    try:
        return list(DocBin().from_disk(path).get_docs(vocab))
    except Exception as err:  # any failure to decode means the file is not a DocBin
        raise CorpusError(Errors.E006.format(path=path, problem=f"{type(err).__name__}: "
                                                                f"{err}")) from err


def _docbin_examples(path: Path, nlp: Language) -> Iterator[Example]:
    for reference in _load_docbin(path, nlp.vocab):
        yield Example(nlp.make_doc(reference.text), reference)


# ----------------------------------------------------------------------------- public readers


def iter_examples(path: PathLike, nlp: Language, *, scheme: Optional[str] = None,
                  strict: bool = False,
                  labels: Optional[Iterable[str]] = None,
                  n_sents: int = 1) -> Iterator[Example]:
    """Stream the :class:`spacy.training.Example` objects of one corpus file.

    The format follows from the suffix (.conll/.iob/.bio, .jsonl, .spacy). ``scheme`` and
    ``strict`` apply to CoNLL files (see :func:`iter_conll`: invalid tag sequences are
    repaired as conlleval does unless ``strict``). ``n_sents`` groups that many consecutive
    CoNLL sentences into one doc (like ``spacy convert -n``), so a model reads each
    sentence with its neighbours as context; entity scores do not depend on it, since no
    entity crosses a sentence boundary. ``labels`` adds categories that get 0.0 in JSONL
    references besides those seen in the file. Raises CorpusError (file:line) on
    malformed input.
    """
    path = _require_file(path)
    fmt = _file_format(path)
    _check_n_sents(n_sents)
    if fmt == "conll":
        return _conll_examples(path, nlp, scheme, strict, n_sents)
    if n_sents != 1:
        raise ValueError(Errors.E016.format(path=path, value=n_sents))
    if fmt == "jsonl":
        return _jsonl_examples(path, nlp, labels)
    return _docbin_examples(path, nlp)


def read_examples(path: PathLike, nlp: Language, *, scheme: Optional[str] = None,
                  strict: bool = False,
                  labels: Optional[Iterable[str]] = None,
                  n_sents: int = 1) -> List[Example]:
    """Read all examples of one corpus file into a list (see :func:`iter_examples`).

    CoNLL: predicted doc = the tokens, reference doc has ``doc.ents``; invalid tag
    sequences are repaired as conlleval does (an ``I-X`` that does not continue an ``X``
    entity starts a new entity) unless ``strict=True``, which raises with file:line.
    JSONL: reference ``doc.cats`` has 1.0 for the text's labels and 0.0 for every other
    label seen in the file. DocBin: the stored docs are the references. ``n_sents``
    groups consecutive CoNLL sentences into one doc (see :func:`iter_examples`).
    """
    return list(iter_examples(path, nlp, scheme=scheme, strict=strict, labels=labels,
                              n_sents=n_sents))


# ----------------------------------------------------------------------------- writers


def _reference_doc(item: Union[Doc, Example]) -> Doc:
    return item.reference if isinstance(item, Example) else item


def write_conll(path: PathLike, examples_or_docs: Iterable[Union[Example, Doc]], *,
                scheme: str = "iob2") -> int:
    """Write docs (or the reference docs of examples) as ``token<TAB>tag`` CoNLL, one
    sentence block per doc, tags from ``doc.ents`` in ``scheme`` ("iob2", "iob1", "biluo",
    "bioes"). Whitespace-only tokens outside entities (spaCy's tokens for runs of spaces or
    newlines) are left out, since CoNLL cannot hold them; docs with no other token are
    left out too. Returns the number of sentences written."""
    normalize_scheme(scheme)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as file_:
        for index, item in enumerate(examples_or_docs):
            doc = _reference_doc(item)
            tags = spans_to_tags(len(doc), [(e.start, e.end, e.label_) for e in doc.ents],
                                 scheme)
            lines = []
            for token, tag in zip(doc, tags):
                if not token.text.strip() and tag == "O":
                    continue
                if not token.text.strip() or "\t" in token.text or "\n" in token.text:
                    raise CorpusError(Errors.E013.format(
                        what="doc", index=index, path=path,
                        problem=f"token {token.i} {token.text!r} cannot be written in CoNLL "
                                "(empty, or holds a TAB or newline)"))
                lines.append(f"{token.text}\t{tag}\n")
            if lines:
                file_.write("".join(lines) + "\n")
                n_written += 1
    return n_written


def write_jsonl(path: PathLike, docs_or_records: Iterable[Union[Doc, Example, dict]], *,
                multi_label: bool = False, threshold: float = 0.5) -> int:
    """Write text-classification data as JSONL, one record per line.

    Items are dicts (written as given after the same checks the reader makes), docs, or
    examples (their reference doc). A doc becomes ``{"text", "label"}`` from the one
    category scoring at least ``threshold`` or, with ``multi_label=True``,
    ``{"text", "labels"}`` with every such category. Returns the number of records.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as file_:
        for index, item in enumerate(docs_or_records):
            if isinstance(item, dict):
                record = item
                problem = _record_problem(record)
                if problem:
                    raise CorpusError(Errors.E013.format(what="record", index=index,
                                                         path=path, problem=problem))
            else:
                doc = _reference_doc(item)
                positives = sorted(label for label, score in doc.cats.items()
                                   if score >= threshold)
                if multi_label:
                    record = {"text": doc.text, "labels": positives}
                elif len(positives) == 1:
                    record = {"text": doc.text, "label": positives[0]}
                else:
                    raise CorpusError(Errors.E013.format(
                        what="doc", index=index, path=path,
                        problem=f"{len(positives)} categories score >= {threshold} "
                                f"({positives}); exclusive data needs exactly one, or "
                                "pass multi_label=True"))
            file_.write(json.dumps(record, ensure_ascii=False) + "\n")
            n_written += 1
    return n_written


# ----------------------------------------------------------------------------- corpora


def _file_task(path: Path) -> Tuple[str, bool, List[str]]:
    """Return (task, multi_label, sorted labels) of one corpus file."""
    fmt = _file_format(path)
    if fmt == "conll":
        labels = {_split_tag(row.tag)[1] for rows in _iter_conll_rows(path) for row in rows
                  if row.tag != "O"}
        return "ner", False, sorted(labels)
    if fmt == "jsonl":
        labels: Set[str] = set()
        multi = False
        for record in iter_jsonl(path):
            labels.update(record.labels)
            multi = record.multi_label
        return "textcat", multi, sorted(labels)
    docs = _load_docbin(path, Vocab())
    ent_labels = {ent.label_ for doc in docs for ent in doc.ents}
    if ent_labels:
        return "ner", False, sorted(ent_labels)
    cat_labels = {label for doc in docs for label in doc.cats}
    if cat_labels:
        multi = any(sum(score >= 0.5 for score in doc.cats.values()) != 1 for doc in docs)
        return "textcat", multi, sorted(cat_labels)
    raise CorpusError(Errors.E003.format(path=path))


def _split_files(directory: Path) -> Dict[str, Path]:
    files: Dict[str, Path] = {}
    for split in SPLITS:
        found = [directory / f"{split}{suffix}" for suffix in CORPUS_SUFFIXES
                 if (directory / f"{split}{suffix}").is_file()]
        if len(found) > 1:
            raise CorpusError(Errors.E010.format(
                path=directory, problem=f"split '{split}' has several files "
                                        f"({', '.join(p.name for p in found)})"))
        if found:
            files[split] = found[0]
    return files


def _data_dir() -> Optional[Path]:
    value = os.environ.get(DATA_ENV)
    return Path(value) if value else None


def known_corpora() -> List[str]:
    """Return the names of the corpora under ``$HYBRIDNLP_DATA`` (directories holding at
    least one ``{train,dev,test}.{conll,jsonl,spacy}`` file), sorted."""
    data_dir = _data_dir()
    if data_dir is None or not data_dir.is_dir():
        return []
    return sorted(child.name for child in data_dir.iterdir()
                  if child.is_dir() and not child.name.startswith(".")
                  and any((child / f"{split}{suffix}").is_file()
                          for split in SPLITS for suffix in CORPUS_SUFFIXES))


@dataclass
class CorpusInfo:
    """A resolved corpus: its name, location, task ("ner" or "textcat"), whether its
    categories are multi-label, its files by split, and the sorted labels (entity types or
    categories) of its train split (of its first split if it has no train split)."""

    name: str
    path: Path
    task: str
    multi_label: bool
    files: Dict[str, Path] = field(default_factory=dict)
    labels: List[str] = field(default_factory=list)

    def examples(self, split: str, nlp: Language, **kwargs) -> List[Example]:
        """Read the examples of one split (see :func:`read_examples`; keyword arguments
        are passed on). For text classification every label of the corpus is set in each
        reference's cats, so splits agree on the label set."""
        if split not in self.files:
            raise CorpusError(Errors.E004.format(path=self.path, split=split,
                                                 available=", ".join(self.files) or "none"))
        if self.task == "textcat":
            kwargs["labels"] = list(self.labels) + list(kwargs.get("labels") or ())
        return read_examples(self.files[split], nlp, **kwargs)


def resolve_corpus(name_or_path: PathLike) -> CorpusInfo:
    """Find a corpus by path (a directory of split files or a single file) or by name
    under ``$HYBRIDNLP_DATA``, and return its :class:`CorpusInfo`.

    An existing path wins over a name. A single file becomes the split named by its stem
    if that is train/dev/test, else "train". Raises CorpusError: E001 for an unknown name
    (listing the known ones), E003 if no corpus file is found, E010 if splits disagree on
    format or task, E002 for malformed files.
    """
    path = Path(name_or_path)
    name = str(name_or_path)
    if not path.exists():
        data_dir = _data_dir()
        candidate = data_dir / name if data_dir is not None else None
        if candidate is None or not candidate.exists():
            raise CorpusError(Errors.E001.format(
                name=name, data_dir=data_dir if data_dir is not None else f"${DATA_ENV} unset",
                known=", ".join(known_corpora()) or "none"))
        path = candidate
    else:
        name = path.resolve().name if path.is_dir() else (
            path.resolve().parent.name if path.stem in SPLITS else path.stem)
    if path.is_dir():
        files = _split_files(path)
        if not files:
            raise CorpusError(Errors.E003.format(path=path))
    else:
        _file_format(path)
        files = {path.stem if path.stem in SPLITS else "train": path}
    tasks = {split: _file_task(file_) for split, file_ in files.items()}
    kinds = {task for task, _, _ in tasks.values()}
    if len(kinds) > 1:
        raise CorpusError(Errors.E010.format(
            path=path, problem="splits have different tasks (" + ", ".join(
                f"{split}: {task[0]}" for split, task in tasks.items()) + ")"))
    main_split = "train" if "train" in files else next(iter(files))
    task, multi_label, labels = tasks[main_split]
    return CorpusInfo(name=name, path=path, task=task, multi_label=multi_label,
                      files=files, labels=labels)


# ----------------------------------------------------------------------------- spaCy reader


class CorpusReader:
    """Callable ``nlp -> Iterator[Example]`` over one corpus file (or a directory of
    them), as returned by the ``hybridnlp.Corpus.v1`` reader. The file is read again on
    every call, streaming unless ``shuffle`` is set."""

    def __init__(self, path: Optional[PathLike], *, limit: int = 0, shuffle: bool = False,
                 strict: bool = False, scheme: Optional[str] = None,
                 n_sents: int = 1) -> None:
        self.path = Path(path) if path is not None else None
        self.limit = limit
        self.shuffle = shuffle
        self.strict = strict
        self.scheme = normalize_scheme(scheme)
        self.n_sents = _check_n_sents(n_sents)
        self.paths = self._find_paths(self.path) if self.path is not None else []

    @staticmethod
    def _find_paths(path: Path) -> List[Path]:
        _require_file(path)
        if not path.is_dir():
            _file_format(path)
            return [path]
        splits = sorted(_split_files(path))
        if splits:
            raise CorpusError(Errors.E012.format(path=path, splits=", ".join(splits)))
        found = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES)
        if not found:
            raise CorpusError(Errors.E003.format(path=path))
        return found

    def _iter(self, nlp: Language) -> Iterator[Example]:
        count = 0
        for path in self.paths:
            for example in iter_examples(path, nlp, scheme=self.scheme, strict=self.strict,
                                         n_sents=self.n_sents):
                if self.limit >= 1 and count >= self.limit:
                    return
                yield example
                count += 1

    def __call__(self, nlp: Language) -> Iterator[Example]:
        if self.shuffle:
            examples = list(self._iter(nlp))
            random.shuffle(examples)
            yield from examples
        else:
            yield from self._iter(nlp)


@spacy.registry.readers("hybridnlp.Corpus.v1")
def create_corpus_reader(path: Optional[Path], limit: int = 0, shuffle: bool = False,
                         strict: bool = False, scheme: Optional[str] = None,
                         n_sents: int = 1) -> Callable[[Language], Iterable[Example]]:
    """spaCy reader for CoNLL, JSONL and DocBin files (``@readers = "hybridnlp.Corpus.v1"``).

    Returns a callable ``nlp -> Iterator[Example]`` like ``spacy.Corpus.v1``. ``limit``
    keeps the first N examples (0 = all), ``shuffle`` shuffles them on every call,
    ``strict``/``scheme`` as in :func:`iter_conll` (invalid tag sequences are repaired as
    conlleval does unless ``strict``). ``n_sents`` groups that many consecutive CoNLL
    sentences into one doc (``limit`` then counts docs). A ``path`` of None (an unset
    ``paths.dev``) yields no examples; a missing file raises at once.
    """
    return CorpusReader(path, limit=limit, shuffle=shuffle, strict=strict, scheme=scheme,
                        n_sents=n_sents)
