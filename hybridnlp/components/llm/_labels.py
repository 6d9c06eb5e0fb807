"""What the components that classify without training share: the label set, the
descriptions a user gives, the first few training texts of each label, and how their
probabilities are written and scored."""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import srsly
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples

from ...errors import Errors
from ..outputs import write_cats


def exclusive_cats_score(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
    """spaCy's category scores (``cats_score``, ``cats_macro_f``, ...), exclusive classes."""
    return Scorer.score_cats(examples, "cats", multi_label=False, **kwargs)


class LabelledOutput:
    """The label set and output key of a component whose ``cfg`` holds ``labels`` and
    ``source``."""

    cfg: Dict[str, Any]
    name: str

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def source(self) -> str:
        """The key of this component's output (``doc._.hybrid_cats`` / ``doc.spans``)."""
        return self.cfg.get("source") or self.name


class ExclusiveCatsOutput(LabelledOutput):
    """Labels, output key, writing and scoring of an exclusive-class component whose
    ``cfg`` holds ``labels``, ``source`` and ``set_doc_cats``."""

    scorer: Callable

    def write_probabilities(self, docs: Iterable[Doc], probs: np.ndarray) -> None:
        """One row of probabilities per doc to ``doc.cats`` and ``doc._.hybrid_cats[source]``."""
        for doc, row in zip(docs, probs):
            write_cats(doc, self.source, dict(zip(self.labels, row.tolist())), set_doc_cats=self.cfg["set_doc_cats"])

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """spaCy category scores of the predicted docs; gold labels outside ``labels`` are
        ignored by the scorer."""
        kwargs.setdefault("labels", self.labels)
        return self.scorer(examples, **kwargs)


def label_name_text(label: str) -> str:
    """A label's name as words: ``card_arrival`` -> ``card arrival``."""
    return " ".join(label.replace("_", " ").replace("-", " ").split())


def template_problem(template: Any, required: Iterable[str], allowed: Iterable[str]) -> Optional[str]:
    """What is wrong with a ``str.format`` template (None when nothing is): it must name every
    ``required`` field, no field outside ``allowed``, and format without error."""
    import string

    if not isinstance(template, str):
        return "is not a string"
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
        template.format(**{field: "" for field in allowed})
    except (ValueError, KeyError, IndexError, AttributeError) as err:
        return f"cannot be filled in ({type(err).__name__}: {err})"
    missing = [f"{{{field}}}" for field in required if field not in fields]
    if missing:
        return f"has no {', '.join(missing)}"
    unknown = sorted(fields - set(allowed))
    if unknown:
        return f"has unknown fields {unknown}"
    return None


def initial_examples(get_examples: Optional[Callable[[], Iterable[Example]]], labels: Optional[Iterable[str]],
                     method: str) -> List[Example]:
    """The examples ``initialize`` reads. With ``labels`` given none are needed: a component
    that trains nothing can start from a list of labels alone."""
    if labels is not None:
        return list(get_examples() or []) if get_examples is not None else []
    validate_get_examples(get_examples, method)
    return list(get_examples())


def exclusive_labels(name: str, examples: List[Example], labels: Optional[Iterable[str]]) -> List[str]:
    """``labels`` (duplicates dropped), else the sorted labels of the examples' ``cats``.
    E530 for an example with several positive labels, E101 for no labels at all."""
    for index, eg in enumerate(examples):
        n_pos = sum(1 for value in eg.reference.cats.values() if value >= 0.5)
        if n_pos > 1:
            raise ValueError(Errors.E530.format(name=name, index=index, n_pos=n_pos))
    if labels is not None:
        label_list = list(dict.fromkeys(labels))
    else:
        label_list = sorted({label for eg in examples for label in eg.reference.cats})
    if not label_list:
        raise ValueError(Errors.E101.format(name=name, what="cats"))
    return label_list


def read_label_texts(name: str, given: Optional[Union[Dict[str, str], str, Path]],
                     labels: List[str]) -> Dict[str, str]:
    """The descriptions ``given`` (a dict or the path of a JSON object), checked: E532 for a
    label outside ``labels``, E533 for a description that is not a non-empty string."""
    if isinstance(given, (str, Path)):
        given = srsly.read_json(given)
    given = dict(given or {})
    unknown = sorted(set(given) - set(labels))
    if unknown:
        raise ValueError(Errors.E532.format(name=name, unknown=unknown, labels=labels))
    for label, text in given.items():
        if not isinstance(text, str) or not text.strip():
            raise ValueError(Errors.E533.format(name=name, label=label, value=text))
    return given


def first_examples(examples: List[Example], labels: List[str], k: int) -> Dict[str, List[str]]:
    """The first ``k`` non-empty training texts of each label, in corpus order."""
    shots: Dict[str, List[str]] = {label: [] for label in labels}
    if k == 0:
        return shots
    for eg in examples:
        gold = [label for label, value in eg.reference.cats.items() if value >= 0.5 and label in shots]
        if gold and len(shots[gold[0]]) < k and eg.reference.text.strip():
            shots[gold[0]].append(eg.reference.text)
    return shots
