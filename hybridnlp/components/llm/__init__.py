"""Zero-shot and prompted components: they classify with what a pretrained model already
knows, from a description of each label, without training on the task.

* ``zeroshot_textcat.py`` - ``zeroshot_textcat``: compares a text's sentence embedding with
  one embedding per label (its description, plus optionally a few examples).
* ``llm_textcat.py`` - ``llm_textcat``: prompts a language model with the labels and the
  text; ``parse_label`` reads a label out of a free-text answer.
* ``backends.py`` - the language models it prompts: a local Hugging Face causal LM
  (``hybridnlp.LocalLLM.v1``, which can also score every label as the answer) or an
  OpenAI-compatible server (``hybridnlp.ServerLLM.v1``); ``hybridnlp.LLM.v1`` picks by name.
* ``_labels.py`` - label sets, descriptions and examples, shared by both components.
"""
