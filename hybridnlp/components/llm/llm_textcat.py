"""``llm_textcat``: text classification by prompting a language model.

The prompt lists the labels (with a description where ``label_texts`` gives one), optionally
shows the first ``examples_per_label`` training texts of each label, then the text, and asks
for one label. Two ways to read the model (``method``):

* ``"choices"`` - the backend scores every label as the answer (``log P(label | prompt)``,
  :class:`~hybridnlp.components.llm.backends.ChoiceScorer`); ``doc.cats`` is the softmax over
  the labels. The answer is always a label, and the probabilities say how sure the model is,
  so a cascade or a fusion can use them. Local models (``hybridnlp.LocalLLM.v1``) do this.
* ``"generate"`` - the backend writes an answer and :func:`parse_label` finds the label in it;
  that label gets, as its probability, how often the model's answers with that label were
  right on the first ``calibration_docs`` dev texts (smoothed; measured in ``initialize``
  when it gets a ``dev_corpus``; 0.8 without; never less than an equal share), and the
  other labels share the rest. An
  answer that names no label gives every label the same probability (and a warning with the
  count): nothing is silently dropped. Servers (``hybridnlp.ServerLLM.v1``) do this.
* ``"auto"`` (default) - ``"choices"`` when the backend can score, else ``"generate"``.

An empty or whitespace-only text is not sent to the model; all labels get the same
probability. A text longer than ``max_text_chars`` is cut to that length in the prompt, with a
warning. With ``save_io`` each doc keeps its prompt and the model's answer in
``doc.user_data["llm_io"][name]``, as spacy-llm does.

The pipeline saves the labels, their descriptions, the examples and the template (JSON); the
backend is rebuilt from the config when the pipeline is loaded, and the model stays where it
is (see ``backends.py``). Exclusive classes only.
"""

import re
import warnings
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from ...errors import Errors
from ._labels import (ExclusiveCatsOutput, exclusive_cats_score, exclusive_labels, first_examples, initial_examples,
                      read_label_texts)
from ._prompting import PromptedPipe
from .backends import ChoiceScorer

DEFAULT_TEMPLATE = (
    "Classify the text into exactly one of these categories:\n"
    "{labels}\n"
    "{examples}"
    "Text: {text}\n"
    "Answer with the category name only.\n"
    "Category:"
)

DEFAULT_LLM_TEXTCAT_CONFIG = {
    "backend": {"@misc": "hybridnlp.LLM.v1", "model": None},
    "template": DEFAULT_TEMPLATE,
    "method": "auto",
    "examples_per_label": 0,
    "calibration_docs": 200,
    "prior_hits": 2.0,
    "prior_misses": 0.5,
    "max_text_chars": 2000,
    "save_io": False,
    "source": None,
    "set_doc_cats": True,
    "scorer": None,
}
METHODS = ("auto", "choices", "generate")


def _words(text: str) -> str:
    """Lower-case words only: ``"Card_Arrival."`` -> ``"card arrival"``."""
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


def parse_label(response: str, labels: Sequence[str]) -> Optional[str]:
    """The label a model's answer names, or None.

    The answer's first line, without quotes, a ``Category:``/``Answer:`` prefix and end
    punctuation, is compared with every label (case-insensitive; ``card arrival`` also names
    ``card_arrival``). Otherwise the label named first anywhere in the answer (as whole
    words) wins; at the same position the longer name.
    """
    if not response or not response.strip():
        return None
    by_form: Dict[str, str] = {}
    for label in labels:  # exact names first: "C" names C, not "C++" (whose words are "c")
        by_form.setdefault(label.lower(), label)
    for label in labels:
        if _words(label):
            by_form.setdefault(_words(label), label)
    first = response.strip().splitlines()[0].strip()
    for prefix in ("category:", "answer:", "label:"):
        if first.lower().startswith(prefix):
            first = first[len(prefix):].strip()
    first = first.strip(" \t\"'`*.,;:!()[]")
    for form in (first.lower(), _words(first)):
        if form in by_form:
            return by_form[form]
    text = " " + _words(response) + " "
    best = None  # (position, -length, label)
    for label in labels:
        form = _words(label)
        pos = text.find(" " + form + " ") if form else -1
        if pos >= 0:
            candidate = (pos, -len(form), label)
            best = candidate if best is None or candidate < best else best
    return best[2] if best else None


class LLMScores(NamedTuple):
    """What ``predict`` returns: probabilities (docs x labels), and each doc's prompt and
    answer (None for a doc that was not sent)."""

    probs: np.ndarray
    prompts: List[Optional[str]]
    responses: List[Optional[str]]


class LLMTextCategorizer(ExclusiveCatsOutput, PromptedPipe):
    """Exclusive-class text classifier that prompts a language model (module docstring)."""

    whole_numbers = {"examples_per_label": 0}

    def __init__(
        self,
        vocab,
        name: str = "llm_textcat",
        *,
        backend: Any,
        template: str = DEFAULT_TEMPLATE,
        method: str = "auto",
        examples_per_label: int = 0,
        calibration_docs: int = 200,
        prior_hits: float = 2.0,
        prior_misses: float = 0.5,
        max_text_chars: int = 2000,
        save_io: bool = False,
        source: Optional[str] = None,
        set_doc_cats: bool = True,
        scorer: Optional[Callable] = None,
    ) -> None:
        self.vocab = vocab
        self.name = name
        self.backend = backend
        self.scorer = scorer or exclusive_cats_score
        self.cfg: Dict[str, Any] = {
            "template": template,
            "method": method,
            "examples_per_label": examples_per_label,
            "calibration_docs": calibration_docs,
            "prior_hits": prior_hits,
            "prior_misses": prior_misses,
            "max_text_chars": max_text_chars,
            "save_io": save_io,
            "source": source,
            "set_doc_cats": set_doc_cats,
            "labels": [],
            "label_texts": {},
            "examples": [],
            "precision": {},
        }
        self._check_cfg(self.cfg)

    def _check_cfg(self, cfg: Dict[str, Any]) -> None:
        super()._check_cfg(cfg)
        if cfg["method"] not in METHODS:
            raise ValueError(Errors.E104.format(name=self.name, key="method", value=cfg["method"],
                                                hint=f"Use one of {list(METHODS)}."))
        if cfg["method"] == "choices" and not isinstance(self.backend, ChoiceScorer):
            raise ValueError(Errors.E547.format(name=self.name, backend=type(self.backend).__name__))

    # ------------------------------------------------------------------ properties
    @property
    def method(self) -> str:
        """The method in use: ``"choices"`` or ``"generate"`` (``"auto"`` resolved)."""
        if self.cfg["method"] != "auto":
            return self.cfg["method"]
        return "choices" if isinstance(self.backend, ChoiceScorer) else "generate"

    # ------------------------------------------------------------------ prompting
    def prompt(self, text: str) -> str:
        """The prompt for one text (see :meth:`prompt_text` for what the text becomes)."""
        if not self.labels:
            raise ValueError(Errors.E100.format(name=self.name))
        examples = ""
        if self.cfg["examples"]:
            shown = "\n\n".join(f"Text: {self.prompt_text(text_)}\nCategory: {label}" for text_, label in self.cfg["examples"])
            examples = f"Examples:\n{shown}\n\n"
        return self.cfg["template"].format(labels=self.label_lines(), examples=examples, text=self.prompt_text(text))

    def predict(self, docs: Iterable[Doc]) -> LLMScores:
        """Ask the model about every non-empty doc; probabilities, prompts and answers."""
        docs = list(docs)
        todo, prompts = self.prompts(docs)
        n_labels = len(self.labels)
        probs = np.full((len(docs), n_labels), 1.0 / n_labels)
        responses: List[Optional[str]] = [None] * len(docs)
        if not todo:
            return LLMScores(probs, prompts, responses)
        batch = [prompts[i] for i in todo]
        if self.method == "choices":
            logp = np.asarray(self.backend.score_choices(batch, list(self.labels)), dtype=np.float64)
            logp = logp - logp.max(axis=1, keepdims=True)
            p = np.exp(logp)
            probs[todo] = p / p.sum(axis=1, keepdims=True)
            for row, i in enumerate(todo):
                responses[i] = self.labels[int(np.argmax(logp[row]))]
            return LLMScores(probs, prompts, responses)
        answers = self.backend.generate(batch)
        n_unparsed = 0
        for i, answer in zip(todo, answers):
            responses[i] = answer
            label = parse_label(answer, self.labels)
            if label is None:
                n_unparsed += 1
                continue
            # The answered label gets how often such answers were right (at least an equal
            # share: a label the model did not name never comes out ahead of the one it did);
            # the other labels share the rest.
            confidence = max(self.confidence(label), 1.0 / n_labels)
            probs[i] = (1.0 - confidence) / max(n_labels - 1, 1)
            probs[i, self.labels.index(label)] = confidence
        if n_unparsed:
            warnings.warn(f"{self.name}: {n_unparsed} of {len(todo)} answers named no label; those docs "
                          f"get equal probabilities. Set save_io = true to see the answers.")
        return LLMScores(probs, prompts, responses)

    def set_annotations(self, docs: Iterable[Doc], scores: LLMScores) -> None:
        """Write the probabilities (``doc.cats``, ``doc._.hybrid_cats[source]``) and, with
        ``save_io``, the prompt and answer."""
        docs = list(docs)
        self.write_probabilities(docs, scores.probs)
        self.save_io(docs, scores.prompts, scores.responses)

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
        """Take the label set (and, with ``examples_per_label``, the examples the prompt
        shows) from the training examples. label_texts: ``{label: description}`` or a JSON
        file path; labels left out are listed by name only. dev_corpus (a reader ``nlp ->
        examples``): with method "generate", measure how often each answered label is right
        on its first ``calibration_docs`` texts (the model runs on them)."""
        examples = initial_examples(get_examples, labels, f"{self.name}.initialize")
        label_list = exclusive_labels(self.name, examples, labels)
        texts = read_label_texts(self.name, label_texts, label_list)
        shots = first_examples(examples, label_list, self.cfg["examples_per_label"])
        shown = []  # round robin over the labels, so that no label is always shown last
        for k in range(self.cfg["examples_per_label"]):
            shown.extend((shots[label][k], label) for label in label_list if k < len(shots[label]))
        self.cfg.update(labels=label_list, label_texts=texts, examples=[list(pair) for pair in shown])
        # Scored answers carry the model's own probabilities; only parsed ones need this.
        self.calibrate(dev_corpus if self.method == "generate" else None, nlp)

    def answer_outcomes(self, example: Example, prediction: LLMScores, index: int) -> Iterable[Tuple[str, bool]]:
        """The label the answer named (none when it named none), and whether it is gold."""
        label = parse_label(prediction.responses[index] or "", self.labels)
        gold = [name for name, value in example.reference.cats.items() if value >= 0.5]
        return [(label, label in gold)] if label is not None and gold else []


@Language.factory(
    "llm_textcat",
    default_config=DEFAULT_LLM_TEXTCAT_CONFIG,
    assigns=["doc.cats", "doc._.hybrid_cats"],
    default_score_weights={"cats_score": 1.0, "cats_micro_f": None, "cats_macro_f": None},
)
def make_llm_textcat(
    nlp: Language,
    name: str,
    backend: Any,
    template: str,
    method: str,
    examples_per_label: int,
    calibration_docs: int,
    prior_hits: float,
    prior_misses: float,
    max_text_chars: int,
    save_io: bool,
    source: Optional[str],
    set_doc_cats: bool,
    scorer: Optional[Callable],
) -> LLMTextCategorizer:
    """Build a prompted text classifier (see the module docstring).

    backend: a registered backend (``hybridnlp.LLM.v1``, ``hybridnlp.LocalLLM.v1``,
        ``hybridnlp.ServerLLM.v1``) or any object with ``generate(prompts)``.
    template: the prompt, with ``{labels}``, ``{examples}`` and ``{text}`` placeholders.
    method: "auto", "choices" (score each label) or "generate" (parse the answer).
    examples_per_label: training texts per label shown in the prompt (0: zero-shot).
    calibration_docs, prior_hits, prior_misses: with method "generate", a parsed answer's
        label gets its smoothed precision on that many dev texts as its probability.
    max_text_chars: longer texts are cut to this many characters in the prompt (warned).
    save_io: keep each doc's prompt and answer in ``doc.user_data["llm_io"][name]``.
    source, set_doc_cats, scorer: as for the other category components.
    """
    return LLMTextCategorizer(
        nlp.vocab,
        name,
        backend=backend,
        template=template,
        method=method,
        examples_per_label=examples_per_label,
        calibration_docs=calibration_docs,
        prior_hits=prior_hits,
        prior_misses=prior_misses,
        max_text_chars=max_text_chars,
        save_io=save_io,
        source=source,
        set_doc_cats=set_doc_cats,
        scorer=scorer,
    )
