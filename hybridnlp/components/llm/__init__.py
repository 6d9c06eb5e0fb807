"""Zero-shot and prompted components: they classify with what a pretrained model already
knows, from a description of each label, without training on the task.

* ``zeroshot_textcat.py`` - ``zeroshot_textcat``: compares a text's sentence embedding with
  one embedding per label (its description, plus optionally a few examples).
* ``llm_textcat.py`` - ``llm_textcat``: prompts a language model with the labels and the
  text; ``parse_label`` reads a label out of a free-text answer.
* ``llm_ner.py`` - ``llm_ner``: prompts for ``TYPE: words`` lines, finds the words in the
  text; span confidence is the type's precision measured on dev texts.
* ``backends.py`` - the language models it prompts: a local Hugging Face causal LM
  (``hybridnlp.LocalLLM.v1``, which can also score every label as the answer) or an
  OpenAI-compatible server (``hybridnlp.ServerLLM.v1``); ``hybridnlp.LLM.v1`` picks by name.
* ``_labels.py``, ``_prompting.py`` - what the components share (labels, descriptions,
  examples; prompt checks, which docs are sent, saved prompts and answers).
"""
