"""What the prompted components share: checking a prompt template, listing the labels,
choosing which docs to send (and cutting long texts, with a warning), keeping each doc's
prompt and answer, and measuring how often the model is right per label on dev texts."""

import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from ...errors import Errors
from ..classical.rule_ner import _smoothed
from ..ensemble._base import JsonCfgPipe
from ._labels import template_problem


class PromptedPipe(JsonCfgPipe):
    """Base of ``llm_textcat`` and ``llm_ner``: ``cfg`` holds ``template``,
    ``max_text_chars``, ``save_io``, ``labels``, ``label_texts`` and the calibration
    (``calibration_docs``, ``prior_hits``, ``prior_misses``, ``precision``); ``self.backend``
    is the language model (rebuilt from the config on load, never saved).

    **Calibration.** A generated answer says nothing about how sure the model is, so the
    confidence of an answer with label L is the smoothed precision of L on held-out data:
    ``(tp + prior_hits) / (n + prior_hits + prior_misses)``, where the model answered L n
    times on the first ``calibration_docs`` dev texts and was right tp times (the prior mean,
    0.8 by default, for a label it never answered or without a dev corpus), as ``rule_ner``
    scores its rules.
    """

    CONFIG_SETTINGS = ("source", "set_doc_cats", "set_ents", "save_io", "max_text_chars")

    backend: Any
    whole_numbers: Dict[str, int] = {}  # setting -> smallest allowed value

    def _check_cfg(self, cfg: Dict[str, Any]) -> None:
        super()._check_cfg(cfg)
        problem = template_problem(cfg["template"], ("text", "labels"), ("text", "labels", "examples"))
        if problem:
            raise ValueError(Errors.E548.format(name=self.name, template=cfg["template"], problem=problem))
        for key, least in dict(self.whole_numbers, max_text_chars=1, calibration_docs=0).items():
            value = cfg[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(Errors.E104.format(name=self.name, key=key, value=value,
                                                    hint=f"Use a whole number >= {least}."))
        for key in ("prior_hits", "prior_misses"):
            value = cfg[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(Errors.E104.format(name=self.name, key=key, value=value,
                                                    hint="Use a number >= 0 (pseudo-counts of the prior)."))
        if cfg["prior_hits"] + cfg["prior_misses"] <= 0:
            raise ValueError(Errors.E104.format(name=self.name, key="prior_misses", value=cfg["prior_misses"],
                                                hint="prior_hits + prior_misses must be > 0."))

    def label_lines(self) -> str:
        """The labels as the prompt lists them: ``- LABEL`` or ``- LABEL: description``."""
        lines = []
        for label in self.cfg["labels"]:
            description = self.cfg["label_texts"].get(label)
            lines.append(f"- {label}: {description}" if description else f"- {label}")
        return "\n".join(lines)

    def prompt_text(self, text: str) -> str:
        """A text as the prompt shows it: whitespace runs made single spaces (so that it is
        one line), cut to ``max_text_chars``; a character UTF-8 cannot encode (a lone
        surrogate) becomes "?"."""
        text = " ".join(text.split())[: self.cfg["max_text_chars"]]
        return text.encode("utf-8", "replace").decode("utf-8")

    def prompt(self, text: str) -> str:
        raise NotImplementedError

    def prompts(self, docs: Sequence[Doc]) -> Tuple[List[int], List[Optional[str]]]:
        """The indices of the docs to send (those with any text) and every doc's prompt
        (None for the others). Warns with the count of texts cut to ``max_text_chars``."""
        if not self.cfg["labels"]:
            raise ValueError(Errors.E100.format(name=self.name))
        todo = [i for i, doc in enumerate(docs) if doc.text.strip()]
        limit = self.cfg["max_text_chars"]
        n_cut = sum(1 for i in todo if len(" ".join(docs[i].text.split())) > limit)
        if n_cut:
            warnings.warn(f"{self.name}: {n_cut} of {len(docs)} texts were cut to max_text_chars={limit} "
                          f"characters for the prompt; raise it if the model's context allows.")
        prompts: List[Optional[str]] = [None] * len(docs)
        for i in todo:
            prompts[i] = self.prompt(docs[i].text)
        return todo, prompts

    def save_io(self, docs: Iterable[Doc], prompts: Sequence[Optional[str]],
                responses: Sequence[Optional[str]]) -> None:
        """With ``save_io``, each doc's prompt and answer to ``doc.user_data["llm_io"][name]``."""
        if self.cfg["save_io"]:
            for doc, prompt, response in zip(docs, prompts, responses):
                doc.user_data.setdefault("llm_io", {})[self.name] = {"prompt": prompt, "response": response}

    # ---- calibration ---------------------------------------------------------------------

    def confidence(self, label: str) -> float:
        """How often an answer with this label was right on the calibration texts (smoothed)."""
        tp, n = self.cfg["precision"].get(label, (0, 0))
        return _smoothed(tp, n, self.cfg["prior_hits"], self.cfg["prior_misses"])

    def answer_outcomes(self, example: Example, prediction: Any, index: int) -> Iterable[Tuple[str, bool]]:
        """``(label answered, whether it was right)`` for one calibration text."""
        raise NotImplementedError

    def calibrate(self, dev_corpus: Optional[Callable[[Language], Iterable[Example]]],
                  nlp: Optional[Language]) -> None:
        """Run the model on the first ``calibration_docs`` texts of ``dev_corpus`` (with a
        progress bar) and keep, per label, ``[right, answered]`` in ``cfg["precision"]``."""
        from spacy import util
        from tqdm import tqdm

        self.cfg["precision"] = {}
        if dev_corpus is None or not self.cfg["calibration_docs"]:
            return
        examples = []
        for eg in (dev_corpus(nlp) if callable(dev_corpus) else dev_corpus):
            if len(examples) >= self.cfg["calibration_docs"]:
                break
            examples.append(eg)
        counts = {label: [0, 0] for label in self.cfg["labels"]}
        with tqdm(total=len(examples), desc=f"{self.name}: calibration", unit="doc", leave=False) as bar:
            for batch in util.minibatch(examples, size=16):
                prediction = self.predict([eg.predicted for eg in batch])
                for index, eg in enumerate(batch):
                    for label, right in self.answer_outcomes(eg, prediction, index):
                        counts[label][1] += 1
                        counts[label][0] += int(right)
                bar.update(len(batch))
        self.cfg["precision"] = counts
