"""Labels for the components that classify without training: the label set, the
descriptions a user gives, and the first few training texts of each label."""

from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

import srsly
from spacy.training import Example

from ...errors import Errors


def label_name_text(label: str) -> str:
    """A label's name as words: ``card_arrival`` -> ``card arrival``."""
    return " ".join(label.replace("_", " ").replace("-", " ").split())


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
