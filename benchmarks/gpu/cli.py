"""hybridnlp's CLI without installation: import the modules that register factories/readers."""
import sys

import hybridnlp.components.transformer.architectures  # noqa: F401
import hybridnlp.components.transformer.ner  # noqa: F401
import hybridnlp.components.transformer.textcat  # noqa: F401
import hybridnlp.corpora  # noqa: F401
from hybridnlp.cli import main

sys.argv = ["hybridnlp"] + sys.argv[1:]
main()
