"""``llm_ner``: named entity recognition by prompting a language model.

The prompt lists the entity types (with a description where ``label_texts`` gives one),
optionally shows the first ``n_examples`` training texts that have entities together with
their entities, then the text, and asks for one ``TYPE: words`` line per entity
(:func:`parse_entities` reads them). Each entity's words are found in the doc
(:func:`find_entity`: every occurrence, exact case first, any whitespace between words)
and snapped to token boundaries; overlaps are resolved as ``rule_ner`` resolves them
(longer first, then more confident).

**Confidence.** A generated answer says nothing about how sure the model is, so, as
``rule_ner`` does for its rules, the confidence of a span is its type's precision measured on
held-out data: ``initialize`` with a ``dev_corpus`` runs the model on the first
``calibration_docs`` dev texts and counts, per type, how many proposed spans were gold
entities; a span's confidence is the smoothed precision ``(tp + prior_hits) / (n +
prior_hits + prior_misses)`` of its type (the prior mean, 0.8 by default, for a type never
proposed or without a dev corpus). That works for any backend and is what a fusion needs: a
number that says how often such a span is right.

Writes ``doc.spans[source]`` (``attrs["scores"]``) and, with ``set_ents``, ``doc.ents``.
Empty and whitespace-only texts are not sent; long texts are cut to ``max_text_chars`` in the
prompt, with a warning: the model reads only the first part, though the words it names are
then found anywhere in the doc. With ``save_io`` each doc keeps
its prompt and answer in ``doc.user_data["llm_io"][name]``.
"""

import re
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from ...errors import Errors
from ..classical.rule_ner import _gold_spans, _resolve
from ..outputs import write_spans
from ._labels import LabelledOutput, initial_examples, read_label_texts
from ._prompting import PromptedPipe

DEFAULT_NER_TEMPLATE = (
    "Find the named entities in the text. The entity types are:\n"
    "{labels}\n"
    "{examples}"
    "Write each entity on its own line as TYPE: the entity's exact words from the text. "
    "Write NONE if the text has no entity.\n"
    "Text: {text}\n"
    "Entities:"
)

DEFAULT_LLM_NER_CONFIG = {
    "backend": {"@misc": "hybridnlp.LLM.v1", "model": None, "max_new_tokens": 128},
    "template": DEFAULT_NER_TEMPLATE,
    "n_examples": 0,
    "calibration_docs": 200,
    "prior_hits": 2.0,
    "prior_misses": 0.5,
    "max_text_chars": 2000,
    "save_io": False,
    "source": None,
    "set_ents": True,
    "scorer": None,
}

def llm_ner_score(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
    """Strict entity P/R/F overall and per type (spaCy's NER scorer on ``doc.ents``)."""
    return get_ner_prf(examples, **kwargs)


_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")


def parse_entities(answer: str, labels: Sequence[str]) -> List[Tuple[str, str]]:
    """``(label, words)`` for every line of the answer of the form ``TYPE: words`` whose
    type is one of ``labels`` (case-insensitive; list bullets, quotes and "NONE" are
    ignored; a line may hold several entities separated by ``;``)."""
    by_form = {label.lower(): label for label in labels}
    found: List[Tuple[str, str]] = []
    for line in (answer or "").splitlines():
        line = _BULLET.sub("", line).strip()
        head, sep, rest = line.partition(":")
        label = by_form.get(head.strip().strip("*`\"'").lower())
        if not sep or label is None:
            continue
        for words in rest.split(";"):
            words = words.strip().strip("\"'`*").strip()
            if words and words.upper() != "NONE":
                found.append((label, words))
    return found


def find_entity(doc: Doc, words: str) -> List[Tuple[int, int]]:
    """Token spans ``(start, end)`` of every occurrence of ``words`` in the doc: exact case,
    or ignoring case when there is none; any whitespace between the words; not inside a
    longer word; snapped outwards to token boundaries."""
    parts = words.split()
    if not parts:
        return []
    pattern = r"\s+".join(re.escape(part) for part in parts)
    if re.match(r"\w", parts[0]):
        pattern = r"(?<!\w)" + pattern
    if re.search(r"\w$", parts[-1]):
        pattern = pattern + r"(?!\w)"
    spans: List[Tuple[int, int]] = []
    for flags in (0, re.IGNORECASE):
        for match in re.finditer(pattern, doc.text, flags):
            span = doc.char_span(match.start(), match.end(), alignment_mode="expand")
            if span is not None and len(span) and (span.start, span.end) not in spans:
                spans.append((span.start, span.end))
        if spans:
            break
    return spans


class LLMSpans(NamedTuple):
    """What ``predict`` returns: each doc's spans ``(start, end, label, confidence)``, and
    its prompt and answer (None for a doc that was not sent)."""

    spans: List[List[Tuple[int, int, str, float]]]
    prompts: List[Optional[str]]
    responses: List[Optional[str]]


class LLMEntityRecognizer(LabelledOutput, PromptedPipe):
    """Entity recognizer that prompts a language model (see the module docstring)."""

    whole_numbers = {"n_examples": 0}

    def __init__(
        self,
        vocab,
        name: str = "llm_ner",
        *,
        backend: Any,
        template: str = DEFAULT_NER_TEMPLATE,
        n_examples: int = 0,
        calibration_docs: int = 200,
        prior_hits: float = 2.0,
        prior_misses: float = 0.5,
        max_text_chars: int = 2000,
        save_io: bool = False,
        source: Optional[str] = None,
        set_ents: bool = True,
        scorer: Optional[Callable] = None,
    ) -> None:
        self.vocab = vocab
        self.name = name
        self.backend = backend
        self.scorer = scorer or llm_ner_score
        self.cfg: Dict[str, Any] = {
            "template": template,
            "n_examples": n_examples,
            "calibration_docs": calibration_docs,
            "prior_hits": prior_hits,
            "prior_misses": prior_misses,
            "max_text_chars": max_text_chars,
            "save_io": save_io,
            "source": source,
            "set_ents": set_ents,
            "labels": [],
            "label_texts": {},
            "examples": [],
            "precision": {},
        }
        self._check_cfg(self.cfg)

    # ------------------------------------------------------------------ prompting
    def prompt(self, text: str) -> str:
        """The prompt for one text (see :meth:`prompt_text` for what the text becomes)."""
        if not self.labels:
            raise ValueError(Errors.E100.format(name=self.name))
        examples = ""
        if self.cfg["examples"]:
            shown = "\n\n".join(
                f"Text: {self.prompt_text(text_)}\nEntities:\n" + ("\n".join(f"{label}: {words}" for label, words in ents) or "NONE")
                for text_, ents in self.cfg["examples"])
            examples = f"Examples:\n{shown}\n\n"
        return self.cfg["template"].format(labels=self.label_lines(), examples=examples, text=self.prompt_text(text))

    def predict(self, docs: Iterable[Doc]) -> LLMSpans:
        """Ask the model about every non-empty doc; spans, prompts and answers."""
        docs = list(docs)
        todo, prompts = self.prompts(docs)
        spans: List[List[Tuple[int, int, str, float]]] = [[] for _ in docs]
        responses: List[Optional[str]] = [None] * len(docs)
        if not todo:
            return LLMSpans(spans, prompts, responses)
        answers = self.backend.generate([prompts[i] for i in todo])
        for i, answer in zip(todo, answers):
            responses[i] = answer
            candidates = []
            for rank, (label, words) in enumerate(parse_entities(answer, self.labels)):
                for start, end in find_entity(docs[i], words):
                    candidates.append((start, end, label, self.confidence(label), rank))
            spans[i] = _resolve(candidates)
        return LLMSpans(spans, prompts, responses)

    def set_annotations(self, docs: Iterable[Doc], scores: LLMSpans) -> None:
        """Write ``doc.spans[source]`` (and ``doc.ents``) and, with ``save_io``, the prompt
        and answer."""
        docs = list(docs)
        for doc, spans in zip(docs, scores.spans):
            write_spans(doc, self.source, spans, set_ents=self.cfg["set_ents"])
        self.save_io(docs, scores.prompts, scores.responses)

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """Strict entity P/R/F overall and per type, on ``doc.ents``."""
        return self.scorer(examples, **kwargs)

    # ------------------------------------------------------------------ initialization
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Iterable[str]] = None,
        label_texts: Optional[Any] = None,
        dev_corpus: Optional[Callable[[Language], Iterable[Example]]] = None,
    ) -> None:
        """Take the entity types (and, with ``n_examples``, the examples the prompt shows)
        from the training examples; with ``dev_corpus`` (a reader ``nlp -> examples``),
        measure each type's precision on its first ``calibration_docs`` texts (the model
        runs on them, with a progress bar).

        label_texts: ``{label: description}`` or a JSON file path; labels left out are
        listed by name only.
        """
        examples = initial_examples(get_examples, labels, f"{self.name}.initialize")
        if labels is not None:
            label_list = list(dict.fromkeys(labels))
        else:
            label_list = sorted({ent.label_ for eg in examples for ent in eg.reference.ents})
        if not label_list:
            raise ValueError(Errors.E101.format(name=self.name, what="entities"))
        texts = read_label_texts(self.name, label_texts, label_list)
        shown = []
        for eg in examples:
            if len(shown) >= self.cfg["n_examples"]:
                break
            ents = [(ent.label_, ent.text) for ent in eg.reference.ents if ent.label_ in label_list]
            if ents:
                shown.append([eg.reference.text, [list(pair) for pair in ents]])
        self.cfg.update(labels=label_list, label_texts=texts, examples=shown)
        self.calibrate(dev_corpus, nlp)

    def answer_outcomes(self, example: Example, prediction: LLMSpans, index: int) -> Iterable[Tuple[str, bool]]:
        """Each proposed span's type, and whether the span is a gold entity of that type."""
        gold = _gold_spans(example)
        return [(label, (start, end, label) in gold) for start, end, label, _ in prediction.spans[index]]


@Language.factory(
    "llm_ner",
    default_config=DEFAULT_LLM_NER_CONFIG,
    assigns=["doc.ents", "doc.spans"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_llm_ner(
    nlp: Language,
    name: str,
    backend: Any,
    template: str,
    n_examples: int,
    calibration_docs: int,
    prior_hits: float,
    prior_misses: float,
    max_text_chars: int,
    save_io: bool,
    source: Optional[str],
    set_ents: bool,
    scorer: Optional[Callable],
) -> LLMEntityRecognizer:
    """Build a prompted entity recognizer (see the module docstring).

    backend: a registered backend (``hybridnlp.LLM.v1``, ...) or any object with
        ``generate(prompts)``; give it room to answer (``max_new_tokens``).
    template: the prompt, with ``{labels}``, ``{examples}`` and ``{text}`` placeholders.
    n_examples: training texts with entities shown in the prompt (0: zero-shot).
    calibration_docs: dev texts the type precisions are measured on (0: none).
    prior_hits, prior_misses: the smoothing of those precisions.
    max_text_chars, save_io, source, set_ents, scorer: as for the other components.
    """
    return LLMEntityRecognizer(
        nlp.vocab,
        name,
        backend=backend,
        template=template,
        n_examples=n_examples,
        calibration_docs=calibration_docs,
        prior_hits=prior_hits,
        prior_misses=prior_misses,
        max_text_chars=max_text_chars,
        save_io=save_io,
        source=source,
        set_ents=set_ents,
        scorer=scorer,
    )
