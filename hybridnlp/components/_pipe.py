"""A spaCy ``Pipe`` base for hybridnlp's components that are not trained by gradient steps."""

from typing import Iterable, Iterator

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
