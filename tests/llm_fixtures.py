"""A tiny randomly initialised causal language model and fake backends for the prompted
components' tests (no hub, no real weights, no server outside the test)."""

from pathlib import Path
from typing import List, Sequence

import numpy as np
from spacy.util import registry

try:
    from .transformer_fixtures import CHARS, SPECIAL_TOKENS, WORDS
except ImportError:  # tests/ is not a package
    from transformer_fixtures import CHARS, SPECIAL_TOKENS, WORDS


def write_tiny_causal_lm(path: Path, *, seed: int = 0, chat_template: str = None, safetensors: bool = True) -> Path:
    """A 2-layer GPT-2 with the tests' WordPiece vocabulary, saved like any local model
    (``safetensors=False``: as a pickled ``pytorch_model.bin``)."""
    import torch
    from transformers import BertTokenizerFast, GPT2Config, GPT2LMHeadModel

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = list(dict.fromkeys(SPECIAL_TOKENS + WORDS + ["positive", "negative", "category", "text"]
                               + CHARS + ["##" + c for c in CHARS]))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True, model_max_length=1024)
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(str(path))
    config = GPT2Config(vocab_size=len(vocab), n_positions=1024, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=2, eos_token_id=3, pad_token_id=0)
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(str(path), safe_serialization=safetensors)
    return path


class KeywordLLM:
    """Answers by keywords in the prompt's text line; records what it was asked."""

    def __init__(self) -> None:
        self.asked: List[str] = []

    def generate(self, prompts: Sequence[str]) -> List[str]:
        self.asked.extend(prompts)
        out = []
        for prompt in prompts:
            text = prompt.split("Text: ")[-1].split("\n")[0].lower()
            if "love" in text or "great" in text:
                out.append("Positive.")
            elif "hate" in text or "bad" in text:
                out.append("The category is negative, clearly.")
            else:
                out.append("I cannot tell.")
        return out


class KeywordScorer(KeywordLLM):
    """Also scores answers: log P(label) = number of the label's keywords in the text."""

    KEYWORDS = {"positive": ("love", "great", "good"), "negative": ("hate", "bad", "boring")}

    def score_choices(self, prompts: Sequence[str], choices: Sequence[str]) -> np.ndarray:
        self.asked.extend(prompts)
        rows = []
        for prompt in prompts:
            text = prompt.split("Text: ")[-1].split("\n")[0].lower()
            rows.append([float(sum(text.count(w) for w in self.KEYWORDS.get(c, ()))) for c in choices])
        return np.array(rows)


@registry.misc("test.KeywordLLM.v1")
def create_keyword_llm() -> KeywordLLM:
    return KeywordLLM()


@registry.misc("test.KeywordScorer.v1")
def create_keyword_scorer() -> KeywordScorer:
    return KeywordScorer()


class GazetteerLLM:
    """Answers an entity prompt from a fixed list of names (case-insensitive), adding a line
    with an unknown type and one with words not in the text; records what it was asked."""

    NAMES = {"john smith": "PER", "mary jones": "PER", "paris": "LOC", "london": "LOC", "google": "ORG",
             "new york": "LOC", "apple": "ORG"}

    def __init__(self) -> None:
        self.asked: List[str] = []

    def generate(self, prompts: Sequence[str]) -> List[str]:
        self.asked.extend(prompts)
        out = []
        for prompt in prompts:
            text = prompt.split("Text: ")[-1].split("\n")[0]
            lines = [f"- {label}: {name.title()}" for name, label in self.NAMES.items() if name in text.lower()]
            out.append("\n".join(lines + ["FOO: bar", "ORG: Nowhere Corp"]) if lines else "NONE")
        return out


@registry.misc("test.GazetteerLLM.v1")
def create_gazetteer_llm() -> GazetteerLLM:
    return GazetteerLLM()
