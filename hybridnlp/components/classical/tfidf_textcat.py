"""TF-IDF features + linear SVM text classifier, as a spaCy pipeline component.

Features come in two blocks, each L2-normalised on its own and then weighted
(``word_weight``, ``char_weight``):

- the *word* block: n-grams (``word_ngram_range``) of the doc's spaCy tokens, lowercased;
  optionally numbers replaced by their shape (``word_number_shape``: 2005 -> dddd) and the
  original-case unigram added (``word_keep_case``: ``=Paris``). Two kinds of start features
  carry what the opening of a text says (the question type in "How many ...", "What city
  ..."): the first 1..``prefix_tokens`` tokens (``<s> how many``) and the first token paired
  with each of the next ``start_pairs`` tokens (``what ~ city`` in "What is the largest
  city");
- the *char* block: character n-grams (``char_ngram_range``) of the lowercased text, either
  ``char_wb`` (inside word boundaries, as scikit-learn's analyzer of that name) or ``char``
  (across words, so ``"s of t"`` carries a little word order). ``char_analyzer`` may list both:
  the better one is chosen with C.

Each block is a bag of counts, with sublinear tf (1 + log tf) by default, times smoothed idf
(``ln((1 + n) / (1 + df)) + 1``, as scikit-learn's TfidfTransformer). The classifier is
scikit-learn's ``LinearSVC``: for exclusive classes one joint Crammer-Singer problem
(``multi_class``, or one-vs-rest), for multi-label one binary SVM per label.

Selection: ``C`` and ``char_analyzer`` may be lists of candidates. With a ``dev_corpus`` in
``initialize`` every candidate is fitted on the training data and scored on dev; without
one, by ``calibration_folds``-fold cross-validation on the training data. The score is the
held-out log-loss after a one-parameter temperature fit (see ``_selection_scores``): unlike
accuracy it does not tie on small or easy dev sets.

Probabilities are calibrated on out-of-fold decision values (``calibration_folds``-fold
cross-validation on the training data, for the chosen candidate):

- ``calibration = "temperature"`` (default for exclusive classes): ``softmax(a * s)`` with one
  scale ``a`` fitted by log-loss. It keeps the SVM's argmax, so accuracy is the SVM's, and
  with one parameter it cannot overfit small classes (measured on the test splits: expected
  calibration error of the top label 0.01-0.03).
- ``calibration = "sigmoid"`` (default for multi-label): Platt scaling per label,
  ``sigmoid(a_k * s_k + b_k)`` fitted with Platt's smoothed targets; for exclusive classes
  the per-label probabilities are normalised to sum to 1 (binary: one sigmoid, p0 = 1 - p1).
  For multi-label data ``"temperature"`` means one sigmoid shared by all labels.

Nothing is pickled: the feature vocabulary is JSON, every array is a ``.npy`` file read with
``allow_pickle=False`` and the settings are JSON. Prediction is a batch operation (one sparse
matrix per batch, char_wb n-gram ids cached per word), so the component runs at least as
fast as the bare scikit-learn model (``benchmarks/tfidf_speed.py``).
"""

import io
import json
import re
from array import array
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import srsly
from spacy import util
from spacy.language import Language
from spacy.attrs import IDX, IS_SPACE, LENGTH
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab

from ...errors import Errors
from .._pipe import BatchPipe, keep_given_settings
from ..outputs import ensure_extensions, write_cats

DEFAULT_TFIDF_TEXTCAT_CONFIG: Dict[str, Any] = {
    "word_ngram_range": [1, 2],
    "word_lowercase": True,
    "word_keep_case": False,
    "word_number_shape": False,
    "prefix_tokens": 3,
    "start_pairs": 6,
    "char_analyzer": ["char_wb", "char"],
    "char_ngram_range": [2, 5],
    "char_lowercase": True,
    "min_df": 1,
    "max_df": 1.0,
    "max_features": None,
    "sublinear_tf": True,
    "word_weight": 1.0,
    "char_weight": 1.0,
    "C": [0.1, 0.2, 0.5, 1.0, 2.0],
    "class_weight": None,
    "multi_class": "crammer_singer",
    "max_iter": 2000,
    "multi_label": False,
    "threshold": 0.5,
    "calibration": None,
    "calibration_folds": 5,
    "source": None,
    "set_doc_cats": True,
    "scorer": None,
}

CHAR_ANALYZERS = ("char_wb", "char")
CALIBRATIONS = ("temperature", "sigmoid")
# Files of a saved component (``to_disk``); arrays are stored one per .npy file.
CFG_FILE = "cfg.json"
VOCAB_FILE = "features.json"  # not "vocab": spaCy excludes that key (its Vocab) when saving pipes
ARRAYS_DIR = "arrays"
ARRAY_NAMES = ("idf_word", "idf_char", "coef", "intercept", "cal_a", "cal_b")
# Settings whose value from the config holds over the saved one when a pipeline loads.
CONFIG_SETTINGS = ("threshold", "source", "set_doc_cats")
# Batches of at most this many docs are scored without a sparse matrix (_decision_direct).
DIRECT_DOCS = 8
START = "<s>"
_TOKEN_ATTRS = [IDX, LENGTH, IS_SPACE]
_DIGIT = re.compile(r"\d")
_SHAPE_SUBS = ((re.compile(r"[A-Z]"), "X"), (re.compile(r"[a-z]"), "x"), (re.compile(r"\d"), "d"))


def tfidf_textcat_score(examples: Iterable[Example], *, multi_label: bool = False, **kwargs) -> Dict[str, Any]:
    """spaCy's category scores (``cats_macro_f``, ``cats_micro_f``, ``cats_score``...).

    Exclusive classes are scored like spaCy's ``textcat`` (argmax vs gold), multi-label like
    ``textcat_multilabel`` (each probability against ``threshold``).
    """
    return Scorer.score_cats(examples, "cats", multi_label=multi_label, **kwargs)


class TfidfTextCategorizer(BatchPipe):
    """Text classifier: TF-IDF word and character n-grams + calibrated linear SVM.

    Writes ``doc.cats`` (unless ``set_doc_cats`` is false) and ``doc._.hybrid_cats[source]``
    with one probability per label. Fitted in ``initialize``.
    """

    def __init__(
        self,
        vocab: Vocab,
        name: str = "tfidf_textcat",
        *,
        word_ngram_range: Optional[Sequence[int]] = (1, 2),
        word_lowercase: bool = True,
        word_keep_case: bool = False,
        word_number_shape: bool = False,
        prefix_tokens: int = 3,
        start_pairs: int = 6,
        char_analyzer: Union[str, Sequence[str]] = ("char_wb", "char"),
        char_ngram_range: Optional[Sequence[int]] = (2, 5),
        char_lowercase: bool = True,
        min_df: Union[int, float] = 1,
        max_df: Union[int, float] = 1.0,
        max_features: Optional[int] = None,
        sublinear_tf: bool = True,
        word_weight: float = 1.0,
        char_weight: float = 1.0,
        C: Union[float, Sequence[float]] = (0.1, 0.2, 0.5, 1.0, 2.0),
        class_weight: Optional[str] = None,
        multi_class: str = "crammer_singer",
        max_iter: int = 2000,
        multi_label: bool = False,
        threshold: float = 0.5,
        calibration: Optional[str] = None,
        calibration_folds: int = 5,
        source: Optional[str] = None,
        set_doc_cats: bool = True,
        scorer: Optional[Callable] = None,
    ) -> None:
        self.vocab = vocab
        self.name = name
        self.cfg: Dict[str, Any] = {
            "word_ngram_range": _ngram_range(word_ngram_range, "word_ngram_range", name),
            "word_lowercase": bool(word_lowercase),
            "word_keep_case": bool(word_keep_case),
            "word_number_shape": bool(word_number_shape),
            "prefix_tokens": int(prefix_tokens),
            "start_pairs": int(start_pairs),
            "char_analyzer": list(char_analyzer) if isinstance(char_analyzer, (list, tuple)) else char_analyzer,
            "char_ngram_range": _ngram_range(char_ngram_range, "char_ngram_range", name),
            "char_lowercase": bool(char_lowercase),
            "min_df": min_df,
            "max_df": max_df,
            "max_features": max_features,
            "sublinear_tf": bool(sublinear_tf),
            "word_weight": float(word_weight),
            "char_weight": float(char_weight),
            "C": [float(c) for c in C] if isinstance(C, (list, tuple)) else float(C),
            "class_weight": class_weight,
            "multi_class": multi_class,
            "max_iter": int(max_iter),
            "multi_label": bool(multi_label),
            "threshold": float(threshold),
            "calibration": calibration or ("sigmoid" if multi_label else "temperature"),
            "calibration_folds": int(calibration_folds),
            "source": source or name,
            "set_doc_cats": bool(set_doc_cats),
            # Learned state, filled by initialize / from_disk.
            "labels": [],
            "C_": None,
            "char_analyzer_": None,
            "selection_": None,
        }
        self._validate_cfg()
        self._source_setting = source  # as the config gave it (null: the component's name)
        self.scorer = scorer if scorer is not None else tfidf_textcat_score
        self._vocab_word: List[str] = []
        self._vocab_char: List[str] = []
        self._index_word: Dict[str, int] = {}
        self._index_char: Dict[str, int] = {}
        self._char_cache: Dict[Union[str, Tuple[str, int]], array] = {}
        self._arrays: Optional[Dict[str, np.ndarray]] = None
        ensure_extensions()

    # ------------------------------------------------------------------ settings
    def _validate_cfg(self) -> None:
        cfg = self.cfg

        def bad(key: str, hint: str) -> ValueError:
            return ValueError(Errors.E104.format(name=self.name, key=key, value=cfg[key], hint=hint))

        analyzers = cfg["char_analyzer"] if isinstance(cfg["char_analyzer"], list) else [cfg["char_analyzer"]]
        if not analyzers or any(a not in CHAR_ANALYZERS for a in analyzers):
            raise bad("char_analyzer", f"Use one of {list(CHAR_ANALYZERS)} or a list of them (chosen on dev).")
        if cfg["calibration"] not in CALIBRATIONS:
            raise bad("calibration", f"Use one of {list(CALIBRATIONS)}.")
        if cfg["multi_class"] not in ("ovr", "crammer_singer"):
            raise bad("multi_class", "Use \"ovr\" (one-vs-rest) or \"crammer_singer\" (joint multi-class SVM).")
        if cfg["class_weight"] not in (None, "balanced"):
            raise bad("class_weight", "Use null or \"balanced\".")
        if cfg["word_ngram_range"] is None and cfg["char_ngram_range"] is None and cfg["prefix_tokens"] <= 0 and cfg["start_pairs"] <= 0:
            raise bad("word_ngram_range", "At least one feature block (word, char, prefix) must be on.")
        cs = cfg["C"] if isinstance(cfg["C"], list) else [cfg["C"]]
        if not cs or any(not c > 0 for c in cs):
            raise bad("C", "C must be a positive number or a non-empty list of them.")
        if cfg["calibration_folds"] < 2:
            raise bad("calibration_folds", "Use 2 or more folds.")
        if not 0.0 <= cfg["threshold"] <= 1.0:
            raise bad("threshold", "Use a probability between 0 and 1.")

    @property
    def labels(self) -> Tuple[str, ...]:
        """The labels, in the column order of the scores."""
        return tuple(self.cfg["labels"])

    @property
    def is_initialized(self) -> bool:
        return self._arrays is not None

    def add_label(self, label: str) -> int:
        """Add a label before ``initialize`` (afterwards the model would need refitting)."""
        if self.is_initialized:
            raise ValueError(Errors.E300.format(name=self.name, label=label))
        if label in self.cfg["labels"]:
            return 0
        self.cfg["labels"].append(label)
        return 1

    # ------------------------------------------------------------------ features
    def _word_features(self, doc: Doc) -> List[str]:
        """The word-block feature strings of one doc (with repeats)."""
        cfg = self.cfg
        words: List[str] = []
        if cfg["word_ngram_range"] is None and cfg["prefix_tokens"] <= 0 and cfg["start_pairs"] <= 0:
            return words
        # One array call instead of a Token object per token: the word block's main cost.
        text = doc.text
        texts = [text[i : i + n] for i, n, space in doc.to_array(_TOKEN_ATTRS).tolist() if not space]
        toks = [w.lower() for w in texts] if cfg["word_lowercase"] else texts
        if cfg["word_number_shape"]:
            toks = [_shape(w) if _DIGIT.search(w) else w for w in toks]
        rng = cfg["word_ngram_range"]
        if rng is not None:
            lo, hi = rng
            for n in range(lo, hi + 1):
                if n == 1:
                    words.extend(toks)
                else:
                    words.extend([" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)])
        if cfg["word_keep_case"]:
            # The original-case unigram only where case carries something extra.
            words.extend(["=" + w for w, low in zip(texts, toks) if w != low])
        k = min(cfg["prefix_tokens"], len(toks))
        words.extend([START + " " + " ".join(toks[:i]) for i in range(1, k + 1)])
        if cfg["start_pairs"] > 0 and toks:
            # The first token with each later one: "what ~ city" in "What is the largest city".
            first = toks[0] + " ~ "
            words.extend([first + w for w in toks[1 : 1 + cfg["start_pairs"]]])
        return words

    def _char_text(self, doc: Doc) -> str:
        return doc.text.lower() if self.cfg["char_lowercase"] else doc.text

    def _char_features(self, doc: Doc) -> List[str]:
        """The char-block feature strings of one doc (with repeats)."""
        rng = self.cfg["char_ngram_range"]
        if rng is None:
            return []
        lo, hi = rng
        chars: List[str] = []
        for piece in _char_pieces(self._char_text(doc), self.cfg["char_analyzer_"], hi):
            chars.extend(_piece_ngrams(piece, lo, hi))
        return chars

    def _char_ids(self, docs: Sequence[Doc]) -> Tuple[np.ndarray, List[int]]:
        """Vocabulary ids of the char n-grams of each doc, flat, and the count per doc.

        The n-grams of a text are those of its pieces (words, and for ``char`` the windows
        around word boundaries), so each piece's ids are computed once and cached: pieces
        repeat (Zipf), which makes this the cheap part of prediction.
        """
        lo, hi = self.cfg["char_ngram_range"]
        analyzer = self.cfg["char_analyzer_"]
        index = self._index_char
        cache = self._char_cache
        if len(cache) > 500_000:
            cache.clear()
        # Typed arrays: extending one by another is a memory copy, and numpy reads the
        # result without converting Python ints.
        flat = array("q")
        lens: List[int] = []
        for doc in docs:
            start = len(flat)
            for piece in _char_pieces(self._char_text(doc), analyzer, hi):
                ids = cache.get(piece)
                if ids is None:
                    ids = cache[piece] = array("q", [index[g] for g in _piece_ngrams(piece, lo, hi) if g in index])
                flat.extend(ids)
            lens.append(len(flat) - start)
        return np.frombuffer(flat, dtype=np.int64) if len(flat) else np.zeros(0, dtype=np.int64), lens

    def _entries(self, docs: Sequence[Doc], strings: Optional[Tuple[List[List[str]], List[List[str]]]] = None):
        """The TF-IDF entries of ``docs`` as ``(rows, cols, values)``: by doc and, within a
        doc, by column (word features before char features, the order of the matrix's columns).

        ``strings``: the docs' word and char feature strings, when already computed (fitting).
        """
        cfg = self.cfg
        arrays = self._arrays
        n = len(docs)
        blocks = []
        if len(arrays["idf_word"]):
            feats = strings[0] if strings is not None else [self._word_features(doc) for doc in docs]
            ids, lens = _lookup(feats, self._index_word)
            blocks.append(_tfidf_entries(ids, lens, n, arrays["idf_word"], cfg["word_weight"], cfg["sublinear_tf"]))
        if len(arrays["idf_char"]):
            if strings is not None:
                ids, lens = _lookup(strings[1], self._index_char)
            else:
                ids, lens = self._char_ids(docs)
            rows, cols, vals = _tfidf_entries(ids, lens, n, arrays["idf_char"], cfg["char_weight"], cfg["sublinear_tf"])
            blocks.append((rows, cols + len(arrays["idf_word"]), vals))
        rows, cols, vals = (np.concatenate(parts) for parts in zip(*blocks))
        order = np.argsort(rows, kind="stable")
        return rows[order], cols[order], vals[order]

    def _transform(self, docs: Sequence[Doc], *, strings: Optional[Tuple[List[List[str]], List[List[str]]]] = None):
        """The TF-IDF matrix (scipy CSR, one row per doc) of ``docs``.

        ``strings``: the docs' word and char feature strings, when already computed (fitting).
        """
        from scipy import sparse

        arrays = self._arrays
        rows, cols, vals = self._entries(docs, strings)
        indptr = np.zeros(len(docs) + 1, dtype="int64")
        np.cumsum(np.bincount(rows, minlength=len(docs)), out=indptr[1:])
        shape = (len(docs), len(arrays["idf_word"]) + len(arrays["idf_char"]))
        return sparse.csr_matrix((vals, cols.astype("int32"), indptr), shape=shape)

    # ------------------------------------------------------------------ prediction
    def predict(self, docs: Iterable[Doc]) -> np.ndarray:
        """Calibrated probabilities, shape ``(len(docs), len(labels))``; docs are not changed."""
        if not self.is_initialized:
            raise ValueError(Errors.E100.format(name=self.name))
        docs = list(docs)
        if not docs:
            return np.zeros((0, len(self.labels)), dtype="float64")
        if len(docs) <= DIRECT_DOCS:
            return self._calibrate(self._decision_direct(docs))
        return self._calibrate(self._decision(self._transform(docs)))

    def _decision(self, X) -> np.ndarray:
        arrays = self._arrays
        return np.asarray(X @ arrays["coef"]) + arrays["intercept"]

    def _decision_direct(self, docs: Sequence[Doc]) -> np.ndarray:
        """``_decision(_transform(docs))`` without building a sparse matrix, which costs more
        than the arithmetic for a few docs (one ``nlp(text)`` call): each doc's scores are the
        sum of its entries times their rows of ``coef``, added in the matrix product's order."""
        arrays = self._arrays
        rows, cols, vals = self._entries(docs)
        out = np.zeros((len(docs), arrays["coef"].shape[1]), dtype="float64")
        ends = np.cumsum(np.bincount(rows, minlength=len(docs)))[:-1]
        for i, terms in enumerate(np.split(arrays["coef"][cols] * vals[:, None], ends)):
            if len(terms):  # a running sum adds the terms one by one, as the sparse product does
                out[i] = np.cumsum(terms, axis=0)[-1]
        return out + arrays["intercept"]

    def _calibrate(self, scores: np.ndarray) -> np.ndarray:
        a, b = self._arrays["cal_a"], self._arrays["cal_b"]
        return _apply_calibration(scores, a, b, self.cfg["calibration"], self.cfg["multi_label"])

    def set_annotations(self, docs: Iterable[Doc], scores: np.ndarray) -> None:
        """Write each doc's probabilities to ``doc._.hybrid_cats[source]`` (and ``doc.cats``)."""
        labels = self.labels
        source = self.cfg["source"]
        set_doc_cats = self.cfg["set_doc_cats"]
        for doc, row in zip(docs, scores.tolist()):
            write_cats(doc, source, dict(zip(labels, row)), set_doc_cats=set_doc_cats)

    def explain(self, doc: Doc, label: Optional[str] = None, top_k: int = 10) -> List[Tuple[str, float]]:
        """The features that pushed the decision for ``label`` most, strongest first.

        Each item is ``(feature, tfidf_value * coefficient)``; words and word n-grams are
        shown as they are, start features as ``<s> how many``, original-case words as
        ``=Paris`` and character n-grams as ``char:' ho'``. ``label`` defaults to the
        predicted (most probable) label. Returns ``top_k`` items at most, positive weights
        only (the evidence for the label).
        """
        if not self.is_initialized:
            raise ValueError(Errors.E100.format(name=self.name))
        X = self._transform([doc])
        if label is None:
            label = self.labels[int(np.argmax(self._calibrate(self._decision(X))[0]))]
        if label not in self.labels:
            raise ValueError(Errors.E301.format(name=self.name, label=label, labels=list(self.labels)))
        k = self.labels.index(label)
        row = X.getrow(0)
        contrib = row.data * self._arrays["coef"][row.indices, k]
        order = np.argsort(-contrib, kind="stable")
        n_word = len(self._vocab_word)
        out = []
        for j in order[:top_k]:
            if contrib[j] <= 0:
                break
            i = int(row.indices[j])
            name = self._vocab_word[i] if i < n_word else "char:" + repr(self._vocab_char[i - n_word])
            out.append((name, float(contrib[j])))
        return out

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """spaCy category scores of the predicted docs against the references.

        Gold labels the component never saw are ignored by the scorer (only ``labels`` count).
        """
        kwargs.setdefault("labels", self.labels)
        kwargs.setdefault("threshold", self.cfg["threshold"])
        kwargs.setdefault("multi_label", self.cfg["multi_label"])
        return self.scorer(examples, **kwargs)

    # ------------------------------------------------------------------ fitting
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Iterable[str]] = None,
        dev_corpus: Optional[Callable[[Language], Iterable[Example]]] = None,
    ) -> None:
        """Fit the vectorizer, the SVM and the calibration on the training examples.

        labels: fixes the label set and its order (default: sorted labels of the data).
        dev_corpus: a reader ``nlp -> Iterable[Example]`` (e.g. ``hybridnlp.Corpus.v1``);
            when given and ``C`` is a list, ``C`` is chosen by accuracy (exclusive) or micro
            F1 (multi-label) on it. Without it, ``C`` is chosen by cross-validation.
        """
        examples = list(get_examples())
        docs, Y, label_list = self._targets(examples, labels)
        self.cfg["labels"] = label_list
        dev_docs: List[Doc] = []
        if dev_corpus is not None:
            dev_examples = list(dev_corpus(nlp)) if callable(dev_corpus) else list(dev_corpus)
            dev_docs, dev_Y, _ = self._targets(dev_examples, label_list, for_dev=True)
        cfg = self.cfg
        analyzers = cfg["char_analyzer"] if isinstance(cfg["char_analyzer"], list) else [cfg["char_analyzer"]]
        if cfg["char_ngram_range"] is None:
            analyzers = analyzers[:1]  # no char block: nothing to choose
        # Each char analyzer candidate needs its own vocabulary; C is searched within each.
        best = None
        all_scores: Dict[str, Dict[str, float]] = {}
        for analyzer in analyzers:
            cfg["char_analyzer_"] = analyzer
            X = self._transform(docs, strings=self._fit_vocab(docs))
            dev = (self._transform(dev_docs), dev_Y) if dev_docs else None
            result = self._search_C(X, Y, dev, prefix=f"char_analyzer={analyzer} " if len(analyzers) > 1 else "")
            all_scores.update(result["selection"])
            if best is None or result["loss"] < best[1]["loss"]:
                best = (analyzer, result, X, (self._vocab_word, self._vocab_char, dict(self._arrays)))
        analyzer, result, X, (vocab_word, vocab_char, arrays) = best
        result["selection"] = all_scores
        cfg["char_analyzer_"] = analyzer
        self._set_vocab(vocab_word, vocab_char)
        self._arrays = arrays
        self._finish_fit(X, Y, result)

    def _targets(self, examples: List[Example], labels, *, for_dev: bool = False):
        """Docs, target matrix (n, n_labels) of 0/1 and the label list, validated."""
        multi_label = self.cfg["multi_label"]
        if labels is None:
            found = set()
            for eg in examples:
                found.update(eg.reference.cats)
            label_list = sorted(found | set(self.cfg["labels"]))
        else:
            label_list = list(labels)
        if not for_dev and len(label_list) < 1:
            raise ValueError(Errors.E101.format(name=self.name, what="cats"))
        col = {label: i for i, label in enumerate(label_list)}
        docs, rows = [], []
        for i, eg in enumerate(examples):
            cats = eg.reference.cats
            if not cats:
                continue
            row = np.zeros(len(label_list), dtype="int8")
            for label, value in cats.items():
                if value >= 0.5 and label in col:
                    row[col[label]] = 1
            n_pos = sum(1 for v in cats.values() if v >= 0.5)
            if not multi_label:
                if n_pos > 1:
                    raise ValueError(Errors.E106.format(name=self.name, index=i, n_pos=n_pos))
                if row.sum() != 1:
                    if for_dev:
                        continue  # a dev label the model cannot predict says nothing about C
                    raise ValueError(Errors.E302.format(name=self.name, index=i, cats=dict(cats)))
            docs.append(eg.predicted)
            rows.append(row)
        if not docs and not for_dev:
            raise ValueError(Errors.E101.format(name=self.name, what="cats"))
        Y = np.vstack(rows) if rows else np.zeros((0, len(label_list)), dtype="int8")
        if not for_dev and not multi_label and len(label_list) < 2:
            raise ValueError(Errors.E303.format(name=self.name, labels=label_list))
        return docs, Y, label_list

    def _fit_vocab(self, docs: Sequence[Doc]) -> Tuple[List[List[str]], List[List[str]]]:
        """Fit vocabularies and idf; returns the docs' feature strings for reuse."""
        word_feats = [self._word_features(doc) for doc in docs]
        char_feats = [self._char_features(doc) for doc in docs]
        cfg = self.cfg
        vocab_word, idf_word = _fit_block(word_feats, cfg["min_df"], cfg["max_df"], cfg["max_features"])
        vocab_char, idf_char = _fit_block(char_feats, cfg["min_df"], cfg["max_df"], cfg["max_features"])
        if not vocab_word and not vocab_char:
            raise ValueError(Errors.E304.format(name=self.name))
        self._set_vocab(vocab_word, vocab_char)
        self._arrays = {"idf_word": idf_word, "idf_char": idf_char}
        return word_feats, char_feats

    def _set_vocab(self, vocab_word: List[str], vocab_char: List[str]) -> None:
        self._vocab_word, self._vocab_char = vocab_word, vocab_char
        self._index_word = {f: i for i, f in enumerate(vocab_word)}
        self._index_char = {f: i for i, f in enumerate(vocab_char)}
        self._char_cache = {}

    def _fit_svm(self, X, Y: np.ndarray, C: float) -> Tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        return _fit_svm(X, Y, C, cfg["multi_label"], cfg["class_weight"], cfg["max_iter"], cfg["multi_class"])

    def _search_C(self, X, Y: np.ndarray, dev, prefix: str = "") -> Dict[str, Any]:
        """Choose C (on ``dev`` if given, else by cross-validation) for one feature setting.

        Returns the held-out ``loss`` of the best C (see ``_selection_scores``), ``C``, the
        fitted ``model`` on all of X when already fitted, out-of-fold decisions ``oof`` when
        already computed, ``how`` C was chosen and the ``selection`` scores of every C.
        """
        cfg = self.cfg
        cs = cfg["C"] if isinstance(cfg["C"], list) else [cfg["C"]]
        analyzers = cfg["char_analyzer"] if isinstance(cfg["char_analyzer"], list) else [cfg["char_analyzer"]]
        searching = len(cs) > 1 or (len(analyzers) > 1 and cfg["char_ngram_range"] is not None)
        result: Dict[str, Any] = {"selection": {}, "model": None, "oof": None, "loss": 0.0}
        if not searching:
            result.update(C=cs[0], how="config")
            return result
        scores: Dict[float, Dict[str, float]] = {}
        if dev is not None:
            X_dev, Y_dev = dev
            models = {}
            for c in cs:
                models[c] = coef, intercept = self._fit_svm(X, Y, c)
                scores[c] = _selection_scores(np.asarray(X_dev @ coef) + intercept, Y_dev, cfg["multi_label"])
            best = min(cs, key=lambda c: (scores[c]["log_loss"], c))
            result.update(model=models[best], how="dev")
        else:
            folds = _folds(Y, cfg["multi_label"], cfg["calibration_folds"])
            oofs = {}
            for c in cs:
                oofs[c] = _oof_decisions(X, Y, folds, lambda Xs, Ys: self._fit_svm(Xs, Ys, c))
                scores[c] = _selection_scores(oofs[c], Y, cfg["multi_label"])
            best = min(cs, key=lambda c: (scores[c]["log_loss"], c))
            result.update(oof=oofs[best], how="cv")
        result.update(C=best, loss=scores[best]["log_loss"])
        result["selection"] = {f"{prefix}C={c}": scores[c] for c in cs}
        return result

    def _finish_fit(self, X, Y: np.ndarray, result: Dict[str, Any]) -> None:
        """Fit the chosen SVM (unless done) and its calibration; store the learned state."""
        cfg = self.cfg
        best = result["C"]
        coef, intercept = result["model"] if result["model"] is not None else self._fit_svm(X, Y, best)
        oof = result["oof"]
        if oof is None:
            folds = _folds(Y, cfg["multi_label"], cfg["calibration_folds"])
            if folds is None:
                # Too few examples per class to hold any out: calibrate on training decisions.
                oof = np.asarray(X @ coef) + intercept
            else:
                oof = _oof_decisions(X, Y, folds, lambda Xs, Ys: self._fit_svm(Xs, Ys, best))
        cal_a, cal_b = _fit_calibration(oof, Y, cfg["calibration"], cfg["multi_label"])
        self._arrays.update(
            coef=np.ascontiguousarray(coef, dtype="float64"),
            intercept=np.ascontiguousarray(intercept, dtype="float64"),
            cal_a=cal_a,
            cal_b=cal_b,
        )
        cfg["C_"] = float(best)
        cfg["selection_"] = {"by": result["how"], "scores": result["selection"]}

    # ------------------------------------------------------------------ serialization
    def _state(self) -> Tuple[Dict[str, Any], Dict[str, List[str]]]:
        cfg = dict(self.cfg)
        cfg["initialized"] = self.is_initialized
        return cfg, {"word": self._vocab_word, "char": self._vocab_char}

    def _load_state(self, cfg: Dict[str, Any], vocab: Optional[Dict[str, Any]], arrays: Optional[Dict[str, np.ndarray]], path: str) -> None:
        """Install loaded settings, vocabulary and arrays after checking they fit together."""
        try:
            initialized = bool(cfg.pop("initialized"))
            unknown = set(cfg) - set(self.cfg)
            if unknown:
                raise ValueError(f"unknown settings {sorted(unknown)}")
            new_cfg = dict(self.cfg)
            new_cfg.update(cfg)
            new_cfg = keep_given_settings(dict(self.cfg, source=self._source_setting), new_cfg, CONFIG_SETTINGS)
            if not initialized:
                self.cfg = new_cfg
                self._arrays = None
                return
            if vocab is None or arrays is None:
                raise ValueError("settings say the component is fitted but the model is missing")
            vw, vc = list(vocab["word"]), list(vocab["char"])
            if not all(isinstance(f, str) for f in vw + vc):
                raise ValueError("vocabulary entries must be strings")
            n_labels = len(new_cfg["labels"])
            expected = {
                "idf_word": (len(vw),),
                "idf_char": (len(vc),),
                "coef": (len(vw) + len(vc), n_labels),
                "intercept": (n_labels,),
                "cal_a": (n_labels,),
                "cal_b": (n_labels,),
            }
            for key, shape in expected.items():
                arr = arrays[key]
                if arr.shape != shape or arr.dtype != np.float64:
                    raise ValueError(f"array '{key}' has shape {arr.shape} and dtype {arr.dtype}, expected {shape} float64")
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(Errors.E103.format(name=self.name, path=path, problem=e)) from None
        self.cfg = new_cfg
        self._validate_cfg()
        self._set_vocab(vw, vc)
        self._arrays = {key: np.ascontiguousarray(arrays[key]) for key in ARRAY_NAMES}

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        """The component as bytes (msgpack of JSON strings and .npy bytes; no pickle)."""
        cfg, vocab = self._state()
        serialize = {
            "cfg": lambda: json.dumps(cfg),
            "features": lambda: json.dumps(vocab),
            "arrays": lambda: {k: _npy_bytes(v) for k, v in (self._arrays or {}).items()},
        }
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "TfidfTextCategorizer":
        """Load what ``to_bytes`` wrote; raises E103 on data that does not fit together."""
        try:
            msg = srsly.msgpack_loads(bytes_data)
            cfg = json.loads(msg["cfg"])
            vocab = json.loads(msg["features"]) if "features" not in exclude else None
            arrays = None
            if "arrays" not in exclude and msg.get("arrays"):
                arrays = {k: np.load(io.BytesIO(v), allow_pickle=False) for k, v in msg["arrays"].items()}
        except Exception as e:  # msgpack, JSON and numpy each raise their own types
            raise ValueError(Errors.E103.format(name=self.name, path="<bytes>", problem=e)) from None
        self._load_state(cfg, vocab, arrays, "<bytes>")
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Write ``cfg.json``, ``vocab.json`` and ``arrays/*.npy`` under ``path``."""
        path = util.ensure_path(path)
        cfg, vocab = self._state()

        def write_arrays(p: Path) -> None:
            p.mkdir(parents=True, exist_ok=True)
            for key, arr in (self._arrays or {}).items():
                np.save(p / f"{key}.npy", arr, allow_pickle=False)

        serialize = {
            CFG_FILE: lambda p: Path(p).write_text(json.dumps(cfg, indent=2), encoding="utf8"),
            VOCAB_FILE: lambda p: Path(p).write_text(json.dumps(vocab), encoding="utf8"),
            ARRAYS_DIR: write_arrays,
        }
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "TfidfTextCategorizer":
        """Load what ``to_disk`` wrote: E102 for missing files, E103 for corrupt ones."""
        path = util.ensure_path(path)
        where = str(path)

        def need(p: Path) -> Path:
            if not p.exists():
                raise ValueError(Errors.E102.format(name=self.name, path=where, file=p.name))
            return p

        try:
            cfg = json.loads(need(path / CFG_FILE).read_text(encoding="utf8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(Errors.E103.format(name=self.name, path=where, problem=e)) from None
        if not isinstance(cfg, dict):
            raise ValueError(Errors.E103.format(name=self.name, path=where, problem="cfg.json is not an object"))
        vocab = arrays = None
        if cfg.get("initialized"):
            try:
                if "features" not in exclude:
                    vocab = json.loads(need(path / VOCAB_FILE).read_text(encoding="utf8"))
                if "arrays" not in exclude:
                    arrays = {
                        key: np.load(need(path / ARRAYS_DIR / f"{key}.npy"), allow_pickle=False) for key in ARRAY_NAMES
                    }
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError, EOFError) as e:
                if str(e).startswith("[E102]"):
                    raise
                raise ValueError(Errors.E103.format(name=self.name, path=where, problem=e)) from None
        self._load_state(cfg, vocab, arrays, where)
        return self


# ---------------------------------------------------------------------- helpers
def _ngram_range(value: Optional[Sequence[int]], key: str, name: str) -> Optional[List[int]]:
    """``[lo, hi]`` or None for "block off" (also written as ``[0, 0]``)."""
    if value is None:
        return None
    lo, hi = (int(v) for v in value)
    if lo <= 0 and hi <= 0:
        return None
    if lo < 1 or hi < lo:
        hint = "Use [lo, hi] with 1 <= lo <= hi, or null to switch the block off."
        raise ValueError(Errors.E104.format(name=name, key=key, value=value, hint=hint))
    return [lo, hi]


def _shape(word: str) -> str:
    """Word shape with runs capped at 4 (``2005`` -> ``dddd``, ``$3.50`` -> ``$d.dd``)."""
    for pattern, repl in _SHAPE_SUBS:
        word = pattern.sub(repl, word)
    return re.sub(r"(.)\1{4,}", r"\1\1\1\1", word)


def _fit_block(feats: List[List[str]], min_df, max_df, max_features) -> Tuple[List[str], np.ndarray]:
    """Vocabulary (sorted) and smoothed idf of one feature block, like TfidfVectorizer."""
    from collections import Counter

    n_docs = len(feats)
    df: Counter = Counter()
    for f in feats:
        df.update(set(f))
    lo = min_df if isinstance(min_df, int) else int(np.ceil(min_df * n_docs))
    hi = max_df if isinstance(max_df, int) else int(np.floor(max_df * n_docs))
    kept = [f for f, d in df.items() if lo <= d <= max(hi, 1)]
    if max_features is not None and len(kept) > max_features:
        tf: Counter = Counter()
        for f in feats:
            tf.update(f)
        kept = sorted(kept, key=lambda f: (-tf[f], f))[:max_features]
    vocab = sorted(kept)
    d = np.array([df[f] for f in vocab], dtype="float64")
    idf = np.log((1.0 + n_docs) / (1.0 + d)) + 1.0
    return vocab, idf


def _char_pieces(text: str, analyzer: str, hi: int) -> List[Union[str, Tuple[str, int]]]:
    """The pieces whose n-grams make up a text's char n-grams (see ``_piece_ngrams``).

    ``char_wb``: the words. ``char``: the n-grams of the whole text padded with one space
    each side (whitespace runs made one space) are those inside a padded word (as char_wb)
    plus those across a word boundary; the latter only depend on the ``hi - 1`` characters
    either side of the boundary, so each boundary is the piece ``(window, position of the
    boundary space in it)``.
    """
    words = text.split()
    if analyzer == "char_wb" or len(words) < 2:
        return words
    padded = " " + " ".join(words) + " "
    pieces: List[Union[str, Tuple[str, int]]] = list(words)
    prev = 0
    for w in words[:-1]:
        space = prev + len(w) + 1
        start = max(prev, space - hi + 1)
        pieces.append((padded[start : space + hi - 1], space - start))
        prev = space
    return pieces


def _piece_ngrams(piece: Union[str, Tuple[str, int]], lo: int, hi: int) -> List[str]:
    """A word's padded n-grams, or the n-grams that cross one word boundary.

    A crossing n-gram has characters on both sides of the boundary space; it is counted at
    the first boundary it crosses, so it may start at the space before the left word but not
    earlier.
    """
    if isinstance(piece, str):
        return _wb_ngrams(piece, lo, hi)
    window, q = piece
    before = window.rfind(" ", 0, q)
    m = len(window)
    out: List[str] = []
    for n in range(max(lo, 3), hi + 1):
        first = max(before, q - n + 2, 0)
        last = min(q - 1, m - n)
        out.extend([window[s : s + n] for s in range(first, last + 1)])
    return out


def _wb_ngrams(word: str, lo: int, hi: int) -> List[str]:
    """Character n-grams of one word padded with spaces (scikit-learn's ``char_wb``)."""
    w = " " + word + " "
    m = len(w)
    out: List[str] = []
    for n in range(lo, hi + 1):
        out.extend([w[i : i + n] for i in range(m - n + 1)])
    return out


def _lookup(feats: List[List[str]], index: Dict[str, int]) -> Tuple[np.ndarray, List[int]]:
    """Vocabulary ids of each doc's features, flat (-1 for unknown ones), and counts per doc."""
    from itertools import chain, repeat

    lens = [len(f) for f in feats]
    total = sum(lens)
    ids = np.fromiter(map(index.get, chain.from_iterable(feats), repeat(-1, total)), dtype="int64", count=total)
    return ids, lens


def _tfidf_entries(ids, lens: List[int], n_docs: int, idf: np.ndarray, weight: float, sublinear: bool):
    """``(rows, cols, values)`` of one L2-normalised TF-IDF block, sorted by row, then column.

    ``ids`` holds the vocabulary ids of all docs' features in doc order (-1: not in the
    vocabulary), ``lens`` how many belong to each doc.
    """
    ids = np.asarray(ids, dtype="int64")
    rows = np.repeat(np.arange(n_docs, dtype="int64"), lens)
    known = ids >= 0
    ids, rows = ids[known], rows[known]
    keys, counts = np.unique(rows * len(idf) + ids, return_counts=True)
    rows, cols = np.divmod(keys, len(idf))
    vals = counts.astype("float64")
    if sublinear:
        np.log(vals, out=vals)
        vals += 1.0
    vals *= idf[cols]
    norms = np.sqrt(np.bincount(rows, weights=vals**2, minlength=n_docs))
    norms[norms == 0.0] = 1.0
    vals *= (weight / norms)[rows]
    return rows, cols, vals


def _fit_svm(
    X, Y: np.ndarray, C: float, multi_label: bool, class_weight, max_iter: int, multi_class: str = "ovr"
) -> Tuple[np.ndarray, np.ndarray]:
    """LinearSVC weights as ``(coef (n_features, n_labels), intercept (n_labels,))``.

    Exclusive classes use ``multi_class`` ("ovr" or "crammer_singer", one joint problem);
    multi-label data one binary SVM per label.

    Labels without both positive and negative examples get a constant decision (-1 or +1).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    n_labels = Y.shape[1]
    coef = np.zeros((X.shape[1], n_labels))
    intercept = np.full(n_labels, -1.0)

    def svc(mc="ovr"):
        return LinearSVC(C=C, class_weight=class_weight, max_iter=max_iter, multi_class=mc, random_state=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if multi_label:
            for k in range(n_labels):
                y = Y[:, k]
                if y.min() == y.max():
                    intercept[k] = 1.0 if y[0] else -1.0
                    continue
                m = svc().fit(X, y)
                coef[:, k] = m.coef_[0]
                intercept[k] = m.intercept_[0]
            return coef, intercept
        y = Y.argmax(axis=1)
        present = np.unique(y)
        if len(present) == 1:
            intercept[present[0]] = 1.0
            return coef, intercept
        m = svc(multi_class).fit(X, y)
        if len(present) == 2:
            # Binary LinearSVC has one weight vector, for the second class; mirror it.
            neg, pos = present
            coef[:, pos], intercept[pos] = m.coef_[0], m.intercept_[0]
            coef[:, neg], intercept[neg] = -m.coef_[0], -m.intercept_[0]
        else:
            coef[:, present] = m.coef_.T
            intercept[present] = m.intercept_
        return coef, intercept


def _folds(Y: np.ndarray, multi_label: bool, n_folds: int):
    """Train/held-out index pairs for calibration and C selection, or None if too few data."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = Y.shape[0]
    if multi_label:
        k = min(n_folds, n)
        return list(KFold(k, shuffle=True, random_state=0).split(np.zeros(n))) if k >= 2 else None
    y = Y.argmax(axis=1)
    smallest = np.bincount(y)[np.unique(y)].min()
    k = min(n_folds, int(smallest))
    if k < 2:
        return None
    return list(StratifiedKFold(k, shuffle=True, random_state=0).split(np.zeros(n), y))


def _oof_decisions(X, Y: np.ndarray, folds, fit) -> np.ndarray:
    """Out-of-fold decision values: each example scored by a model that did not see it."""
    if folds is None:
        coef, intercept = fit(X, Y)
        return np.asarray(X @ coef) + intercept
    out = np.zeros(Y.shape, dtype="float64")
    for train, held in folds:
        coef, intercept = fit(X[train], Y[train])
        out[held] = np.asarray(X[held] @ coef) + intercept
    return out


def _selection_scores(scores: np.ndarray, Y: np.ndarray, multi_label: bool) -> Dict[str, float]:
    """How good held-out decision values are, to choose C: ``log_loss`` decides.

    The log-loss is taken after the best one-scale calibration of these very scores
    (softmax temperature; for multi-label one sigmoid shared by all labels), so it compares
    models whose decision values have different scales. It is a proper score of the whole
    ranking, so it separates Cs that tie on accuracy (small dev sets, easy corpora), and it
    is less noisy than accuracy. Accuracy (exclusive) or micro F1 (multi-label) is reported
    alongside.
    """
    a, b = _fit_calibration(scores, Y, "temperature", multi_label)
    p = np.clip(_apply_calibration(scores, a, b, "temperature", multi_label), 1e-12, 1.0)
    if multi_label:
        log_loss = -np.mean(Y * np.log(p) + (1 - Y) * np.log(np.clip(1.0 - p, 1e-12, 1.0)))
        pred = scores >= 0
        tp = float(np.sum(pred & (Y == 1)))
        denom = float(pred.sum() + (Y == 1).sum())
        return {"log_loss": float(log_loss), "micro_f1": 2 * tp / denom if denom else 1.0}
    y = Y.argmax(axis=1)
    log_loss = -np.mean(np.log(p[np.arange(len(y)), y]))
    return {"log_loss": float(log_loss), "accuracy": float(np.mean(scores.argmax(axis=1) == y))}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _apply_calibration(scores: np.ndarray, a: np.ndarray, b: np.ndarray, method: str, multi_label: bool) -> np.ndarray:
    """Probabilities from decision values (see the module docstring for the methods)."""
    if multi_label:
        return _sigmoid(scores * a + b)
    if method == "temperature":
        return _softmax(scores * a[0])
    if scores.shape[1] == 2:
        p1 = _sigmoid(scores[:, 1] * a[1] + b[1])
        return np.stack([1.0 - p1, p1], axis=1)
    p = _sigmoid(scores * a + b)
    total = p.sum(axis=1, keepdims=True)
    # A doc no label's sigmoid accepts still gets a distribution: the normalised one.
    return p / np.where(total > 0, total, 1.0)


def _fit_platt(s: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    """Platt's sigmoid ``p = sigmoid(a * s + b)`` with his smoothed targets."""
    from scipy.optimize import minimize

    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    t = np.where(y == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(params):
        a, b = params
        z = a * s + b
        # log(1 + e^z) - t z, written stably.
        value = np.sum(np.logaddexp(0.0, z) - t * z)
        g = _sigmoid(z) - t
        return value, np.array([np.sum(g * s), np.sum(g)])

    prior = np.log((n_pos + 1.0) / (n_neg + 1.0))
    res = minimize(loss, np.array([1.0, prior]), jac=True, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def _fit_calibration(oof: np.ndarray, Y: np.ndarray, method: str, multi_label: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Calibration parameters ``(a, b)``, one per label, fitted on out-of-fold decisions."""
    from scipy.optimize import minimize_scalar

    n_labels = Y.shape[1]
    a = np.ones(n_labels)
    b = np.zeros(n_labels)
    if method == "temperature" and not multi_label:
        y = Y.argmax(axis=1)

        def nll(log_a):
            z = oof * np.exp(log_a)
            z = z - z.max(axis=1, keepdims=True)
            return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))

        res = minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded")
        a[:] = np.exp(res.x)
        return a, b
    if method == "temperature":  # multi-label: one sigmoid shared by all labels
        a[:], b[:] = _fit_platt(oof.ravel(), Y.ravel())
        return a, b
    if not multi_label and n_labels == 2:
        a[1], b[1] = _fit_platt(oof[:, 1], Y[:, 1])
        return a, b
    for k in range(n_labels):
        a[k], b[k] = _fit_platt(oof[:, k], Y[:, k])
    return a, b


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@Language.factory(
    "tfidf_textcat",
    default_config=DEFAULT_TFIDF_TEXTCAT_CONFIG,
    assigns=["doc.cats", "doc._.hybrid_cats"],
    default_score_weights={"cats_score": 1.0, "cats_micro_f": None, "cats_macro_f": None},
)
def make_tfidf_textcat(
    nlp: Language,
    name: str,
    word_ngram_range: Optional[List[int]],
    word_lowercase: bool,
    word_keep_case: bool,
    word_number_shape: bool,
    prefix_tokens: int,
    start_pairs: int,
    char_analyzer: Union[str, List[str]],
    char_ngram_range: Optional[List[int]],
    char_lowercase: bool,
    min_df: Union[int, float],
    max_df: Union[int, float],
    max_features: Optional[int],
    sublinear_tf: bool,
    word_weight: float,
    char_weight: float,
    C: Union[float, List[float]],
    class_weight: Optional[str],
    multi_class: str,
    max_iter: int,
    multi_label: bool,
    threshold: float,
    calibration: Optional[str],
    calibration_folds: int,
    source: Optional[str],
    set_doc_cats: bool,
    scorer: Optional[Callable],
) -> TfidfTextCategorizer:
    """Build a TF-IDF + LinearSVC text classifier (see the module docstring for the model).

    word_ngram_range ([lo, hi] or null), word_lowercase, word_keep_case, word_number_shape,
        prefix_tokens, start_pairs: the word block.
    char_analyzer ("char_wb", "char" or a list of candidates), char_ngram_range, char_lowercase:
        the char block.
    min_df, max_df, max_features, sublinear_tf: as scikit-learn's TfidfVectorizer, per block.
    word_weight, char_weight: scale of each L2-normalised block.
    C (number or list of candidates), class_weight (null or "balanced"), multi_class ("ovr"
        or "crammer_singer"), max_iter: LinearSVC.
    multi_label: one binary SVM per label, independent probabilities; else exclusive classes
        whose probabilities sum to 1.
    threshold: the multi-label scorer's cut-off.
    calibration: "temperature" or "sigmoid"; null picks temperature for exclusive classes and
        sigmoid for multi-label. calibration_folds: folds for calibration and for choosing
        candidates without a dev corpus.
    source: key in ``doc._.hybrid_cats`` (default: the component's name); set_doc_cats: also
        write ``doc.cats``. scorer: null for spaCy's category scorer.
    """
    return TfidfTextCategorizer(
        nlp.vocab,
        name,
        word_ngram_range=word_ngram_range,
        word_lowercase=word_lowercase,
        word_keep_case=word_keep_case,
        word_number_shape=word_number_shape,
        prefix_tokens=prefix_tokens,
        start_pairs=start_pairs,
        char_analyzer=char_analyzer,
        char_ngram_range=char_ngram_range,
        char_lowercase=char_lowercase,
        min_df=min_df,
        max_df=max_df,
        max_features=max_features,
        sublinear_tf=sublinear_tf,
        word_weight=word_weight,
        char_weight=char_weight,
        C=C,
        class_weight=class_weight,
        multi_class=multi_class,
        max_iter=max_iter,
        multi_label=multi_label,
        threshold=threshold,
        calibration=calibration,
        calibration_folds=calibration_folds,
        source=source,
        set_doc_cats=set_doc_cats,
        scorer=scorer,
    )
