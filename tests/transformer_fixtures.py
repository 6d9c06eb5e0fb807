"""Tiny randomly initialised BERT models and toy data for the transformer component tests.

The models are built in a temporary directory with a hand-written WordPiece vocabulary, so
the tests never touch a hub or real weights and run in seconds on one CPU core.
"""

import os
import shutil
from pathlib import Path
from typing import List

import pytest

if os.environ.get("HYBRIDNLP_TEST_GPU") == "1":
    # Run the same tests on a GPU (with mixed precision where a config asks for it).
    import spacy

    spacy.require_gpu()

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Whole words the toy corpora use; everything else falls back to characters and "##" pieces,
# so every text (also a long or odd one) tokenizes without [UNK] except emoji and the like.
WORDS = (
    "the a an and of in to is was it this that i you we he she they very good bad great "
    "awful love hate movie film book food service terrible wonderful boring fun like not "
    "visited lives works met went from at for with on by said today yesterday city company "
    "john mary paris london berlin google apple microsoft smith jones new york bank "
    "weather rain sunny cold hot sport football goal team music song band".split()
)
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-/&@#$%*+=")


def write_tiny_bert(path: Path, *, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0) -> Path:
    """Write a randomly initialised uncased BERT model + fast tokenizer to ``path``.

    Returns ``path``; it then loads like any local Hugging Face model directory.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = list(dict.fromkeys(SPECIAL_TOKENS + WORDS + CHARS + ["##" + c for c in CHARS]))
    vocab_file = path / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True, model_max_length=512)
    tokenizer.save_pretrained(str(path))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_bert_master(tmp_path_factory) -> Path:
    """One tiny BERT directory per test session (do not delete it: copy it with tiny_bert_dir)."""
    import torch

    torch.set_num_threads(1)
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert-master"))


@pytest.fixture
def tiny_bert_dir(tiny_bert_master, tmp_path) -> Path:
    """A private copy of the tiny BERT directory that a test may delete."""
    target = tmp_path / "tiny-bert"
    shutil.copytree(tiny_bert_master, target)
    return target


TEXTCAT_TRAIN = [
    ("I love this movie , it was great fun", "positive"),
    ("a wonderful book and very good food", "positive"),
    ("great service , we like it", "positive"),
    ("I hate this film , it was boring", "negative"),
    ("terrible food and awful service", "negative"),
    ("a very bad movie , not fun", "negative"),
]

MULTILABEL_TRAIN = [
    ("the weather is cold and rain", ["weather"]),
    ("sunny weather today", ["weather"]),
    ("the football team scored a goal", ["sport"]),
    ("the band played a song", ["music"]),
    ("the football team sang a song in the rain", ["sport", "music", "weather"]),
    ("music and football on a sunny day", ["sport", "music", "weather"]),
    ("I visited the bank", []),
]

# (words, BIO tags); capitalisation is what separates several entities from plain words.
NER_TRAIN = [
    ("John Smith visited Paris yesterday .".split(), ["B-PER", "I-PER", "O", "B-LOC", "O", "O"]),
    ("Mary Jones works at Google in London .".split(), ["B-PER", "I-PER", "O", "O", "B-ORG", "O", "B-LOC", "O"]),
    ("the apple is good and the bank is bad .".split(), ["O"] * 10),
    ("Apple and Microsoft met in Berlin today .".split(), ["B-ORG", "O", "B-ORG", "O", "O", "B-LOC", "O", "O"]),
    ("she lives in New York with Mary .".split(), ["O", "O", "O", "B-LOC", "I-LOC", "O", "B-PER", "O"]),
    ("we went to the city for music .".split(), ["O"] * 8),
]

ODD_TEXTS: List[str] = [
    "",
    "   ",
    "\n\t \n",
    "\x00\x01\x02 control \x1b[31m chars \x7f",
    "emoji 😀🎉👍🏽 only 🇫🇷",
    "😀",
    "good\u200bzero\u200dwidth",
    "ÅÉÎØÜ ß ﬁ",
]


def make_trf_nlp(
    model_dir: Path, head: str, head_config: dict = None, head_name: str = None, **encoder_settings
):
    """A blank English pipeline: ``transformer`` (tiny model, strided windows) + one head.

    encoder_settings: more arguments of ``hybridnlp.TransformerModel.v1`` (e.g. case_types).
    """
    import spacy

    import hybridnlp.components.transformer.architectures  # noqa: F401  (registers layers)
    import hybridnlp.components.transformer.ner  # noqa: F401  (registers factories)
    import hybridnlp.components.transformer.textcat  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "hybridnlp.TransformerModel.v1",
                "name": str(model_dir),
                "get_spans": {
                    "@span_getters": "spacy-transformers.strided_spans.v1",
                    "window": 128,
                    "stride": 96,
                },
                **encoder_settings,
            }
        },
    )
    nlp.add_pipe(head, name=head_name or head, config=head_config or {})
    return nlp


def textcat_examples(nlp, data=TEXTCAT_TRAIN):
    """Examples with exclusive cats (1.0 for the gold label, 0.0 for the others)."""
    from spacy.training import Example

    labels = sorted({label for _, label in data})
    return [
        Example.from_dict(nlp.make_doc(text), {"cats": {l: float(l == gold) for l in labels}})
        for text, gold in data
    ]


def multilabel_examples(nlp, data=MULTILABEL_TRAIN):
    """Examples with multi-label cats (every label seen in ``data`` is 0.0 or 1.0)."""
    from spacy.training import Example

    labels = sorted({label for _, gold in data for label in gold})
    return [
        Example.from_dict(nlp.make_doc(text), {"cats": {l: float(l in gold) for l in labels}})
        for text, gold in data
    ]


def ner_examples(nlp, data=NER_TRAIN):
    """Examples whose predicted doc has the gold tokenization and the reference has ents."""
    from spacy.tokens import Doc
    from spacy.training import Example

    return [Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, ents=tags)) for words, tags in data]


def gold_spans(words, tags):
    """(start, end, label) of the entities that BIO ``tags`` give ``words``."""
    import spacy
    from spacy.tokens import Doc

    return [(e.start, e.end, e.label_) for e in Doc(spacy.blank("en").vocab, words=words, ents=tags).ents]


def doc_spans(doc):
    """(start, end, label) of ``doc.ents``."""
    return [(e.start, e.end, e.label_) for e in doc.ents]


def train_steps(nlp, examples, n_steps: int, learn_rate: float, seed: int = 0):
    """Initialize ``nlp`` on ``examples`` and run ``n_steps`` full-batch updates.

    Returns the loss of the head (the last pipe) after each step.
    """
    from thinc.api import fix_random_seed

    fix_random_seed(seed)
    nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    optimizer.learn_rate = learn_rate
    head = nlp.pipe_names[-1]
    history = []
    for _ in range(n_steps):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        history.append(losses[head])
    return history


class RecordingOptimizer:
    """Passes every call on to a thinc optimizer and records each key's lr_scale."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.scales = {}

    def __call__(self, key, weights, gradient, *, lr_scale=1.0):
        self.scales[key] = lr_scale
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


def long_text(sentences: List[str], min_words: int = 700) -> str:
    """A document made by repeating ``sentences`` until it has at least ``min_words`` words."""
    words: List[str] = []
    while len(words) < min_words:
        for sentence in sentences:
            words.extend(sentence.split())
    return " ".join(words)


FRESH_PROCESS_SCRIPT = """
import json, sys
from importlib.metadata import entry_points
if "trf_ner" not in {ep.name for ep in entry_points(group="spacy_factories")}:
    # Until setup.cfg declares the entry points, register the factories by import.
    import hybridnlp.components.transformer.ner, hybridnlp.components.transformer.textcat
    import hybridnlp.components.transformer.architectures
import os, spacy
if os.environ.get("HYBRIDNLP_TEST_GPU") == "1":
    spacy.require_gpu()  # the same device as the test process, so the floats can agree
nlp = spacy.load(sys.argv[1])
texts = json.loads(sys.argv[2])
out = []
for doc in nlp.pipe(texts):
    out.append({"cats": doc.cats, "ents": [[e.start, e.end, e.label_] for e in doc.ents]})
print(json.dumps(out))
"""


def predict_in_fresh_process(pipeline_dir: Path, texts: List[str]):
    """Load ``pipeline_dir`` with ``spacy.load`` in a new Python process; return its outputs."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, str(pipeline_dir), json.dumps(texts)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
