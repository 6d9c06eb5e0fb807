"""What the ensemblers share: reading their sources' outputs off held-out examples, and
saving their fitted settings (plain numbers) as JSON."""

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import srsly
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples

from ...errors import Errors
from .._pipe import BatchPipe, keep_given_settings

FORMAT_VERSION = 1


def check_probability(name: str, key: str, value: Any, hint: str = "") -> float:
    """``value`` as a float if it is a number strictly between 0 and 1, else E104."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value < 1.0):
        raise ValueError(Errors.E104.format(name=name, key=key, value=value,
                                            hint=f"Use a probability between 0 and 1 (exclusive){hint}."))
    return float(value)


def run_pipes(pipes: Sequence[Any], docs: List[Doc], *, desc: Optional[str] = None) -> List[Doc]:
    """Annotate ``docs`` with each pipe in turn (whether or not the pipeline has it enabled);
    with ``desc``, a progress bar over the pipes."""
    from tqdm import tqdm

    with tqdm(total=len(pipes), desc=desc, unit="pipe", leave=False, disable=desc is None) as bar:
        for pipe in pipes:
            docs = list(pipe.pipe(docs)) if hasattr(pipe, "pipe") else [pipe(doc) for doc in docs]
            bar.update(1)
    return docs


class JsonCfgPipe(BatchPipe):
    """A pipe whose whole state is ``self.cfg`` (plain numbers, strings and lists), saved as
    JSON; base of the ensemblers and the cascade.

    Subclasses implement ``_check_cfg(cfg)`` (raise on a cfg that does not make sense) and
    ``_after_load()`` when something derives from the cfg.
    """

    cfg: Dict[str, Any]
    # Settings whose value from the config (when given) holds over the saved one on load.
    CONFIG_SETTINGS: Tuple[str, ...] = ()

    # ---- serialization ------------------------------------------------------------------

    def _check_cfg(self, cfg: Dict[str, Any]) -> None:
        """Raise when a loaded cfg does not make sense (checked before it replaces ours)."""

    def _after_load(self) -> None:
        """Rebuild whatever derives from the cfg."""

    def _load_cfg(self, cfg: Any, where: str) -> None:
        try:
            if not isinstance(cfg, dict) or cfg.get("format_version") != FORMAT_VERSION:
                raise ValueError("unknown format_version")
            new = keep_given_settings(self.cfg, {key: cfg[key] for key in self.cfg}, self.CONFIG_SETTINGS)
            self._check_cfg(new)
        except Exception as err:  # any malformed content is reported the same way
            raise ValueError(Errors.E103.format(name=self.name, path=where, problem=f"{type(err).__name__}: {err}")) from None
        self.cfg = new
        self._after_load()

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.msgpack_dumps({"cfg": dict(self.cfg, format_version=FORMAT_VERSION)})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()):
        try:
            data = srsly.msgpack_loads(bytes_data)
        except Exception as err:
            raise ValueError(Errors.E103.format(name=self.name, path="<bytes>", problem=f"{type(err).__name__}: {err}")) from None
        self._load_cfg(data.get("cfg") if isinstance(data, dict) else None, "<bytes>")
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Write ``cfg`` (JSON: sources, labels, weights) into the directory ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        # The standard library writes floats exactly (srsly's ujson rounds them), so a
        # reloaded pipeline gives bit-identical probabilities.
        (path / "cfg").write_text(json.dumps(dict(self.cfg, format_version=FORMAT_VERSION), indent=2), encoding="utf8")

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()):
        """Load what ``to_disk`` wrote; E102 if the file is missing, E103 if it is corrupt."""
        fpath = Path(path) / "cfg"
        if not fpath.is_file():
            raise OSError(Errors.E102.format(name=self.name, path=path, file="cfg"))
        try:
            cfg = json.loads(fpath.read_text(encoding="utf8"))
        except Exception as err:
            raise ValueError(Errors.E103.format(name=self.name, path=fpath, problem=f"{type(err).__name__}: {err}")) from None
        self._load_cfg(cfg, str(fpath))
        return self


class FusionPipe(JsonCfgPipe):
    """Base of ``span_fusion`` and ``cats_fusion``: a pipe whose whole state is ``self.cfg``
    (sources, labels, fitted weights), fitted on examples the upstream pipes annotate."""

    def __init__(self, vocab, name: str, *, sources: Sequence[str], key: str, **settings: Any) -> None:
        self.vocab = vocab
        self.name = name
        if not isinstance(key, str) or not key:
            raise ValueError(Errors.E104.format(name=name, key="key", value=key, hint="Give a non-empty key."))
        self.cfg: Dict[str, Any] = {"sources": list(sources), "key": key, **settings,
                                    "labels": [], "weights": None, "n_fit": 0}

    @property
    def sources(self) -> List[str]:
        return list(self.cfg["sources"])

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def is_initialized(self) -> bool:
        return self.cfg["weights"] is not None

    def _require_initialized(self) -> None:
        if not self.is_initialized:
            raise ValueError(Errors.E100.format(name=self.name))

    # ---- fitting helpers ------------------------------------------------------------

    def _upstream(self, nlp: Optional[Language]) -> List[Tuple[str, Any]]:
        """The pipes before this one, disabled ones included (spaCy disables frozen pipes
        while it initializes the others); E511 without a pipeline."""
        if nlp is None or self.name not in nlp.component_names:
            raise ValueError(Errors.E511.format(name=self.name))
        names = list(nlp.component_names)
        return [(name, nlp.get_pipe(name)) for name in names[: names.index(self.name)]]

    def _annotated_examples(
        self,
        get_examples: Callable[[], Iterable[Example]],
        nlp: Optional[Language],
        dev_corpus: Optional[Callable[[Language], Iterable[Example]]],
        find_source: Callable[[Language, str, Any], Optional[str]],
    ) -> Tuple[List[Example], List[Doc]]:
        """The fitting examples (``dev_corpus`` if given, else ``get_examples()``) and copies
        of their docs annotated by every pipe before this one. With ``sources`` empty, the
        upstream pipes for which ``find_source(nlp, name, pipe)`` names a key become them."""
        validate_get_examples(get_examples, f"{type(self).__name__}.initialize")
        upstream = self._upstream(nlp)
        if not self.cfg["sources"]:
            self.cfg["sources"] = [s for name, pipe in upstream if (s := find_source(nlp, name, pipe))]
        if not self.cfg["sources"]:
            raise ValueError(Errors.E511.format(name=self.name))
        examples = list(dev_corpus(nlp) if dev_corpus is not None else get_examples())
        docs = run_pipes([pipe for _, pipe in upstream], [eg.predicted.copy() for eg in examples],
                         desc=f"{self.name}: sources")
        return examples, docs

    def _check_cfg(self, cfg: Dict[str, Any]) -> None:
        """Subclasses call this first: the weights as floats."""
        if cfg.get("weights") is not None:
            cfg["weights"] = [float(w) for w in cfg["weights"]]
