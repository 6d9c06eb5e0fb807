"""``zeroshot_textcat``: text classification from label descriptions, with no training.

all-MiniLM-L6-v2 was trained so that texts with similar meanings get sentence embeddings
with a high cosine similarity. This component embeds each label's description once (in
``initialize``) and, for every doc, picks the labels whose description is most similar to
the doc:

* **Sentence embedding.** The mean of the transformer's last hidden states over all
  wordpieces (``[CLS]`` and ``[SEP]`` included), L2-normalised: sentence-transformers' own
  pooling for this model, so a doc gets the embedding the model was trained to produce. It is
  read from ``doc._.trf_data``, which the pipeline's ``transformer`` component writes, so the
  encoder runs once per doc whatever else listens to it. A doc longer than one window is
  read in spacy-transformers' strided windows and gets the mean over all their wordpieces.
* **Label embeddings.** A label's text is its entry in ``label_texts`` (``initialize``), else
  ``template`` filled with the label's name (``card_arrival`` -> ``"card arrival"``). With
  ``examples_per_label = k`` > 0 the first k training texts of each label (in corpus order)
  join the description: the label's vector is the normalised mean of the normalised
  embeddings of its description and its examples (a nearest-centroid classifier that starts
  from the description). Vectors are computed once and saved with the pipeline.
* **Probabilities.** ``softmax(scale * cosine)`` over the labels; ``scale = 20`` is the inverse
  temperature the model was trained with (sentence-transformers' MultipleNegativesRankingLoss).
  Given a ``dev_corpus`` in ``initialize``, ``scale`` is instead the value that gives the dev
  texts' gold labels the highest likelihood (temperature scaling): it changes no prediction,
  only how sure the probabilities say the model is. An empty or whitespace-only text gets equal probabilities for
  every label.

Exclusive classes only: each doc gets exactly one label. Writes ``doc.cats`` (unless
``set_doc_cats`` is false) and ``doc._.hybrid_cats[source]``.
"""

import io
import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
import srsly
from spacy import util
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab

from ...errors import Errors
from .._pipe import BatchPipe, keep_given_settings
from ._labels import (ExclusiveCatsOutput, exclusive_cats_score, exclusive_labels, first_examples, initial_examples,
                      label_name_text, read_label_texts, template_problem)

FORMAT_VERSION = 1
CFG_FILE = "cfg.json"
PROTOTYPES_FILE = "prototypes.npy"

DEFAULT_ZEROSHOT_TEXTCAT_CONFIG = {
    "upstream": "transformer",
    "template": "{label}",
    "examples_per_label": 0,
    "scale": 20.0,
    "source": None,
    "set_doc_cats": True,
    "scorer": None,
}


def _host(array) -> np.ndarray:
    return array.get() if hasattr(array, "get") else np.asarray(array)


def sentence_vector(doc: Doc) -> Optional[np.ndarray]:
    """The doc's sentence embedding from ``doc._.trf_data`` (mean over every wordpiece of
    every window, ``[CLS]``/``[SEP]`` included; not normalised), or None when the transformer
    produced nothing for it (an empty doc)."""
    trf_data = doc._.trf_data
    state = trf_data.model_output.get("last_hidden_state")
    if state is None or state.size == 0:
        return None
    state = _host(state).astype(np.float64)  # (windows, wordpieces, width)
    mask = trf_data.wordpieces.attention_mask
    mask = np.ones(state.shape[:2]) if mask is None else _host(mask).astype(np.float64).reshape(state.shape[:2])
    total = mask.sum()
    if total == 0:
        return None
    return (state * mask[:, :, None]).sum(axis=(0, 1)) / total


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def fit_scale(similarities: np.ndarray, gold: np.ndarray, low: float = 1.0, high: float = 200.0) -> float:
    """The inverse temperature in [low, high] under which ``softmax(scale * similarities)``
    gives the gold labels (column indices) the highest mean log-likelihood: the best of a
    log-spaced grid of 200 values (steps of under 3%)."""
    best, best_nll = low, float("inf")
    rows = np.arange(len(gold))
    for scale in np.exp(np.linspace(np.log(low), np.log(high), 200)):
        z = scale * similarities
        z = z - z.max(axis=1, keepdims=True)
        nll = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, gold]))
        if nll < best_nll:
            best, best_nll = float(scale), nll
    return best


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class ZeroShotTextCategorizer(ExclusiveCatsOutput, BatchPipe):
    """Exclusive-class text classifier by cosine similarity of sentence embeddings to label
    descriptions (see the module docstring). Nothing is trained; ``initialize`` embeds the
    labels."""

    def __init__(
        self,
        vocab: Vocab,
        name: str = "zeroshot_textcat",
        *,
        upstream: str = "transformer",
        template: str = "{label}",
        examples_per_label: int = 0,
        scale: float = 20.0,
        source: Optional[str] = None,
        set_doc_cats: bool = True,
        scorer: Optional[Callable] = None,
    ) -> None:
        self.vocab = vocab
        self.name = name
        self.scorer = scorer or exclusive_cats_score
        self.cfg: Dict[str, Any] = {
            "upstream": upstream,
            "template": template,
            "examples_per_label": examples_per_label,
            "scale": scale,
            "source": source,
            "set_doc_cats": set_doc_cats,
            "labels": [],
            "label_texts": {},
            "examples": {},
            "scale_fitted_on": 0,
        }
        self._check_settings(self.cfg)
        self._configured_scale = scale  # what initialize starts from (a fit replaces it)
        self._prototypes: Optional[np.ndarray] = None

    def _check_settings(self, cfg: Dict[str, Any]) -> None:
        def bad(key: str, hint: str) -> ValueError:
            return ValueError(Errors.E104.format(name=self.name, key=key, value=cfg[key], hint=hint))

        if not isinstance(cfg["upstream"], str) or not cfg["upstream"]:
            raise bad("upstream", "Name the transformer component to read embeddings from.")
        if template_problem(cfg["template"], ("label",), ("label",)):
            raise bad("template", 'Use a string with a "{label}" placeholder, e.g. "a question about {label}" '
                                  '(other braces doubled: {{ }}).')
        k = cfg["examples_per_label"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise bad("examples_per_label", "Use a whole number >= 0 (0: descriptions only).")
        scale = cfg["scale"]
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < float("inf"):
            raise bad("scale", "Use a positive number (the inverse softmax temperature; 20 for MiniLM).")

    # ------------------------------------------------------------------ properties
    @property
    def is_initialized(self) -> bool:
        return self._prototypes is not None

    @property
    def label_texts(self) -> Dict[str, str]:
        """The description each label was embedded from."""
        return dict(self.cfg["label_texts"])

    # ------------------------------------------------------------------ prediction
    def _vectors(self, docs: Sequence[Doc], width: Optional[int] = None) -> np.ndarray:
        """Normalised sentence embeddings, one row per doc (zeros for a doc with no text);
        ``width`` defaults to the embeddings' own."""
        vectors = []
        for doc in docs:
            if not Doc.has_extension("trf_data") or doc._.trf_data is None:
                raise ValueError(Errors.E531.format(name=self.name))
            vectors.append(sentence_vector(doc) if doc.text.strip() else None)
        if width is None:
            width = next((v.shape[0] for v in vectors if v is not None), None)
            if width is None:
                raise ValueError(Errors.E531.format(name=self.name))
        out = np.zeros((len(docs), width))
        for i, vector in enumerate(vectors):
            if vector is not None:
                out[i] = vector
        return _normalise(out)

    def similarities(self, docs: Iterable[Doc]) -> np.ndarray:
        """Cosine similarity of each doc (row) to each label (column, ``self.labels``)."""
        if self._prototypes is None:
            raise ValueError(Errors.E100.format(name=self.name))
        docs = list(docs)
        return self._vectors(docs, self._prototypes.shape[1]) @ self._prototypes.T

    def predict(self, docs: Iterable[Doc]) -> np.ndarray:
        """Probabilities, one row per doc and one column per label; rows sum to 1."""
        return _softmax(self.cfg["scale"] * self.similarities(docs))

    def set_annotations(self, docs: Iterable[Doc], scores: np.ndarray) -> None:
        """Write the probabilities to ``doc.cats`` and ``doc._.hybrid_cats[source]``."""
        self.write_probabilities(docs, scores)

    # ------------------------------------------------------------------ initialization
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Iterable[str]] = None,
        label_texts: Optional[Union[Dict[str, str], str, Path]] = None,
        dev_corpus: Optional[Callable[[Language], Iterable[Example]]] = None,
    ) -> None:
        """Embed every label's description (and, with ``examples_per_label``, its first
        training texts).

        labels: the label set and its order (default: the sorted labels of the examples).
        label_texts: ``{label: description}``, or the path of a JSON file holding one; labels
            left out are described by ``template`` filled with their name.
        dev_corpus: a reader ``nlp -> examples``; when given, ``scale`` is fitted on it
            (temperature scaling; predictions do not change).
        """
        examples = initial_examples(get_examples, labels, f"{self.name}.initialize")
        label_list = exclusive_labels(self.name, examples, labels)
        given = read_label_texts(self.name, label_texts, label_list)
        template = self.cfg["template"]
        texts = {label: given.get(label) or template.format(label=label_name_text(label)) for label in label_list}
        shots = first_examples(examples, label_list, self.cfg["examples_per_label"])
        transformer = self._transformer(nlp)
        all_texts = [texts[label] for label in label_list] + [t for label in label_list for t in shots[label]]
        vectors = self._embed(transformer, nlp, all_texts)
        prototypes = np.zeros((len(label_list), vectors.shape[1]))
        row = len(label_list)
        for i, label in enumerate(label_list):
            n = len(shots[label])
            prototypes[i] = np.vstack([vectors[i:i + 1], vectors[row:row + n]]).mean(axis=0)
            row += n
        self.cfg.update(labels=label_list, label_texts=texts, examples=shots, scale=self._configured_scale,
                        scale_fitted_on=0)
        self._prototypes = _normalise(prototypes)
        if dev_corpus is not None:
            self._fit_scale(list(dev_corpus(nlp) if callable(dev_corpus) else dev_corpus), transformer, nlp)

    def _fit_scale(self, examples: List[Example], transformer, nlp: Language) -> None:
        """Set ``scale`` to the value under which the dev texts' gold labels are most likely."""
        index = {label: i for i, label in enumerate(self.labels)}
        texts, gold = [], []
        for eg in examples:
            positive = [label for label, value in eg.reference.cats.items() if value >= 0.5 and label in index]
            if len(positive) == 1 and eg.reference.text.strip():
                texts.append(eg.reference.text)
                gold.append(index[positive[0]])
        if not texts:
            return
        similarities = self._embed(transformer, nlp, texts) @ self._prototypes.T
        self.cfg["scale"] = fit_scale(similarities, np.asarray(gold))
        self.cfg["scale_fitted_on"] = len(texts)

    def _transformer(self, nlp: Optional[Language]):
        name = self.cfg["upstream"]
        if nlp is None or name not in nlp.component_names:
            raise ValueError(Errors.E531.format(name=self.name))
        return nlp.get_pipe(name)

    def _embed(self, transformer, nlp: Language, texts: List[str], batch_size: int = 64) -> np.ndarray:
        """Normalised sentence embeddings of ``texts`` by the pipeline's transformer."""
        from tqdm import tqdm

        rows = []
        with tqdm(total=len(texts), desc=f"{self.name}: embeddings", unit="text", leave=False,
                  disable=len(texts) < 200) as bar:
            for batch in util.minibatch(texts, size=batch_size):
                docs = list(transformer.pipe([nlp.make_doc(text) for text in batch], batch_size=batch_size))
                rows.append(self._vectors(docs))
                bar.update(len(batch))
        return np.vstack(rows)

    # ------------------------------------------------------------------ serialization
    def _state(self) -> Dict[str, Any]:
        return dict(self.cfg, format_version=FORMAT_VERSION, initialized=self.is_initialized)

    def _load_state(self, cfg: Any, prototypes: Optional[np.ndarray], where: str) -> None:
        """Install a loaded cfg and label vectors after checking that they fit together."""
        try:
            if not isinstance(cfg, dict) or cfg.get("format_version") != FORMAT_VERSION:
                raise ValueError("unknown format_version")
            new = keep_given_settings(self.cfg, {key: cfg[key] for key in self.cfg}, ("source", "set_doc_cats"))
            self._check_settings(new)
            labels = new["labels"]
            if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
                raise ValueError("labels must be a list of strings")
            if set(new["label_texts"]) != set(labels) or set(new["examples"]) != set(labels):
                raise ValueError("label_texts and examples must have one entry per label")
            if cfg.get("initialized"):
                if prototypes is None:
                    raise ValueError("the cfg says the component is initialized but the label vectors are missing")
                if prototypes.ndim != 2 or prototypes.shape[0] != len(labels) or prototypes.dtype != np.float64:
                    raise ValueError(f"label vectors of shape {prototypes.shape} ({prototypes.dtype}) do not fit "
                                     f"{len(labels)} labels")
            else:
                prototypes = None
        except Exception as err:  # any malformed content is reported the same way
            raise ValueError(Errors.E103.format(name=self.name, path=where, problem=f"{type(err).__name__}: {err}")) from None
        self.cfg = new
        self._prototypes = prototypes

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        """The component as bytes (msgpack of JSON and .npy bytes; no pickle)."""
        data = {"cfg": json.dumps(self._state())}
        if self._prototypes is not None:
            buf = io.BytesIO()
            np.save(buf, self._prototypes, allow_pickle=False)
            data["prototypes"] = buf.getvalue()
        return srsly.msgpack_dumps(data)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "ZeroShotTextCategorizer":
        """Load what ``to_bytes`` wrote; E103 for data that does not fit together."""
        try:
            data = srsly.msgpack_loads(bytes_data)
            cfg = json.loads(data["cfg"])
            prototypes = np.load(io.BytesIO(data["prototypes"]), allow_pickle=False) if "prototypes" in data else None
        except Exception as err:
            raise ValueError(Errors.E103.format(name=self.name, path="<bytes>", problem=f"{type(err).__name__}: {err}")) from None
        self._load_state(cfg, prototypes, "<bytes>")
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Write ``cfg.json`` (labels, their descriptions and examples) and
        ``prototypes.npy`` (one unit vector per label) under ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        # The standard library writes floats exactly (srsly's ujson rounds them).
        (path / CFG_FILE).write_text(json.dumps(self._state(), indent=2, ensure_ascii=False), encoding="utf8")
        if self._prototypes is not None:
            np.save(path / PROTOTYPES_FILE, self._prototypes, allow_pickle=False)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "ZeroShotTextCategorizer":
        """Load what ``to_disk`` wrote: E102 for a missing file, E103 for a corrupt one."""
        path = Path(path)
        cfg_path = path / CFG_FILE
        if not cfg_path.is_file():
            raise OSError(Errors.E102.format(name=self.name, path=path, file=CFG_FILE))
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf8"))
        except Exception as err:
            raise ValueError(Errors.E103.format(name=self.name, path=cfg_path, problem=f"{type(err).__name__}: {err}")) from None
        prototypes = None
        if isinstance(cfg, dict) and cfg.get("initialized"):
            if not (path / PROTOTYPES_FILE).is_file():
                raise OSError(Errors.E102.format(name=self.name, path=path, file=PROTOTYPES_FILE))
            try:
                prototypes = np.load(path / PROTOTYPES_FILE, allow_pickle=False)
            except Exception as err:
                raise ValueError(Errors.E103.format(name=self.name, path=path / PROTOTYPES_FILE,
                                                    problem=f"{type(err).__name__}: {err}")) from None
        self._load_state(cfg, prototypes, str(path))
        return self


@Language.factory(
    "zeroshot_textcat",
    default_config=DEFAULT_ZEROSHOT_TEXTCAT_CONFIG,
    assigns=["doc.cats", "doc._.hybrid_cats"],
    default_score_weights={"cats_score": 1.0, "cats_micro_f": None, "cats_macro_f": None},
)
def make_zeroshot_textcat(
    nlp: Language,
    name: str,
    upstream: str,
    template: str,
    examples_per_label: int,
    scale: float,
    source: Optional[str],
    set_doc_cats: bool,
    scorer: Optional[Callable],
) -> ZeroShotTextCategorizer:
    """Build a zero-shot text classifier over the sentence embeddings of the transformer
    component ``upstream`` (see the module docstring).

    template: the description of a label that ``label_texts`` leaves out; ``{label}`` is
        replaced by the label's name as words.
    examples_per_label: how many training texts per label join its description (0: none;
        the component is then zero-shot).
    scale: inverse softmax temperature over cosine similarities.
    source: key in ``doc._.hybrid_cats`` (default: the component's name); set_doc_cats: also
        write ``doc.cats``. scorer: null for spaCy's category scorer.
    """
    return ZeroShotTextCategorizer(
        nlp.vocab,
        name,
        upstream=upstream,
        template=template,
        examples_per_label=examples_per_label,
        scale=scale,
        source=source,
        set_doc_cats=set_doc_cats,
        scorer=scorer,
    )
