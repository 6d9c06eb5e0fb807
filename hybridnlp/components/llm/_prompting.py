"""What the prompted components share: checking a prompt template, listing the labels,
choosing which docs to send (and cutting long texts, with a warning), and keeping each
doc's prompt and answer."""

import warnings
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from ...errors import Errors
from ..ensemble._base import JsonCfgPipe


class PromptedPipe(JsonCfgPipe):
    """Base of ``llm_textcat`` and ``llm_ner``: ``cfg`` holds ``template``,
    ``max_text_chars``, ``save_io``, ``labels`` and ``label_texts``; ``self.backend`` is the
    language model (rebuilt from the config on load, never saved)."""

    backend: Any
    whole_numbers: Dict[str, int] = {}  # setting -> smallest allowed value

    def _check_cfg(self, cfg: Dict[str, Any]) -> None:
        super()._check_cfg(cfg)
        template = cfg["template"]
        if not isinstance(template, str) or "{text}" not in template or "{labels}" not in template:
            raise ValueError(Errors.E548.format(name=self.name, template=template))
        for key, least in dict(self.whole_numbers, max_text_chars=1).items():
            value = cfg[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(Errors.E104.format(name=self.name, key=key, value=value,
                                                    hint=f"Use a whole number >= {least}."))

    def label_lines(self) -> str:
        """The labels as the prompt lists them: ``- LABEL`` or ``- LABEL: description``."""
        lines = []
        for label in self.cfg["labels"]:
            description = self.cfg["label_texts"].get(label)
            lines.append(f"- {label}: {description}" if description else f"- {label}")
        return "\n".join(lines)

    def prompt_text(self, text: str) -> str:
        """A text as the prompt shows it: whitespace runs made single spaces (so that it is
        one line), then cut to ``max_text_chars``."""
        return " ".join(text.split())[: self.cfg["max_text_chars"]]

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
