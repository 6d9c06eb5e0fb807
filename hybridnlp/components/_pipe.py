"""A spaCy ``Pipe`` base for hybridnlp's components that are not trained by gradient steps."""

from typing import Any, Dict, Iterable, Iterator, Tuple

from spacy import util
from spacy.pipeline import Pipe
from spacy.tokens import Doc


class BatchPipe(Pipe):
    """``__call__`` and ``pipe`` in terms of ``predict`` + ``set_annotations``.

    spaCy's ``Pipe.pipe`` calls the component one doc at a time; here ``pipe`` predicts a
    whole batch at once (vectorised classifiers, one pass over a batch's spans), gives the
    same result as calling the component on each doc, and reports a failing batch through
    the pipeline's error handler.
    """

    def __call__(self, doc: Doc) -> Doc:
        """Annotate one doc; returns it."""
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate a stream of docs, one batch at a time; yields them in order."""
        error_handler = self.get_error_handler()
        for docs in util.minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
                yield from docs
            except Exception as e:
                error_handler(self.name, self, docs, e)


def keep_given_settings(built: Dict[str, Any], loaded: Dict[str, Any], keys: Iterable[str]) -> Dict[str, Any]:
    """``loaded`` (a cfg read back from disk or bytes), with the settings among ``keys`` that
    the component was built with wherever they were given (not None).

    spaCy builds a loaded component from the pipeline's config, overrides included
    (``spacy.load(path, config={"components": {...}})``), and then reads its saved state. The
    settings named in ``keys`` only say how a fitted component's output is used or written
    (where it goes, whether it sets ``doc.ents``, a decision threshold), so the config's
    value is the one that holds; what was learned comes from the saved state.
    """
    out = dict(loaded)
    for key in keys:
        if built.get(key) is not None:
            out[key] = built[key]
    return out


class ConfigSettingsOnLoad:
    """Mixin for spaCy ``TrainablePipe`` subclasses, whose ``from_disk`` / ``from_bytes``
    replace ``cfg`` with the saved one: the settings named in ``CONFIG_SETTINGS`` keep the
    value the component was built with (see :func:`keep_given_settings`)."""

    CONFIG_SETTINGS: Tuple[str, ...] = ()

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()):
        built = dict(self.cfg)
        super().from_disk(path, exclude=exclude)
        self.cfg = keep_given_settings(built, self.cfg, self.CONFIG_SETTINGS)
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()):
        built = dict(self.cfg)
        super().from_bytes(bytes_data, exclude=exclude)
        self.cfg = keep_given_settings(built, self.cfg, self.CONFIG_SETTINGS)
        return self
