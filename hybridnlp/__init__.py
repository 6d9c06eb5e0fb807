"""hybridnlp: classical and transformer NLP components for spaCy.

Importing the package is cheap on purpose: spaCy imports every ``spacy_factories``
entry point on each ``spacy.load``, so heavy libraries (scikit-learn, torch) are only
imported inside the components that need them.
"""

__version__ = "0.1.0"
