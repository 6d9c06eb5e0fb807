"""Rule-based NER: pattern files and a gazetteer induced from training data, with measured
per-rule precision used as each span's confidence.

A *rule* is one token pattern, one phrase, one regular expression or one gazetteer entry.
Rules come from

- pattern files (``patterns`` in the config or in ``initialize``):

  - ``*.jsonl``: one object per line, spaCy EntityRuler/SpanRuler style.
    ``{"label": "ORG", "pattern": [{"LOWER": "acme"}]}`` (token pattern),
    ``{"label": "ORG", "pattern": "Acme Corp"}`` (phrase) or
    ``{"label": "DATE", "regex": "\\d{4}-\\d{2}-\\d{2}"}`` (regular expression, matched on
    ``doc.text`` and snapped to token boundaries with ``alignment_mode``).
  - ``*.txt``: a phrase list, one phrase per line. The label is the file's stem
    (``gazetteers/ORG.txt`` -> ``ORG``) unless a line ``# label: ORG`` says otherwise; other
    lines starting with ``#`` and blank lines are skipped.

- ``add_patterns(list_of_dicts)`` (same objects as the JSONL lines);
- the gazetteer: with ``induce_gazetteer``, every entity string of the training data with
  its label. An entry is kept only if it occurs at least ``min_count`` times as a gold
  entity with that label and its smoothed precision is at least ``min_precision``.

Precision of a rule is measured in ``initialize`` on the training examples (plus the dev
examples when ``dev_corpus`` is given): every match counts, before overlap resolution, and
a match is correct when its token span and label exactly equal a gold entity. The
confidence is the smoothed precision ``(tp + prior_hits) / (n + prior_hits +
prior_misses)`` (defaults 2.0 and 0.5), so a rule seen once and right is not certain
(0.857) and a rule never seen in the data gets the prior mean (0.8).

Overlapping matches are resolved deterministically: longer spans first, then higher
confidence, then the earlier start, then the label (alphabetically), then rule order; a
span is kept if none of its tokens is taken. Matches of several rules on the same span with
the same label collapse into one span with the highest confidence.

Output: ``doc.spans[source]`` (``attrs["scores"]`` holds the confidences) and, with
``set_ents``, ``doc.ents``. ``predict`` returns ``(start, end, label, confidence)`` tuples.

Token patterns that use annotation (POS, TAG, LEMMA, DEP, ...) are measured on copies of
the training docs run through the components before this one in ``nlp``, as at prediction
time. Rules added with ``add_patterns`` after ``initialize`` keep the prior mean as
confidence until the next ``initialize``. Relative pattern file paths are resolved from the
working directory; the rules themselves are saved with the pipeline, so the files are not
needed after training.

``heldout_spans(examples, n_folds)`` gives k-fold jackknifed predictions on training data
(the gazetteer induced without each example's fold), for components that learn from this
one's output (crf_ner).

A component that was never initialized raises E100 when called if it is configured to
induce a gazetteer or to read pattern files (the rules it was asked for don't exist yet).
A component with no rules at all (``induce_gazetteer = false``, no pattern files, nothing
added) behaves like spaCy's SpanRuler: it returns no spans and warns once.
"""

import json
import re
import warnings
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import srsly
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_get_examples

from ...errors import Errors
from .._pipe import BatchPipe, keep_given_settings
from ..outputs import write_spans

# --------------------------------------------------------------------------------------
# Default config

DEFAULT_RULE_NER_CONFIG: Dict[str, Any] = {
    "source": None,
    "set_ents": False,
    "patterns": [],
    "phrase_matcher_attr": "ORTH",
    "induce_gazetteer": True,
    "min_count": 1,
    "min_precision": 0.5,
    "alignment_mode": "contract",
    # A Beta(2, 0.5) prior (mean 0.8): gazetteer entries from NER training data are mostly
    # right (on CoNLL-2003 dev, entries seen once in train are right 95% of the time), and
    # with a (1, 1) prior confidences came out clearly too low on held-out data.
    "prior_hits": 2.0,
    "prior_misses": 0.5,
}

PHRASE_ATTRS = ("ORTH", "LOWER")
ALIGNMENT_MODES = ("strict", "contract", "expand")
RULE_KINDS = ("pattern", "phrase", "regex", "gazetteer")
# Where a rule came from decides what ``initialize`` keeps: rules added with add_patterns
# survive re-initialization, file rules are re-read and the gazetteer is re-induced.
ORIGIN_FILE, ORIGIN_ADDED, ORIGIN_GAZETTEER = "file", "added", "gazetteer"
FORMAT_VERSION = 1
# Settings whose value from the config holds over the saved one when a pipeline loads.
CONFIG_SETTINGS = ("source", "set_ents")

ScoredSpan = Tuple[int, int, str, float]
# Token attributes that only exist after earlier pipeline components have run.
ANNOTATION_ATTRS = {"POS", "TAG", "MORPH", "LEMMA", "DEP", "ENT_TYPE", "ENT_IOB", "ENT_ID", "ENT_KB_ID",
                    "SENT_START", "IS_SENT_START", "IS_SENT_END"}


# --------------------------------------------------------------------------------------
# Scorer


def rule_ner_score(examples: Iterable[Example], *, source: str, set_ents: bool, **kwargs) -> Dict[str, Any]:
    """Strict P/R/F of ``doc.spans[source]`` against the gold entities
    (``spans_{source}_p/r/f``), plus the ``ents_*`` scores when the component sets
    ``doc.ents``."""
    examples = list(examples)

    def getter(doc: Doc, attr: str) -> Iterable[Span]:
        # Reference docs carry the gold entities in doc.ents; predicted docs carry our spans.
        return doc.spans[source] if source in doc.spans else doc.ents

    scores = Scorer.score_spans(examples, f"spans_{source}", getter=getter, allow_overlap=True)
    if set_ents:
        scores.update(get_ner_prf(examples))
    return scores


# --------------------------------------------------------------------------------------
# Rules and the matchers built from them


class _Rule:
    """One rule with its match statistics. ``pattern`` is a list of token dicts (pattern),
    a list of token strings (phrase, gazetteer) or a regex string (regex)."""

    __slots__ = ("kind", "label", "pattern", "text", "origin", "where", "tp", "n", "count", "id")

    def __init__(self, kind: str, label: str, pattern: Any, *, origin: str, where: str,
                 text: Optional[str] = None, tp: float = 0, n: float = 0,
                 count: Optional[int] = None, id: Optional[str] = None):
        self.kind = kind
        self.label = label
        self.pattern = pattern
        self.text = text
        self.origin = origin
        self.where = where
        self.tp = tp
        self.n = n
        self.count = count
        self.id = id

    def to_dict(self, confidence: float) -> Dict[str, Any]:
        """The JSON-ready description of the rule (what ``rules`` and the saved files hold)."""
        data: Dict[str, Any] = {"label": self.label}
        if self.kind == "regex":
            data["regex"] = self.pattern
        elif self.kind == "phrase":
            data["pattern"] = self.text
            data["tokens"] = list(self.pattern)
        else:
            data["pattern"] = list(self.pattern)
        if self.id is not None:
            data["id"] = self.id
        data.update({"kind": self.kind, "origin": self.origin, "where": self.where,
                     "tp": self.tp, "n": self.n, "confidence": confidence})
        if self.count is not None:
            data["count"] = self.count
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "_Rule":
        """Inverse of ``to_dict`` (raises KeyError/TypeError/ValueError on bad data)."""
        kind = data["kind"]
        if kind not in RULE_KINDS:
            raise ValueError(f"unknown rule kind {kind!r}")
        label = data["label"]
        if not isinstance(label, str) or not label:
            raise ValueError(f"bad label {label!r}")
        text = None
        if kind == "regex":
            pattern = data["regex"]
        elif kind == "phrase":
            pattern = [str(t) for t in data["tokens"]]
            text = data["pattern"]
        elif kind == "gazetteer":
            pattern = [str(t) for t in data["pattern"]]
        else:
            pattern = data["pattern"]
        tp, n = data["tp"], data["n"]
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (tp, n)) or not 0 <= tp <= n:
            raise ValueError(f"bad match counts tp={tp!r}, n={n!r}")
        return cls(kind, label, pattern, origin=data["origin"], where=data["where"], text=text,
                   tp=tp, n=n, count=data.get("count"), id=data.get("id"))


class _RuleIndex:
    """Matchers over a fixed list of rules: a token Matcher, one PhraseMatcher for phrases
    and gazetteer entries, and compiled regexes. ``match(doc)`` returns every raw match as
    ``(rule_index, start, end)``."""

    def __init__(self, vocab, rules: Sequence[_Rule], phrase_attr: str, alignment_mode: str):
        self.vocab = vocab
        self.rules = list(rules)
        self.phrase_attr = phrase_attr
        self.alignment_mode = alignment_mode
        self.matcher = Matcher(vocab, validate=True)
        self.phrase_matcher = PhraseMatcher(vocab, attr=phrase_attr)
        self.regexes: List[Tuple[int, "re.Pattern"]] = []
        # PhraseMatcher keys are labels (so rule ids never enter the StringStore); the rule
        # behind a phrase match is found from its label and normalized tokens.
        self.phrase_lookup: Dict[Tuple[str, Tuple[str, ...]], List[int]] = {}
        self.label_of_key: Dict[int, str] = {}
        phrase_docs: Dict[str, List[Doc]] = {}
        for i, rule in enumerate(self.rules):
            if rule.kind == "pattern":
                # Integer keys keep rule ids out of the StringStore too.
                self.matcher.add(i + 1, [rule.pattern])
            elif rule.kind == "regex":
                self.regexes.append((i, re.compile(rule.pattern)))
            else:
                norm = self.normalize(rule.pattern)
                entry = self.phrase_lookup.setdefault((rule.label, norm), [])
                if not entry:
                    phrase_docs.setdefault(rule.label, []).append(Doc(vocab, words=list(norm)))
                entry.append(i)
        for label, docs in phrase_docs.items():
            self.label_of_key[vocab.strings.add(label)] = label
            self.phrase_matcher.add(label, docs)
        self.has_phrases = bool(phrase_docs)
        self.has_tokens = len(self.matcher) > 0

    def normalize(self, words: Iterable[str]) -> Tuple[str, ...]:
        """The form of a token sequence that the phrase matcher compares."""
        if self.phrase_attr == "LOWER":
            return tuple(w.lower() for w in words)
        return tuple(words)

    def match(self, doc: Doc) -> List[Tuple[int, int, int]]:
        """All raw matches ``(rule_index, start, end)`` on ``doc`` (may overlap)."""
        found: List[Tuple[int, int, int]] = []
        if self.has_tokens:
            for key, start, end in self.matcher(doc):
                found.append((key - 1, start, end))
        if self.has_phrases:
            lower = self.phrase_attr == "LOWER"
            for key, start, end in self.phrase_matcher(doc):
                span = doc[start:end]
                norm = tuple(t.lower_ for t in span) if lower else tuple(t.text for t in span)
                for i in self.phrase_lookup.get((self.label_of_key[key], norm), ()):
                    found.append((i, start, end))
        if self.regexes:
            text = doc.text
            for i, regex in self.regexes:
                for m in regex.finditer(text):
                    if m.end() <= m.start():
                        continue
                    span = doc.char_span(m.start(), m.end(), alignment_mode=self.alignment_mode)
                    if span is not None and len(span) > 0:
                        found.append((i, span.start, span.end))
        return found


def _smoothed(tp: float, n: float, hits: float, misses: float) -> float:
    """Smoothed precision ``(tp + hits) / (n + hits + misses)`` (the prior mean if n=0)."""
    return (tp + hits) / (n + hits + misses)


def _resolve(candidates: Iterable[Tuple[int, int, str, float, int]]) -> List[ScoredSpan]:
    """Non-overlapping spans from candidates ``(start, end, label, confidence, rule_index)``.

    Same span and label: keep the highest confidence. Then, greedily: longer first, higher
    confidence, earlier start, label, rule order. Returns spans sorted by position."""
    best: Dict[Tuple[int, int, str], Tuple[float, int]] = {}
    for start, end, label, conf, rule in candidates:
        key = (start, end, label)
        old = best.get(key)
        if old is None or conf > old[0] or (conf == old[0] and rule < old[1]):
            best[key] = (conf, rule)
    order = sorted(best.items(), key=lambda kv: (-(kv[0][1] - kv[0][0]), -kv[1][0], kv[0][0], kv[0][2], kv[1][1]))
    taken: set = set()
    kept: List[ScoredSpan] = []
    for (start, end, label), (conf, _) in order:
        if any(i in taken for i in range(start, end)):
            continue
        taken.update(range(start, end))
        kept.append((start, end, label, conf))
    kept.sort()
    return kept


def _gold_spans(example: Example) -> set:
    """Gold entities as ``(start, end, label)`` in the predicted doc's tokens."""
    spans = example.get_aligned_spans_y2x(example.reference.ents, allow_overlap=False)
    return {(s.start, s.end, s.label_) for s in spans}


# --------------------------------------------------------------------------------------
# The component


class RuleNER(BatchPipe):
    """Rule-based NER from pattern files and an induced gazetteer, with per-rule measured
    precision as confidence. See the module docstring for formats and behaviour."""

    def __init__(
        self,
        nlp: Language,
        name: str = "rule_ner",
        *,
        source: Optional[str] = None,
        set_ents: bool = False,
        patterns: Sequence[Union[str, Path]] = (),
        phrase_matcher_attr: str = "ORTH",
        induce_gazetteer: bool = True,
        min_count: int = 1,
        min_precision: float = 0.5,
        alignment_mode: str = "contract",
        prior_hits: float = 2.0,
        prior_misses: float = 0.5,
    ):
        self.nlp = nlp
        self.vocab = nlp.vocab
        self.name = name
        self.cfg: Dict[str, Any] = {
            "source": source or name,
            "set_ents": bool(set_ents),
            "patterns": [str(p) for p in (patterns or [])],
            "phrase_matcher_attr": phrase_matcher_attr,
            "induce_gazetteer": bool(induce_gazetteer),
            "min_count": min_count,
            "min_precision": min_precision,
            "alignment_mode": alignment_mode,
            "prior_hits": prior_hits,
            "prior_misses": prior_misses,
            "initialized": False,
        }
        self._validate_cfg(self.cfg)
        self._source_setting = source  # as the config gave it (null: the component's name)
        self._rules: List[_Rule] = []
        self._index: Optional[_RuleIndex] = None
        self._warned_empty = False
        self.scorer = partial(rule_ner_score, source=self.cfg["source"], set_ents=self.cfg["set_ents"])

    # ---- config ------------------------------------------------------------------

    def _validate_cfg(self, cfg: Dict[str, Any]) -> None:
        """Raise E104 for a setting outside its allowed values."""
        def bad(key, hint):
            raise ValueError(Errors.E104.format(name=self.name, key=key, value=cfg[key], hint=hint))

        if cfg["phrase_matcher_attr"] not in PHRASE_ATTRS:
            bad("phrase_matcher_attr", f"Use one of {list(PHRASE_ATTRS)}.")
        if cfg["alignment_mode"] not in ALIGNMENT_MODES:
            bad("alignment_mode", f"Use one of {list(ALIGNMENT_MODES)}.")
        if not isinstance(cfg["min_count"], int) or isinstance(cfg["min_count"], bool) or cfg["min_count"] < 1:
            bad("min_count", "Use an integer >= 1.")
        if not isinstance(cfg["min_precision"], (int, float)) or not 0.0 <= cfg["min_precision"] <= 1.0:
            bad("min_precision", "Use a number between 0 and 1.")
        for key in ("prior_hits", "prior_misses"):
            if not isinstance(cfg[key], (int, float)) or cfg[key] < 0:
                bad(key, "Use a number >= 0.")
        if cfg["prior_hits"] + cfg["prior_misses"] <= 0:
            bad("prior_misses", "prior_hits + prior_misses must be > 0 so unseen rules get a confidence.")
        if not isinstance(cfg["source"], str) or not cfg["source"]:
            bad("source", "Use a non-empty string (the doc.spans key).")

    @property
    def source(self) -> str:
        """The ``doc.spans`` key this component writes."""
        return self.cfg["source"]

    @property
    def is_initialized(self) -> bool:
        """Whether ``initialize`` has run (or an initialized component was loaded)."""
        return bool(self.cfg["initialized"])

    def _confidence(self, rule: _Rule) -> float:
        return _smoothed(rule.tp, rule.n, self.cfg["prior_hits"], self.cfg["prior_misses"])

    @property
    def rules(self) -> List[Dict[str, Any]]:
        """Every rule as a dict: label, pattern/regex, kind (pattern, phrase, regex,
        gazetteer), origin (file, added, gazetteer), where (file:line), tp, n (correct and
        all matches in the measurement data), confidence and, for gazetteer entries, count
        (gold occurrences in training)."""
        return [rule.to_dict(self._confidence(rule)) for rule in self._rules]

    @property
    def labels(self) -> Tuple[str, ...]:
        """The labels the rules can produce, sorted."""
        return tuple(sorted({rule.label for rule in self._rules}))

    def _rebuild(self) -> None:
        # A canonical order (fixed rules, then gazetteer) keeps tie-breaking by rule order
        # identical after a save/load, which stores the two groups in separate files.
        self._rules = [r for r in self._rules if r.kind != "gazetteer"] + [r for r in self._rules if r.kind == "gazetteer"]
        self._index = _RuleIndex(self.vocab, self._rules, self.cfg["phrase_matcher_attr"], self.cfg["alignment_mode"])

    # ---- adding rules --------------------------------------------------------------

    def add_patterns(self, patterns: Iterable[Dict[str, Any]]) -> None:
        """Add rules from pattern dicts (the JSONL line format). Their confidence is the
        prior mean until ``initialize`` measures it; they are kept on re-initialization.
        Raises E105 for an invalid pattern."""
        start = sum(1 for r in self._rules if r.origin == ORIGIN_ADDED)
        new = [self._parse_pattern(obj, origin=ORIGIN_ADDED, path="add_patterns", line=start + i + 1)
               for i, obj in enumerate(patterns)]
        self._rules = self._dedupe(self._rules + new)
        self._rebuild()

    def _dedupe(self, rules: List[_Rule]) -> List[_Rule]:
        """Drop repeated phrases (same label and normalized tokens) from files/add_patterns;
        the first one wins."""
        seen = set()
        out = []
        for rule in rules:
            if rule.kind == "phrase":
                norm = tuple(w.lower() for w in rule.pattern) if self.cfg["phrase_matcher_attr"] == "LOWER" else tuple(rule.pattern)
                key = (rule.label, norm)
                if key in seen:
                    continue
                seen.add(key)
            out.append(rule)
        return out

    def _parse_pattern(self, obj: Any, *, origin: str, path: str, line: int) -> _Rule:
        """One rule from a JSONL object; E105 (with path and line) if it is invalid."""
        def fail(problem: str):
            raise ValueError(Errors.E105.format(name=self.name, path=path, line=line, problem=problem))

        if not isinstance(obj, dict):
            fail(f"expected a JSON object, got {type(obj).__name__}")
        label = obj.get("label")
        if not isinstance(label, str) or not label.strip():
            fail("missing or empty 'label' (a non-empty string)")
        rule_id = obj.get("id")
        rule_id = None if rule_id is None else str(rule_id)
        where = f"{path}:{line}"
        has_pattern, has_regex = "pattern" in obj, "regex" in obj
        if has_pattern == has_regex:
            fail("give exactly one of 'pattern' (token list or phrase string) or 'regex'")
        if has_regex:
            regex = obj["regex"]
            if not isinstance(regex, str) or not regex:
                fail("'regex' must be a non-empty string")
            try:
                compiled = re.compile(regex)
            except re.error as err:
                fail(f"invalid regular expression {regex!r}: {err}")
            if compiled.match(""):
                fail(f"regular expression {regex!r} matches the empty string")
            return _Rule("regex", label, regex, origin=origin, where=where, id=rule_id)
        pattern = obj["pattern"]
        if isinstance(pattern, str):
            words = [t.text for t in self.nlp.make_doc(pattern) if not t.is_space]
            if not words:
                fail("empty phrase")
            return _Rule("phrase", label, words, origin=origin, where=where, text=pattern, id=rule_id)
        if isinstance(pattern, list):
            if not pattern or not all(isinstance(t, dict) for t in pattern):
                fail("a token pattern must be a non-empty list of objects")
            try:
                Matcher(self.vocab, validate=True).add(1, [pattern])
            except Exception as err:  # MatchPatternError, ValueError, KeyError from spaCy
                fail(f"invalid token pattern: {str(err).strip()}")
            return _Rule("pattern", label, pattern, origin=origin, where=where, id=rule_id)
        fail(f"'pattern' must be a list of token objects or a string, got {type(pattern).__name__}")
        raise AssertionError  # unreachable; fail() raises

    def _read_pattern_file(self, path: Union[str, Path]) -> List[_Rule]:
        """Rules from a ``.jsonl`` pattern file or a ``.txt`` phrase list."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(Errors.E340.format(name=self.name, path=path))
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".txt"):
            raise ValueError(Errors.E341.format(name=self.name, path=path, suffix=path.suffix))
        try:
            lines = path.read_text(encoding="utf8").splitlines()
        except UnicodeDecodeError as err:
            raise ValueError(Errors.E105.format(name=self.name, path=path, line="?", problem=f"not UTF-8 text ({err})"))
        rules = []
        if suffix == ".jsonl":
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(Errors.E105.format(name=self.name, path=path, line=n, problem=f"not valid JSON ({err})"))
                rules.append(self._parse_pattern(obj, origin=ORIGIN_FILE, path=str(path), line=n))
            return rules
        label = path.stem
        for n, line in enumerate(lines, 1):
            text = line.strip()
            if not text:
                continue
            if text.startswith("#"):
                m = re.match(r"#\s*label\s*:\s*(\S.*?)\s*$", text)
                if m:
                    label = m.group(1)
                continue
            rules.append(self._parse_pattern({"label": label, "pattern": text}, origin=ORIGIN_FILE, path=str(path), line=n))
        return rules

    def _pattern_rules(self, patterns: Optional[Iterable[Any]]) -> List[_Rule]:
        """Rules from a list of file paths and/or pattern dicts."""
        rules: List[_Rule] = []
        for i, item in enumerate(patterns or []):
            if isinstance(item, dict):
                rules.append(self._parse_pattern(item, origin=ORIGIN_FILE, path="initialize(patterns)", line=i + 1))
            else:
                rules.extend(self._read_pattern_file(item))
        return rules

    # ---- fitting -------------------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        patterns: Optional[Sequence[Any]] = None,
        dev_corpus: Optional[Callable[[Language], Iterable[Example]]] = None,
    ) -> None:
        """Read the pattern files (config ``patterns`` plus ``patterns`` here: file paths or
        pattern dicts), induce the gazetteer from the training examples, measure every
        rule's precision on the training examples (plus ``dev_corpus(nlp)`` if given) and
        keep the gazetteer entries that pass ``min_count`` and ``min_precision``.

        Raises E105 for an invalid pattern and E101 if a gazetteer is to be induced but the
        training examples have no entities."""
        validate_get_examples(get_examples, "RuleNER.initialize")
        nlp = nlp or self.nlp
        fixed = [r for r in self._rules if r.origin == ORIGIN_ADDED]
        fixed += self._pattern_rules(self.cfg["patterns"])
        fixed += self._pattern_rules(patterns)
        fixed = self._dedupe(fixed)
        for rule in fixed:
            rule.tp, rule.n = 0, 0
        train = list(get_examples())
        dev = list(dev_corpus(nlp)) if dev_corpus is not None else []

        candidates: List[_Rule] = []
        if self.cfg["induce_gazetteer"]:
            candidates = self._induce_candidates(train)
            if not candidates:
                raise ValueError(Errors.E101.format(name=self.name, what="entities (needed to induce the gazetteer; set induce_gazetteer = false to use pattern files only)"))
        rules = fixed + candidates
        index = _RuleIndex(self.vocab, rules, self.cfg["phrase_matcher_attr"], self.cfg["alignment_mode"])
        examples = train + dev
        for eg, doc in zip(examples, self._docs_for_matching(examples, fixed, nlp)):
            gold = _gold_spans(eg)
            for i, start, end in index.match(doc):
                rule = rules[i]
                rule.n += 1
                if (start, end, rule.label) in gold:
                    rule.tp += 1
        kept = [c for c in candidates if self._keep_entry(c.count, c.tp, c.n)]
        self._rules = fixed + kept
        self.cfg["initialized"] = True
        self._rebuild()

    def _docs_for_matching(self, examples: Sequence[Example], rules: Sequence[_Rule],
                           nlp: Optional[Language]) -> List[Doc]:
        """The docs to match rules on when measuring: ``example.predicted``, or, if a token
        pattern needs annotation (POS, LEMMA, DEP, ...) and this component sits in ``nlp``,
        copies of them run through the components before it (as at prediction time)."""
        docs = [eg.predicted for eg in examples]
        needs = any(rule.kind == "pattern" and any(str(key).upper() in ANNOTATION_ATTRS for tok in rule.pattern for key in tok)
                    for rule in rules)
        if not needs or nlp is None:
            return docs
        before = []
        for _, proc in nlp.pipeline:
            if proc is self:
                break
            before.append(proc)
        else:
            return docs
        docs = [doc.copy() for doc in docs]
        for proc in before:
            docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(doc) for doc in docs]
        return docs

    def _keep_entry(self, count: int, tp: float, n: float) -> bool:
        return count >= self.cfg["min_count"] and _smoothed(tp, n, self.cfg["prior_hits"], self.cfg["prior_misses"]) >= self.cfg["min_precision"]

    def _induce_candidates(self, examples: Sequence[Example], counts_out: Optional[List[Counter]] = None) -> List[_Rule]:
        """One gazetteer rule per (label, normalized entity tokens) seen as a gold entity;
        ``count`` is the number of gold occurrences. If ``counts_out`` is given, the
        per-example occurrence counts are appended to it (for heldout_spans)."""
        lower = self.cfg["phrase_matcher_attr"] == "LOWER"
        total: Counter = Counter()
        first_seen: Dict[Tuple[str, Tuple[str, ...]], int] = {}
        for eg in examples:
            doc = eg.predicted
            here: Counter = Counter()
            for start, end, label in _gold_spans(eg):
                words = tuple(t.lower_ if lower else t.text for t in doc[start:end])
                # Whitespace tokens can't be part of a reliable phrase.
                if not words or any(not w.strip() for w in words):
                    continue
                here[(label, words)] += 1
                first_seen.setdefault((label, words), len(first_seen))
            total.update(here)
            if counts_out is not None:
                counts_out.append(here)
        # Deterministic order: by label, then first occurrence.
        keys = sorted(total, key=lambda k: (k[0], first_seen[k]))
        return [_Rule("gazetteer", label, list(words), origin=ORIGIN_GAZETTEER, where="train", count=total[(label, words)])
                for label, words in keys]

    # ---- prediction ----------------------------------------------------------------

    def _check_ready(self) -> None:
        # Not initialized but configured to learn a gazetteer or to read pattern files: the
        # rules the user asked for are missing, so answering "no entities" would be wrong.
        if not self.cfg["initialized"] and (self.cfg["induce_gazetteer"] or self.cfg["patterns"]):
            raise ValueError(Errors.E100.format(name=self.name))
        if not self._rules and not self._warned_empty:
            self._warned_empty = True
            warnings.warn(f"Component '{self.name}' has no rules (no patterns and no gazetteer): it finds no entities. "
                          "Add patterns (config 'patterns', initialize(patterns=...) or add_patterns) or induce a gazetteer.")
        if self._index is None:
            self._rebuild()

    def _predict_doc(self, doc: Doc, allowed: Optional[Callable[[int], bool]] = None) -> List[ScoredSpan]:
        rules = self._rules
        cands = []
        for i, start, end in self._index.match(doc):
            if allowed is None or allowed(i):
                rule = rules[i]
                cands.append((start, end, rule.label, self._confidence(rule), i))
        return _resolve(cands)

    def predict(self, docs: Iterable[Doc]) -> List[List[ScoredSpan]]:
        """The resolved spans per doc as ``(start, end, label, confidence)`` tuples (pure:
        the docs are not changed). Raises E100 if a gazetteer or pattern files were
        configured but ``initialize`` never ran."""
        self._check_ready()
        return [self._predict_doc(doc) for doc in docs]

    def set_annotations(self, docs: Iterable[Doc], spans: List[List[ScoredSpan]]) -> None:
        """Write ``doc.spans[source]`` (with ``attrs["scores"]``) and, with ``set_ents``,
        ``doc.ents``."""
        for doc, doc_spans in zip(docs, spans):
            write_spans(doc, self.source, doc_spans, set_ents=self.cfg["set_ents"])

    def heldout_spans(self, examples: List[Example], n_folds: int = 5) -> List[List[ScoredSpan]]:
        """Spans per example (in order) as the component would predict them on
        ``example.predicted`` if the gazetteer had been induced without that example's fold.

        The examples are split into ``n_folds`` contiguous folds (contiguous, so repeated
        mentions within one news story stay in the same fold). For each fold, the gazetteer
        is induced from the other folds, with the same ``min_count``/``min_precision``
        filtering and precision measured on the other folds. Pattern-file, add_patterns and
        regex rules are used as they are (with their stored confidence). Meant for stacking:
        a model trained on these spans does not learn that the gazetteer is always right."""
        examples = list(examples)
        if not isinstance(n_folds, int) or n_folds < 2:
            raise ValueError(Errors.E104.format(name=self.name, key="n_folds", value=n_folds, hint="Use an integer >= 2."))
        if not examples:
            return []
        k = min(n_folds, len(examples))
        fold_of = [i * k // len(examples) for i in range(len(examples))]
        hits, misses = self.cfg["prior_hits"], self.cfg["prior_misses"]
        fixed = [r for r in self._rules if r.kind != "gazetteer"]
        fixed_index = _RuleIndex(self.vocab, fixed, self.cfg["phrase_matcher_attr"], self.cfg["alignment_mode"])
        fixed_cands = [[(s, e, fixed[i].label, self._confidence(fixed[i]), i) for i, s, e in fixed_index.match(doc)]
                       for doc in self._docs_for_matching(examples, fixed, self.nlp)]
        if not self.cfg["induce_gazetteer"]:
            return [_resolve(c) for c in fixed_cands]

        counts_per_eg: List[Counter] = []
        cands = self._induce_candidates(examples, counts_out=counts_per_eg)
        index = _RuleIndex(self.vocab, cands, self.cfg["phrase_matcher_attr"], self.cfg["alignment_mode"])
        key_of = {(c.label, tuple(c.pattern)): j for j, c in enumerate(cands)}
        n_c = len(cands)
        # Per fold statistics: count (gold occurrences), tp and n (matches) per candidate.
        count_f = [[0] * n_c for _ in range(k)]
        tp_f = [[0] * n_c for _ in range(k)]
        n_f = [[0] * n_c for _ in range(k)]
        matches = []
        for eg, fold, here in zip(examples, fold_of, counts_per_eg):
            for key, c in here.items():
                count_f[fold][key_of[key]] += c
            gold = _gold_spans(eg)
            found = index.match(eg.predicted)
            matches.append(found)
            for j, s, e in found:
                n_f[fold][j] += 1
                if (s, e, cands[j].label) in gold:
                    tp_f[fold][j] += 1
        tot_count = [sum(col) for col in zip(*count_f)]
        tot_tp = [sum(col) for col in zip(*tp_f)]
        tot_n = [sum(col) for col in zip(*n_f)]
        # For each fold: confidence of the entries that survive without it (None = dropped).
        conf_f: List[List[Optional[float]]] = []
        for f in range(k):
            row: List[Optional[float]] = []
            for j in range(n_c):
                count = tot_count[j] - count_f[f][j]
                tp, n = tot_tp[j] - tp_f[f][j], tot_n[j] - n_f[f][j]
                row.append(_smoothed(tp, n, hits, misses) if count >= 1 and self._keep_entry(count, tp, n) else None)
            conf_f.append(row)
        out = []
        offset = len(fixed)  # keeps rule order: fixed rules first, then gazetteer
        for fixed, found, fold in zip(fixed_cands, matches, fold_of):
            row = conf_f[fold]
            gaz = [(s, e, cands[j].label, row[j], offset + j) for j, s, e in found if row[j] is not None]
            out.append(_resolve(fixed + gaz))
        return out

    # ---- serialization -------------------------------------------------------------

    def _dump(self) -> Tuple[Dict[str, Any], List[Dict[str, Any]], List[Dict[str, Any]]]:
        cfg = dict(self.cfg, format_version=FORMAT_VERSION)
        patterns = [r.to_dict(self._confidence(r)) for r in self._rules if r.kind != "gazetteer"]
        gazetteer = [r.to_dict(self._confidence(r)) for r in self._rules if r.kind == "gazetteer"]
        return cfg, patterns, gazetteer

    def _load(self, cfg: Any, patterns: Any, gazetteer: Any, where: str) -> None:
        """Restore state from the three saved parts; E103 if they don't make sense."""
        try:
            if not isinstance(cfg, dict) or cfg.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"unknown format_version {cfg.get('format_version') if isinstance(cfg, dict) else None!r}")
            new_cfg = keep_given_settings(dict(self.cfg, source=self._source_setting),
                                          {key: cfg[key] for key in self.cfg}, CONFIG_SETTINGS)
            self._validate_cfg(new_cfg)
            rules = [_Rule.from_dict(d) for d in list(patterns) + list(gazetteer)]
            index = _RuleIndex(self.vocab, rules, new_cfg["phrase_matcher_attr"], new_cfg["alignment_mode"])
        except Exception as err:  # any malformed content is reported the same way
            raise ValueError(Errors.E103.format(name=self.name, path=where, problem=f"{type(err).__name__}: {err}")) from None
        self.cfg = new_cfg
        self._rules = rules
        self._index = index
        self.scorer = partial(rule_ner_score, source=self.cfg["source"], set_ents=self.cfg["set_ents"])

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        """Serialize cfg, patterns and gazetteer (msgpack of plain data, no pickle)."""
        cfg, patterns, gazetteer = self._dump()
        data = {"cfg": cfg, "patterns": patterns, "gazetteer": gazetteer}
        return srsly.msgpack_dumps({k: v for k, v in data.items() if k not in exclude})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "RuleNER":
        """Load from ``to_bytes`` output; E103 if the data is corrupt."""
        try:
            data = srsly.msgpack_loads(bytes_data)
        except Exception as err:
            raise ValueError(Errors.E103.format(name=self.name, path="<bytes>", problem=f"{type(err).__name__}: {err}")) from None
        if not isinstance(data, dict):
            raise ValueError(Errors.E103.format(name=self.name, path="<bytes>", problem="not a mapping"))
        cur_cfg, cur_pat, cur_gaz = self._dump()
        self._load(data.get("cfg", cur_cfg) if "cfg" not in exclude else cur_cfg,
                   data.get("patterns", cur_pat) if "patterns" not in exclude else cur_pat,
                   data.get("gazetteer", cur_gaz) if "gazetteer" not in exclude else cur_gaz, "<bytes>")
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Write ``cfg`` (JSON), ``patterns.jsonl`` and ``gazetteer.jsonl`` (one rule per
        line, with its tp/n/confidence) into the directory ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        cfg, patterns, gazetteer = self._dump()
        if "cfg" not in exclude:
            srsly.write_json(path / "cfg", cfg)
        if "patterns" not in exclude:
            srsly.write_jsonl(path / "patterns.jsonl", patterns)
        if "gazetteer" not in exclude:
            srsly.write_jsonl(path / "gazetteer.jsonl", gazetteer)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "RuleNER":
        """Load what ``to_disk`` wrote; E102 if a file is missing, E103 if one is corrupt."""
        path = Path(path)
        cur_cfg, cur_pat, cur_gaz = self._dump()
        parts = {"cfg": cur_cfg, "patterns": cur_pat, "gazetteer": cur_gaz}
        files = {"cfg": "cfg", "patterns": "patterns.jsonl", "gazetteer": "gazetteer.jsonl"}
        for key, fname in files.items():
            if key in exclude:
                continue
            fpath = path / fname
            if not fpath.is_file():
                raise OSError(Errors.E102.format(name=self.name, path=path, file=fname))
            try:
                parts[key] = srsly.read_json(fpath) if key == "cfg" else list(srsly.read_jsonl(fpath))
            except Exception as err:
                raise ValueError(Errors.E103.format(name=self.name, path=fpath, problem=f"{type(err).__name__}: {err}")) from None
        self._load(parts["cfg"], parts["patterns"], parts["gazetteer"], str(path))
        return self


# --------------------------------------------------------------------------------------
# Factory


@Language.factory(
    "rule_ner",
    default_config=DEFAULT_RULE_NER_CONFIG,
    assigns=["doc.spans", "doc.ents"],
    default_score_weights={
        "ents_f": 1.0,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "ents_per_type": None,
    },
)
def make_rule_ner(
    nlp: Language,
    name: str,
    source: Optional[str],
    set_ents: bool,
    patterns: List[str],
    phrase_matcher_attr: str,
    induce_gazetteer: bool,
    min_count: int,
    min_precision: float,
    alignment_mode: str,
    prior_hits: float,
    prior_misses: float,
) -> RuleNER:
    """Create a RuleNER component (see the module docstring for the settings)."""
    return RuleNER(
        nlp,
        name,
        source=source,
        set_ents=set_ents,
        patterns=patterns,
        phrase_matcher_attr=phrase_matcher_attr,
        induce_gazetteer=induce_gazetteer,
        min_count=min_count,
        min_precision=min_precision,
        alignment_mode=alignment_mode,
        prior_hits=prior_hits,
        prior_misses=prior_misses,
    )
