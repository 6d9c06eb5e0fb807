"""Zero-shot and prompted components: they classify with what a pretrained model already
knows, from a description of each label, without training on the task.

* ``zeroshot_textcat.py`` - ``zeroshot_textcat``: compares a text's sentence embedding with
  one embedding per label (its description, plus optionally a few examples).
"""
