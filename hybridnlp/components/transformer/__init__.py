"""Transformer components: the shared encoder and the text-classification and NER heads.

* ``architectures.py`` - registered constructors: ``hybridnlp.TransformerModel.v1`` (offline
  loading, safetensors storage), ``hybridnlp.TransformerListener.v1``,
  ``hybridnlp.TokenClassifier.v1``.
* ``encoder.py`` - the encoder model (imports torch; loaded only when a pipeline uses it).
* ``textcat.py`` - ``trf_textcat`` and ``trf_textcat_multilabel`` factories.
* ``ner.py`` - ``trf_ner`` factory; ``bio.py`` - its tag scheme and decoding.

The shared encoder itself is spacy-transformers' ``transformer`` pipe. Importing this package
is cheap; nothing heavy happens until a pipeline with these components is built.
"""
