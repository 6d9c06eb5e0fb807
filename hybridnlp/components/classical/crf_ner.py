"""Linear-chain CRF named-entity recognizer (python-crfsuite) as a spaCy pipe.

A classical feature-based tagger trained with crfsuite (L-BFGS by default) on BIO tags and
saved in crfsuite's own binary model format (plus JSON); nothing is pickled. Features, in
named groups that the ``features`` setting switches on and off (see ``FEATURE_GROUPS``):

- token: identity and lowercase form, prefixes/suffixes 1-4, word shape and short shape,
  case/digit/punctuation flags, user mentions, hashtags and URLs;
- context: words, short shapes and 3-letter suffixes of the tokens within ``window``,
  word bigrams and a shape trigram, sentence position, the sentence's first word and share
  of digits (result tables), whether the sentence is a headline in capitals;
- chunk: for a token inside a run of capitalised words, the run's length, the token's
  place in it, its first and last words and the words just outside it;
- word statistics from the training text: how often the lowercase form is capitalised
  away from sentence starts (``casing``) and which labels the word had (``memory``);
- gazetteer: membership (label, B/I, bucketed confidence) in the spans an upstream
  ``rule_ner`` writes to ``doc.spans[gazetteer_source]``;
- clusters (off by default): k-means clusters of SVD-reduced word co-occurrence vectors,
  induced from the training sentences.

Statistics that come from the training labels (``casing``, ``memory``, the gazetteer) are
held out when the training docs are featurized: each of 5 contiguous folds sees statistics
computed from the other four (the gazetteer via ``rule_ner.heldout_spans``). Otherwise
every training word would look known and the CRF would learn to trust these features far
more than they deserve on new text (on CoNLL-2003 test, several F1 points).

Each predicted span gets a confidence from the CRF marginals: the minimum over
``P(B-X at start)``, ``P(I-X)`` at every inner token and ``P(not I-X)`` at the token after
the span. The probability that the CRF's distribution puts exactly this span there is at
most each of those marginals, so their minimum is the tightest upper bound that crfsuite's
API allows; unlike the product it does not decay with span length (the tags inside one
entity are strongly correlated, so multiplying them would count the same evidence twice).
The doc as a whole gets the lowest marginal of any token's decoded tag, outside tags
included (``attrs["doc_confidence"]``): low where the CRF hesitated, even if it proposed no
entity there.
"""

import hashlib
import os
import re
import struct
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import srsly
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import SimpleFrozenList
from spacy import util

from ...errors import Errors
from .._pipe import BatchPipe, keep_given_settings
from ..outputs import ScoredSpans, write_spans

# crfsuite's own model header (crf1m): magic, file size, type, version, then 8 uint32 fields.
_CRFSUITE_MAGIC = b"lCRF"
_CRFSUITE_TYPE = b"FOMC"
_CRFSUITE_HEADER = struct.Struct("<4sI4sIIIIIIIII")

FEATURE_GROUPS = (
    "word",  # identity and lowercase form
    "affix",  # prefixes and suffixes of length 1-4
    "shape",  # word shape and short shape
    "case",  # case, digit and punctuation flags, length
    "position",  # sentence start/end, sentence in capitals, first word, share of digits
    "context",  # words and shapes of neighbours within `window`
    "chunk",  # the run of capitalised words the token is in: its edges and surroundings
    "bigram",  # word and shape n-grams around the token
    "clusters",  # distributional clusters induced from the training text
    "casing",  # how often the lowercase form is capitalised elsewhere in training text
    "memory",  # which labels the word had in the training data
    "gazetteer",  # membership in spans of an upstream rule_ner
)
# Distributional clusters from the training text alone did not move CoNLL-2003 dev F1
# (+/-0.05) once the held-out word statistics were in, so they are opt-in.
DEFAULT_FEATURES = [g for g in FEATURE_GROUPS if g != "clusters"]
ALGORITHMS = ("lbfgs", "l2sgd", "ap", "pa", "arow")

DEFAULT_CRF_NER_CONFIG = {
    "source": None,
    "set_ents": True,
    "algorithm": "lbfgs",
    "c1": 0.1,
    "c2": 1.0,
    "c_candidates": [],
    "max_iterations": 150,
    "window": 2,
    "features": DEFAULT_FEATURES,
    "cluster_sizes": [32, 128, 512],
    "min_feature_freq": 1,
    "gazetteer_source": "rule_ner",
    "scorer": {"@scorers": "spacy.ner_scorer.v1"},
}

# A sentence is cut after these tokens when the doc has no sentence boundaries; the same
# rule runs in training, so the position features mean the same thing in both.
_SENT_END = frozenset({".", "!", "?", "...", "…"})
_MAX_FEATURE_CHARS = 40


def crf_ner_score(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
    """Strict entity P/R/F overall and per type (spaCy's NER scorer on ``doc.ents``)."""
    return get_ner_prf(examples, **kwargs)


class CRFEntityRecognizer(BatchPipe):
    """Tag entities with a crfsuite linear-chain CRF over hand-written features.

    Writes ``doc.spans[source]`` (``attrs["scores"]`` holds one confidence per span;
    ``attrs["doc_confidence"]`` the lowest marginal of any token's decoded tag, which the
    ``cascade`` routes by) and, with ``set_ents``, ``doc.ents``.
    """

    def __init__(
        self,
        vocab,
        name: str = "crf_ner",
        *,
        source: Optional[str] = None,
        set_ents: bool = True,
        algorithm: str = "lbfgs",
        c1: float = 0.1,
        c2: float = 1.0,
        c_candidates: Sequence[Sequence[float]] = (),
        max_iterations: int = 150,
        window: int = 2,
        features: Sequence[str] = tuple(DEFAULT_FEATURES),
        cluster_sizes: Sequence[int] = (32, 128, 512),
        min_feature_freq: int = 1,
        gazetteer_source: Optional[str] = "rule_ner",
        scorer: Optional[Callable] = crf_ner_score,
    ) -> None:
        self.vocab = vocab
        self.name = name
        self.source = source or name
        self.set_ents = bool(set_ents)
        self.scorer = scorer
        unknown = [f for f in features if f not in FEATURE_GROUPS]
        if unknown:
            raise ValueError(Errors.E104.format(
                name=name, key="features", value=unknown,
                hint=f"Feature groups are: {', '.join(FEATURE_GROUPS)}."))
        if algorithm not in ALGORITHMS:
            raise ValueError(Errors.E104.format(
                name=name, key="algorithm", value=algorithm,
                hint=f"crfsuite algorithms are: {', '.join(ALGORITHMS)}."))
        if int(window) < 0:
            raise ValueError(Errors.E104.format(
                name=name, key="window", value=window, hint="Use 0, 1, 2 or 3."))
        for pair in c_candidates:
            if len(pair) != 2:
                raise ValueError(Errors.E104.format(
                    name=name, key="c_candidates", value=list(c_candidates),
                    hint="Give a list of [c1, c2] pairs, e.g. [[0.05, 0.01], [0.1, 0.05]]."))
        # Settings live in cfg so they are saved with the model and restored on load.
        self.cfg: Dict[str, Any] = {
            "algorithm": algorithm,
            "c1": float(c1),
            "c2": float(c2),
            "c_candidates": [[float(a), float(b)] for a, b in c_candidates],
            "max_iterations": int(max_iterations),
            "window": int(window),
            "features": list(features),
            "cluster_sizes": [int(k) for k in cluster_sizes],
            "min_feature_freq": int(min_feature_freq),
            "gazetteer_source": gazetteer_source or None,
            # Learned state (filled in by initialize):
            "labels": [],
            "gazetteer_labels": [],
            "selection": None,
            "model_sha256": None,
        }
        self.lexicon: Dict[str, Any] = {"casing": {}, "memory": {}, "clusters": {}}
        self._model_bytes: Optional[bytes] = None
        # crfsuite's tagger holds the sequence it tags (set, tag and marginal are separate
        # calls), so every thread tags with a tagger of its own over the same model bytes.
        self._taggers = threading.local()
        self._tag_set: frozenset = frozenset()
        self._last_iterations: Optional[int] = None
        self._warned_no_gazetteer = False  # warn once per component, not per doc

    # ------------------------------------------------------------------ properties

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels the fitted model can predict (empty before initialize)."""
        return tuple(self.cfg["labels"])

    @property
    def is_initialized(self) -> bool:
        """Whether a fitted CRF model is loaded."""
        return self._model_bytes is not None

    # ------------------------------------------------------------------ prediction

    def predict(self, docs: Iterable[Doc]) -> List[List[Tuple[int, int, str, float]]]:
        """Scored spans ``(start, end, label, confidence)`` for each doc; docs are untouched."""
        if self._model_bytes is None:
            raise ValueError(Errors.E100.format(name=self.name))
        out = []
        for doc in docs:
            spans = ScoredSpans(doc_confidence=1.0)
            gazetteer = self._gazetteer_from_doc(doc)
            for seg in _segments(doc):
                feats = self._featurize(doc, seg, gazetteer)
                seg_spans, seg_confidence = self._tag_segment(seg, feats)
                spans.extend(seg_spans)
                spans.doc_confidence = min(spans.doc_confidence, seg_confidence)
            out.append(spans)
        return out

    def set_annotations(self, docs: Iterable[Doc], scores) -> None:
        """Write the spans of ``predict`` to ``doc.spans[source]`` (and ``doc.ents``)."""
        for doc, spans in zip(docs, scores):
            write_spans(doc, self.source, spans, set_ents=self.set_ents)

    def _tag_segment(self, seg: List[int], feats: List[List[str]]):
        """Viterbi-decode one segment; its spans scored from the marginals, and the lowest
        marginal of any token's decoded tag (how sure the CRF is of the whole segment)."""
        tagger = self._thread_tagger()
        tagger.set(feats)
        tags = tagger.tag()
        known = self._tag_set

        def marginal(tag: str, pos: int) -> float:
            # A tag never seen in training (e.g. I-X of one-token entities) has no mass.
            return tagger.marginal(tag, pos) if tag in known else 0.0

        spans = []
        n = len(tags)
        for start, end, label in _bio_to_spans(tags):
            i_tag = "I-" + label
            # tags[start] is B-X, or I-X where a stray I-X opens a span (see _bio_to_spans).
            probs = [marginal(tags[start], start)]
            probs.extend(marginal(i_tag, k) for k in range(start + 1, end))
            if end < n:
                # The span must also stop here: the next token must not continue it.
                probs.append(1.0 - marginal(i_tag, end))
            conf = min(1.0, max(1e-6, min(probs)))
            # Segment positions -> doc tokens (whitespace tokens were left out of `seg`).
            spans.append((seg[start], seg[end - 1] + 1, label, conf))
        return spans, min((marginal(tag, pos) for pos, tag in enumerate(tags)), default=1.0)

    # ------------------------------------------------------------------ features

    def _gazetteer_from_doc(self, doc: Doc) -> Optional[List[Tuple[int, int, str, float]]]:
        """The upstream gazetteer spans on this doc, if the model was trained with them."""
        key = self.cfg["gazetteer_source"]
        if "gazetteer" not in self.cfg["features"] or not self.cfg["gazetteer_labels"]:
            return None
        if key is None or key not in doc.spans:
            if key is not None and not self._warned_no_gazetteer:
                self._warned_no_gazetteer = True
                warnings.warn(f"Component '{self.name}' was trained with the entities of '{key}' as features, "
                              f"but doc.spans has no '{key}' group: that component is disabled, excluded or "
                              f"missing, so '{self.name}' predicts without them and finds fewer entities. Keep "
                              f"'{key}' enabled before it (or add it with nlp.add_pipe('{key}', source=...)).")
            return None
        group = doc.spans[key]
        scores = group.attrs.get("scores") or [1.0] * len(group)
        return [(s.start, s.end, s.label_, float(sc)) for s, sc in zip(group, scores)]

    def _featurize(self, doc: Doc, seg: List[int], gazetteer,
                   stats: Optional[Dict[str, Dict[str, Any]]] = None) -> List[List[str]]:
        """crfsuite attribute lists (binary features) for the tokens of one segment.

        ``stats`` replaces the lexicon's word statistics (casing, memory); training passes
        the held-out statistics of the doc's fold.
        """
        groups = set(self.cfg["features"])
        stats = stats if stats is not None else self.lexicon
        window = self.cfg["window"]
        toks = [doc[i] for i in seg]
        n = len(toks)
        words = [_clean(t.text) for t in toks]
        lowers = [w.lower() for w in words]
        shapes = [_shape(w) for w in words]
        shorts = [_short_shape(s) for s in shapes]
        casing = stats.get("casing", {})
        memory = stats.get("memory", {}) if "memory" in groups else {}
        mem = [memory.get(w) for w in words] if memory else None
        memory_lower = stats.get("memory_lower", {}) if memory else {}
        clusters = self.lexicon.get("clusters", {})
        use_clusters = "clusters" in groups and clusters
        cl = [clusters.get(w) for w in lowers] if use_clusters else None
        n_alpha = sum(1 for w in words if any(c.isalpha() for c in w))
        n_upper = sum(1 for w in words if w.isupper() and len(w) > 1)
        caps_segment = n_alpha >= 3 and n_upper >= 0.6 * n_alpha
        n_digit = sum(1 for w in words if any(c.isdigit() for c in w))
        # Result tables ("Leeds 2 Arsenal 1") and sections ("SOCCER -") shift label priors.
        segment_cues = ("segfirst=" + lowers[0], f"segdigits={min(4, 4 * n_digit // max(n, 1))}")
        runs = _cap_runs(words) if "chunk" in groups and not caps_segment else {}

        gz: List[List[str]] = [[] for _ in range(n)]
        if gazetteer and "gazetteer" in groups:
            pos = {d: k for k, d in enumerate(seg)}
            known = set(self.cfg["gazetteer_labels"])
            for start, end, label, score in gazetteer:
                if label not in known:
                    continue
                inside = [pos[d] for d in range(start, end) if d in pos]
                bucket = _bucket(score)
                for j, k in enumerate(inside):
                    part = "B" if j == 0 else "I"
                    gz[k].extend((f"gz={label}", f"gz={label}-{part}",
                                  f"gz={label}|{bucket}", f"gzlen={min(len(inside), 4)}"))

        def pad(seq, k, edge):
            return seq[k] if 0 <= k < n else edge

        out = []
        for i in range(n):
            w, lw, sh, ss = words[i], lowers[i], shapes[i], shorts[i]
            f = ["b"]
            if "word" in groups:
                f.append("w=" + w)
                f.append("lw=" + lw)
            if "affix" in groups:
                for k in range(1, 5):
                    if len(w) >= k:
                        f.append(f"p{k}=" + w[:k])
                        f.append(f"s{k}=" + w[-k:])
            if "shape" in groups:
                f.append("sh=" + sh)
                f.append("ss=" + ss)
            if "case" in groups:
                if w.istitle():
                    f.append("title")
                if w.isupper():
                    f.append("upper")
                if w.islower():
                    f.append("lower")
                if any(c.isdigit() for c in w):
                    f.append("hasdigit")
                    if w.isdigit():
                        f.append(f"digits={min(len(w), 5)}")
                if "-" in w:
                    f.append("hyphen")
                if "." in w:
                    f.append("dot")
                if w[:1] in "@#" and len(w) > 1:
                    f.append("social=" + w[0])  # user mention or hashtag
                if lw.startswith(("http:", "https:", "www.")):
                    f.append("url")
                if not any(c.isalnum() for c in w):
                    f.append("punct")
                if len(w) > 1 and w[0].isupper() and any(c.isupper() for c in w[1:]) \
                        and any(c.islower() for c in w):
                    f.append("mixedcase")
                f.append(f"len={min(len(w), 8)}")
            if "position" in groups:
                if i == 0:
                    f.append("BOS")
                    f.append("BOS|ss=" + ss)
                if i == n - 1:
                    f.append("EOS")
                if caps_segment:
                    f.append("capsseg")
                    f.append("capsseg|lw=" + lw)
                f.extend(segment_cues)
            if "context" in groups:
                for d in range(1, window + 1):
                    for sign, k in (("-", i - d), ("+", i + d)):
                        edge = "<s>" if k < 0 else "</s>"
                        f.append(f"lw{sign}{d}=" + pad(lowers, k, edge))
                        f.append(f"ss{sign}{d}=" + pad(shorts, k, edge))
                        if d == 1:
                            f.append(f"s3{sign}1=" + pad(lowers, k, edge)[-3:])
            run = runs.get(i)
            if run is not None:
                start, end = run
                length = end - start
                where = "U" if length == 1 else "B" if i == start else "L" if i == end - 1 else "I"
                f.append(f"run={min(length, 4)}{where}")
                f.append("run_first=" + lowers[start])
                f.append("run_last=" + lowers[end - 1])
                f.append("run_prev=" + (lowers[start - 1] if start > 0 else "<s>"))
                f.append("run_next=" + (lowers[end] if end < n else "</s>"))
            if "bigram" in groups:
                prev_lw, next_lw = pad(lowers, i - 1, "<s>"), pad(lowers, i + 1, "</s>")
                f.append(f"lw-1|lw={prev_lw}|{lw}")
                f.append(f"lw|lw+1={lw}|{next_lw}")
                f.append(f"lw-1|lw+1={prev_lw}|{next_lw}")
                f.append("ss-1|ss|ss+1=" + "|".join(
                    (pad(shorts, i - 1, "<s>"), ss, pad(shorts, i + 1, "</s>"))))
                f.append("lw-1|ss=" + prev_lw + "|" + ss)
                f.append("ss|lw+1=" + ss + "|" + next_lw)
            if "casing" in groups:
                stat = casing.get(lw, "unseen")
                f.append("capr=" + stat)
                if i == 0 or caps_segment:
                    f.append("capr@start=" + stat)
            if mem is not None:
                seen = mem[i]
                if seen is None:
                    f.append("mem=unseen")
                    # Headlines in capitals: fall back on the lowercase form's labels.
                    f.extend("meml=" + x for x in memory_lower.get(lw, ("unseen",))[:2])
                else:
                    f.extend("mem=" + x for x in seen)
                for d in (-1, 1):
                    k = i + d
                    if 0 <= k < n:
                        f.append(f"mem{d:+d}=" + (mem[k][0] if mem[k] else "unseen"))
            if use_clusters:
                for d in (-1, 0, 1):
                    k = i + d
                    ids = cl[k] if 0 <= k < n else None
                    if ids is None:
                        f.append(f"c{d}=none" if 0 <= k < n else f"c{d}=edge")
                        continue
                    for level, cid in enumerate(ids):
                        f.append(f"c{d}.{level}={cid}")
            if gz[i]:
                f.extend(gz[i])
                for d in (-1, 1):
                    if 0 <= i + d < n:
                        f.extend(f"{x}@{d}" for x in gz[i + d][:1])
            out.append(f)
        return out

    # ------------------------------------------------------------------ training

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
        dev_corpus: Optional[Callable[[Language], Iterable[Example]]] = None,
    ) -> None:
        """Fit the CRF on the training examples (and pick c1/c2 on ``dev_corpus``).

        ``labels`` restricts the entity types learned (others become ``O``). ``dev_corpus``
        is a callable ``nlp -> Iterable[Example]`` (a spaCy reader); with more than one
        ``c_candidates`` pair, each is trained and the best dev entity F1 wins.
        """
        import pycrfsuite  # noqa: F401  (fail early with a clear ImportError)

        examples = list(get_examples()) if get_examples is not None else []
        if not examples:
            raise ValueError(Errors.E101.format(name=self.name, what="entities"))
        keep = set(labels) if labels else None
        gold_tags = [_gold_bio(eg, keep) for eg in examples]
        found = sorted({t[2:] for tags in gold_tags for t in tags if t != "O"})
        if not found:
            raise ValueError(Errors.E101.format(name=self.name, what="entities"))
        self.cfg["labels"] = found

        docs = [eg.predicted for eg in examples]
        self.lexicon, fold_stats = _build_lexicon(
            docs, gold_tags, self.cfg["features"], self.cfg["cluster_sizes"])
        fold_of = _fold_of(len(docs))

        gazetteer_pipe = self._find_gazetteer_pipe(nlp)
        train_gz: List[Optional[list]] = [None] * len(docs)
        self.cfg["gazetteer_labels"] = []
        if gazetteer_pipe is not None:
            train_gz = self._training_gazetteer(gazetteer_pipe, examples)
            self.cfg["gazetteer_labels"] = sorted(
                {lab for spans in train_gz for *_, lab, _ in spans})

        xs, ys = [], []
        for doc, tags, gz, fold in zip(docs, gold_tags, train_gz, fold_of):
            for seg in _segments(doc):
                if seg:
                    xs.append(self._featurize(doc, seg, gz, fold_stats[fold]))
                    ys.append([tags[k] for k in seg])

        dev = self._prepare_dev(dev_corpus, nlp) if dev_corpus is not None else None
        # Candidates need dev data to choose between them; without it c1/c2 are used.
        candidates = [[self.cfg["c1"], self.cfg["c2"]]]
        if dev is not None and self.cfg["c_candidates"]:
            candidates = self.cfg["c_candidates"]
        best = None
        selection = []
        for c1, c2 in candidates:
            start = time.perf_counter()
            model = self._train(xs, ys, c1, c2)
            seconds = time.perf_counter() - start
            f = None
            if dev is not None:
                self._load_model_bytes(model, verify=False)
                f = self._dev_f1(dev)
            selection.append({"c1": c1, "c2": c2, "dev_f": f, "train_seconds": round(seconds, 1),
                              "iterations": getattr(self, "_last_iterations", None)})
            if best is None or (f is not None and f > best[0]):
                best = (f if f is not None else -1.0, c1, c2, model)
        _, c1, c2, model = best
        self.cfg["c1"], self.cfg["c2"] = c1, c2
        self.cfg["selection"] = selection
        self._load_model_bytes(model, verify=False)

    def _prepare_dev(self, dev_corpus, nlp: Optional[Language]) -> List[Example]:
        """Dev examples with the upstream pipes applied, as this pipe sees docs at inference."""
        dev = list(dev_corpus(nlp))
        upstream = []
        if nlp is not None:
            for name, pipe in nlp.pipeline:
                if name == self.name:
                    break
                upstream.append(pipe)
        for eg in dev:
            for pipe in upstream:
                pipe(eg.predicted)
        return dev

    def _train(self, xs, ys, c1: float, c2: float) -> bytes:
        """Train one crfsuite model; returns the bytes of its model file."""
        import pycrfsuite

        trainer = pycrfsuite.Trainer(algorithm=self.cfg["algorithm"], verbose=False)
        for x, y in zip(xs, ys):
            trainer.append(x, y)
        params: Dict[str, Any] = {
            "max_iterations": self.cfg["max_iterations"],
            "feature.possible_transitions": True,
            "feature.minfreq": self.cfg["min_feature_freq"],
        }
        if self.cfg["algorithm"] == "lbfgs":
            params.update({"c1": c1, "c2": c2})
        elif self.cfg["algorithm"] == "l2sgd":
            params.update({"c2": c2})
        trainer.set_params(params)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.crfsuite")
            trainer.train(path)
            log = trainer.logparser
            self._last_iterations = len(log.iterations) if log is not None else None
            return Path(path).read_bytes()

    def _dev_f1(self, dev: List[Example]) -> float:
        """Strict entity F1 of the current model on dev examples (docs are copied)."""
        scored = []
        for eg in dev:
            doc = eg.predicted.copy()
            self(doc)
            scored.append(Example(doc, eg.reference))
        return get_ner_prf(scored).get("ents_f") or 0.0

    def _find_gazetteer_pipe(self, nlp: Optional[Language]):
        """The upstream pipe that writes ``doc.spans[gazetteer_source]``, if any."""
        key = self.cfg["gazetteer_source"]
        if nlp is None or key is None or "gazetteer" not in self.cfg["features"]:
            return None
        for name, pipe in nlp.pipeline:
            if name == self.name:
                break
            if name == key or getattr(pipe, "source", None) == key:
                return pipe
        return None

    def _training_gazetteer(self, pipe, examples: List[Example]) -> List[list]:
        """Gazetteer spans for the training docs, held out when the pipe supports it.

        A gazetteer built from the training data finds every training entity; without
        jackknifing the CRF would learn to trust it blindly.
        """
        if hasattr(pipe, "heldout_spans"):
            spans = pipe.heldout_spans(examples, n_folds=5)
            return [[(int(s), int(e), str(lab), float(sc)) for s, e, lab, sc in doc_spans]
                    for doc_spans in spans]
        # A pipe without held-out support (e.g. hand-written patterns, not learned from
        # this data) is simply run on copies of the training docs.
        key = self.cfg["gazetteer_source"]
        out = []
        for eg in examples:
            doc = pipe(eg.predicted.copy())
            out.append(self._spans_of(doc, key))
        return out

    @staticmethod
    def _spans_of(doc: Doc, key: str) -> list:
        if key not in doc.spans:
            return []
        group = doc.spans[key]
        scores = group.attrs.get("scores") or [1.0] * len(group)
        return [(s.start, s.end, s.label_, float(sc)) for s, sc in zip(group, scores)]

    # ------------------------------------------------------------------ serialization

    def __reduce__(self):
        # For pickle, which spaCy's ``nlp.pipe(n_process=...)`` uses where processes are
        # spawned (macOS, Windows). crfsuite's tagger cannot be pickled, its model bytes can.
        # (spaCy's ``Pipe`` is a Cython class, whose pickling ignores ``__getstate__``.)
        state = dict(self.__dict__)
        del state["_taggers"]  # each process opens its own (_thread_tagger)
        return (_unpickle, (type(self), state))

    def _thread_tagger(self):
        """This thread's tagger on the loaded model (opened on first use in a thread)."""
        tagger = getattr(self._taggers, "tagger", None)
        if tagger is None:
            import pycrfsuite

            tagger = pycrfsuite.Tagger()
            tagger.open_inmemory(self._model_bytes)
            self._taggers.tagger = tagger
        return tagger

    def _load_model_bytes(self, data: bytes, path: Any = "<bytes>", *, verify: bool = True) -> None:
        """Validate crfsuite model bytes and open a tagger on them (E103 when corrupt).

        With ``verify`` the bytes must also match the checksum saved in ``cfg``, which
        catches corruption inside the file that the header check cannot see.
        """
        import pycrfsuite

        problem = _check_crfsuite_bytes(data)
        expected = self.cfg.get("model_sha256") if verify else None
        digest = hashlib.sha256(data).hexdigest()
        if problem is None and expected is not None and expected != digest:
            problem = "checksum of the CRF model does not match the one saved with it"
        if problem is not None:
            raise ValueError(Errors.E103.format(name=self.name, path=path, problem=problem))
        tagger = pycrfsuite.Tagger()
        try:
            tagger.open_inmemory(data)
        except Exception as err:  # crfsuite reports only "Error opening model"
            raise ValueError(Errors.E103.format(name=self.name, path=path, problem=err))
        # Keep the buffer alive as long as the tagger reads from it.
        self._model_bytes = data
        self._taggers = threading.local()
        self._taggers.tagger = tagger
        self._tag_set = frozenset(tagger.labels())
        self.cfg["model_sha256"] = digest

    def _serialize_cfg(self) -> Dict[str, Any]:
        return dict(self.cfg)

    def _restore_cfg(self, cfg: Dict[str, Any], path: Any) -> None:
        if not isinstance(cfg, dict) or "labels" not in cfg:
            raise ValueError(Errors.E103.format(
                name=self.name, path=path, problem="settings file lacks 'labels'"))
        # The config's gazetteer_source holds (as source and set_ents, kept outside cfg).
        self.cfg.update(keep_given_settings(self.cfg, cfg, ("gazetteer_source",)))

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        """Serialize settings, lexicon and the crfsuite model to one msgpack blob."""
        if self._model_bytes is None:
            raise ValueError(Errors.E100.format(name=self.name))
        serialize = {
            "cfg": lambda: srsly.json_dumps(self._serialize_cfg()),
            "lexicon": lambda: srsly.json_dumps(self.lexicon),
            "model": lambda: self._model_bytes,
        }
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()):
        """Restore from ``to_bytes`` output; returns self."""
        try:
            msg = srsly.msgpack_loads(bytes_data)
        except Exception as err:
            raise ValueError(Errors.E103.format(name=self.name, path="<bytes>", problem=err))
        if not isinstance(msg, dict):
            raise ValueError(Errors.E103.format(
                name=self.name, path="<bytes>", problem="not a serialized crf_ner"))
        if "cfg" not in exclude:
            self._restore_cfg(_json_or_e103(self.name, msg.get("cfg"), "<bytes>"), "<bytes>")
        if "lexicon" not in exclude:
            self.lexicon = _json_or_e103(self.name, msg.get("lexicon"), "<bytes>")
        if "model" not in exclude:
            model = msg.get("model")
            if not isinstance(model, bytes):
                raise ValueError(Errors.E103.format(
                    name=self.name, path="<bytes>", problem="no CRF model in the data"))
            self._load_model_bytes(model)
        return self

    def to_disk(self, path, *, exclude: Iterable[str] = SimpleFrozenList()) -> None:
        """Write ``cfg``, ``lexicon.json`` and ``model.crfsuite`` into directory ``path``."""
        if self._model_bytes is None:
            raise ValueError(Errors.E100.format(name=self.name))
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self._serialize_cfg()),
            "lexicon.json": lambda p: srsly.write_json(p, self.lexicon),
            "model.crfsuite": lambda p: Path(p).write_bytes(self._model_bytes),
        }
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path, *, exclude: Iterable[str] = SimpleFrozenList()):
        """Load from a directory written by ``to_disk``; E102 if files are missing,
        E103 if they are corrupt. Returns self."""
        path = Path(path)
        for key in ("cfg", "lexicon.json", "model.crfsuite"):
            if key.split(".")[0] in exclude:
                continue
            if not (path / key).is_file():
                raise ValueError(Errors.E102.format(name=self.name, path=path, file=key))
        if "cfg" not in exclude:
            self._restore_cfg(_read_json_or_e103(self.name, path / "cfg"), path)
        if "lexicon" not in exclude:
            self.lexicon = _read_json_or_e103(self.name, path / "lexicon.json")
        if "model" not in exclude:
            self._load_model_bytes((path / "model.crfsuite").read_bytes(), path / "model.crfsuite")
        return self


# ---------------------------------------------------------------------- helpers


def _unpickle(cls: type, state: Dict[str, Any]) -> "CRFEntityRecognizer":
    pipe = cls.__new__(cls)
    pipe.__dict__.update(state)
    pipe._taggers = threading.local()
    return pipe


def _json_or_e103(name: str, data: Any, path: Any) -> Any:
    try:
        value = srsly.json_loads(data)
    except Exception as err:
        raise ValueError(Errors.E103.format(name=name, path=path, problem=err))
    if not isinstance(value, dict):
        raise ValueError(Errors.E103.format(name=name, path=path, problem="expected a JSON object"))
    return value


def _read_json_or_e103(name: str, path: Path) -> Any:
    return _json_or_e103(name, path.read_bytes(), path)


def _check_crfsuite_bytes(data: bytes) -> Optional[str]:
    """Why ``data`` is not a complete crfsuite model, or None if the header is sound.

    crfsuite trusts the offsets in its header; a truncated or garbage file can make it
    read past the buffer and crash the process, so they are checked first.
    """
    if len(data) < _CRFSUITE_HEADER.size:
        return f"file has {len(data)} bytes, fewer than a crfsuite header"
    magic, size, mtype, _version, n_feat, n_labels, n_attrs, *offsets = \
        _CRFSUITE_HEADER.unpack_from(data)
    if magic != _CRFSUITE_MAGIC or mtype != _CRFSUITE_TYPE:
        return "not a crfsuite CRF model (bad magic)"
    if size != len(data):
        return f"file is {len(data)} bytes but its header says {size} (truncated?)"
    if any(not (_CRFSUITE_HEADER.size <= off < size) for off in offsets):
        return "offsets in the header point outside the file"
    if n_labels == 0 or n_feat > size or n_attrs > size:
        return "implausible counts in the header"
    return None


def _clean(text: str) -> str:
    """Token text safe for crfsuite attribute names (no NUL, valid UTF-8, bounded)."""
    if "\x00" in text:
        text = text.replace("\x00", "\\0")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:_MAX_FEATURE_CHARS]


_SHAPE_CACHE: Dict[str, str] = {}


def _shape(word: str) -> str:
    """Word shape: X/x/d for upper/lower/digit, other chars kept, runs capped at 4."""
    cached = _SHAPE_CACHE.get(word)
    if cached is not None:
        return cached
    out = []
    last, run = "", 0
    for ch in word:
        if ch.isupper():
            c = "X"
        elif ch.islower():
            c = "x"
        elif ch.isdigit():
            c = "d"
        elif ch.isalpha():
            c = "a"  # letters without case (CJK, Arabic, ...)
        else:
            c = ch
        if c == last:
            run += 1
        else:
            last, run = c, 1
        if run <= 4:
            out.append(c)
    shape = "".join(out)
    if len(_SHAPE_CACHE) < 200_000:
        _SHAPE_CACHE[word] = shape
    return shape


_RUNS = re.compile(r"(.)\1+")


def _short_shape(shape: str) -> str:
    """Shape with runs collapsed (Xxxxx -> Xx, dd.dd -> d.d)."""
    return _RUNS.sub(r"\1", shape)


def _cap_runs(words: Sequence[str]) -> Dict[int, Tuple[int, int]]:
    """Token index -> (start, end) of the maximal run of capitalised words it belongs to.

    A run may hold lowercase connectors (of, de, van, ...) and "'s" only between two
    capitalised words ("Bank of England", "Boatmen 's Bancshares").
    """
    connectors = {"of", "de", "van", "von", "der", "la", "le", "du", "del", "'s", "&", "and"}
    caps = [w[:1].isupper() for w in words]
    out: Dict[int, Tuple[int, int]] = {}
    i, n = 0, len(words)
    while i < n:
        if not caps[i]:
            i += 1
            continue
        j = i + 1
        while j < n:
            if caps[j]:
                j += 1
            elif words[j].lower() in connectors and j + 1 < n and caps[j + 1]:
                j += 2
            else:
                break
        for k in range(i, j):
            out[k] = (i, j)
        i = j
    return out


def _bucket(score: float) -> str:
    """Coarse confidence bucket for gazetteer features."""
    if score >= 0.9:
        return "conf:hi"
    if score >= 0.6:
        return "conf:mid"
    return "conf:lo"


def _segments(doc: Doc) -> List[List[int]]:
    """Token indices of the sentences to tag; whitespace tokens are left out.

    Uses the doc's sentence boundaries when it has them, else cuts after sentence-final
    punctuation and at blank lines. Training uses the same function.
    """
    segs: List[List[int]] = []
    cur: List[int] = []
    has_sents = doc.has_annotation("SENT_START")
    for tok in doc:
        if has_sents and tok.is_sent_start and cur:
            segs.append(cur)
            cur = []
        if tok.is_space or not tok.text.strip():
            if not has_sents and "\n\n" in tok.text and cur:
                segs.append(cur)
                cur = []
            continue
        cur.append(tok.i)
        if not has_sents and tok.text in _SENT_END:
            segs.append(cur)
            cur = []
    if cur:
        segs.append(cur)
    return segs


def _gold_bio(eg: Example, keep: Optional[set]) -> List[str]:
    """Gold BIO tags on the predicted tokens (from spaCy's aligned BILUO tags)."""
    tags = []
    for tag in eg.get_aligned_ner():
        if not tag or tag in ("O", "-"):
            tags.append("O")
            continue
        prefix, label = tag.split("-", 1)
        if keep is not None and label not in keep:
            tags.append("O")
        elif prefix in ("B", "U"):
            tags.append("B-" + label)
        else:
            tags.append("I-" + label)
    return tags


def _bio_to_spans(tags: Sequence[str]) -> List[Tuple[int, int, str]]:
    """Spans ``(start, end, label)`` from BIO tags; a stray I-X starts a new span."""
    spans = []
    start, label = None, None
    for i, tag in enumerate(tags):
        if tag == "O" or tag.startswith("B-") or (tag.startswith("I-") and tag[2:] != label):
            if label is not None:
                spans.append((start, i, label))
            start, label = (i, tag[2:]) if tag != "O" else (None, None)
    if label is not None:
        spans.append((start, len(tags), label))
    return spans


N_FOLDS = 5


def _fold_of(n_docs: int, n_folds: int = N_FOLDS) -> List[int]:
    """Contiguous folds (neighbouring sentences of one story stay in the same fold)."""
    k = max(1, min(n_folds, n_docs))
    return [i * k // n_docs for i in range(n_docs)]


def _build_lexicon(docs: List[Doc], gold_tags: List[List[str]], features: Sequence[str],
                   cluster_sizes: Sequence[int]):
    """Word statistics from the training text only.

    Returns ``(lexicon, fold_stats)``. ``lexicon`` is what inference uses: ``casing``
    (lowercase form -> how often it is capitalised away from sentence starts), ``memory``
    (word -> the labels it had as gold tokens) and ``clusters`` (lowercase form -> one
    cluster id per size). ``fold_stats[f]`` holds ``casing`` and ``memory`` computed without
    fold ``f``, for featurizing that fold's training docs: with statistics that include the
    token itself, every training word would look known and the CRF would learn to trust
    them far more than they deserve on new text.
    """
    from collections import Counter

    fold_of = _fold_of(len(docs))
    n_folds = max(fold_of) + 1 if fold_of else 1
    seen = [Counter() for _ in range(n_folds)]
    capital = [Counter() for _ in range(n_folds)]
    labelled = [Counter() for _ in range(n_folds)]
    labelled_lower = [Counter() for _ in range(n_folds)]
    sentences = []
    for doc, tags, fold in zip(docs, gold_tags, fold_of):
        for seg in _segments(doc):
            words = [_clean(doc[i].text) for i in seg]
            sentences.append(words)
            if "memory" in features:
                for i, w in zip(seg, words):
                    tag = tags[i]
                    label = "O" if tag == "O" else tag[2:]
                    labelled[fold][(w, label)] += 1
                    labelled_lower[fold][(w.lower(), label)] += 1
            if "casing" in features:
                alpha = [w for w in words if w[:1].isalpha()]
                if len(alpha) >= 3 and sum(w.isupper() for w in alpha) >= 0.6 * len(alpha):
                    continue  # headlines in capitals say nothing about a word's casing
                for w in words[1:]:
                    if w[:1].isalpha():
                        seen[fold][w.lower()] += 1
                        capital[fold][w.lower()] += w[0].isupper()

    def stats(exclude: Optional[int]) -> Dict[str, Dict[str, Any]]:
        def total(counters):
            out = Counter()
            for f, c in enumerate(counters):
                if f != exclude:
                    out.update(c)
            return out

        return {"casing": _casing_buckets(total(seen), total(capital)),
                "memory": _memory_features(total(labelled)),
                "memory_lower": _memory_features(total(labelled_lower))}

    lexicon = stats(None)
    fold_stats = [stats(f) for f in range(n_folds)]
    lexicon["clusters"] = {}
    if "clusters" in features and cluster_sizes:
        lexicon["clusters"] = _induce_clusters(sentences, cluster_sizes)
    return lexicon, fold_stats


def _casing_buckets(seen, capital) -> Dict[str, str]:
    """Lowercase form -> never/sometimes/mostly/always capitalised (``?`` if seen < 3 times)."""
    out = {}
    for lw, total in seen.items():
        ratio = capital[lw] / total
        bucket = "never" if ratio == 0 else "always" if ratio == 1 else \
            "mostly" if ratio >= 0.5 else "sometimes"
        out[lw] = f"{bucket}{'' if total > 2 else '?'}"
    return out


def _memory_features(labelled) -> Dict[str, List[str]]:
    """Word -> feature values: majority label first, then each label's share, then count."""
    by_word: Dict[str, Dict[str, int]] = {}
    for (word, label), c in labelled.items():
        by_word.setdefault(word, {})[label] = c
    out = {}
    for word, counts in by_word.items():
        total = sum(counts.values())
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        feats = [ranked[0][0]]
        for label, c in ranked:
            share = c / total
            feats.append(f"{label}:{'all' if share == 1 else 'most' if share >= 0.5 else 'some'}")
        feats.append("n=" + ("1" if total == 1 else "2-4" if total < 5 else "5+"))
        out[word] = feats
    return out


def _induce_clusters(sentences: List[List[str]], sizes: Sequence[int], *, min_count: int = 2,
                     n_contexts: int = 2000, dims: int = 64, seed: int = 0) -> Dict[str, List[int]]:
    """Distributional clusters of lowercase word forms (co-occurrence + SVD + k-means).

    Each word is described by the words just left and right of it (PPMI-weighted counts),
    reduced with a truncated SVD and clustered with k-means at each size in ``sizes``.
    """
    from collections import Counter

    import numpy as np
    from scipy import sparse
    from sklearn.cluster import KMeans
    from sklearn.utils.extmath import randomized_svd

    counts = Counter(w.lower() for words in sentences for w in words)
    vocab = [w for w, c in counts.most_common() if c >= min_count]
    if len(vocab) < max(sizes) * 2:
        sizes = [k for k in sizes if k * 2 <= len(vocab)]
        if not sizes:
            return {}
    index = {w: i for i, w in enumerate(vocab)}
    ctx_words = [w for w, _ in counts.most_common(n_contexts)]
    ctx_index = {w: i for i, w in enumerate(ctx_words)}
    n_ctx = len(ctx_words) + 2  # + sentence edge + rare word
    rows, cols = [], []
    for words in sentences:
        lows = [w.lower() for w in words]
        for i, w in enumerate(lows):
            r = index.get(w)
            if r is None:
                continue
            for side, j in ((0, i - 1), (1, i + 1)):
                if 0 <= j < len(lows):
                    c = ctx_index.get(lows[j], n_ctx - 1)
                else:
                    c = n_ctx - 2
                rows.append(r)
                cols.append(side * n_ctx + c)
    m = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)),
                          shape=(len(vocab), 2 * n_ctx)).tocsr()
    total = m.sum()
    row_sum = np.asarray(m.sum(axis=1)).ravel()
    col_sum = np.asarray(m.sum(axis=0)).ravel() ** 0.75  # context smoothing (Levy et al.)
    col_sum = col_sum / col_sum.sum() * total
    m = m.tocoo()
    pmi = np.log(m.data * total / (row_sum[m.row] * col_sum[m.col]))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (m.row[keep], m.col[keep])), shape=m.shape)
    k_dims = min(dims, min(ppmi.shape) - 1)
    u, s, _ = randomized_svd(ppmi, n_components=k_dims, random_state=seed)
    emb = u * np.sqrt(s)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9
    assignments = []
    for k in sizes:
        km = KMeans(n_clusters=k, n_init=1, random_state=seed, max_iter=100)
        assignments.append(km.fit_predict(emb))
    return {w: [int(a[i]) for a in assignments] for i, w in enumerate(vocab)}


@Language.factory(
    "crf_ner",
    default_config=DEFAULT_CRF_NER_CONFIG,
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_crf_ner(
    nlp: Language,
    name: str,
    source: Optional[str],
    set_ents: bool,
    algorithm: str,
    c1: float,
    c2: float,
    c_candidates: List[List[float]],
    max_iterations: int,
    window: int,
    features: List[str],
    cluster_sizes: List[int],
    min_feature_freq: int,
    gazetteer_source: Optional[str],
    scorer: Optional[Callable],
) -> CRFEntityRecognizer:
    """Build a CRF entity recognizer (fitted by ``nlp.initialize``)."""
    return CRFEntityRecognizer(
        nlp.vocab, name, source=source, set_ents=set_ents, algorithm=algorithm, c1=c1, c2=c2,
        c_candidates=c_candidates, max_iterations=max_iterations, window=window,
        features=features, cluster_sizes=cluster_sizes, min_feature_freq=min_feature_freq,
        gazetteer_source=gazetteer_source, scorer=scorer,
    )
