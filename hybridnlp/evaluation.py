"""Score a pipeline on examples with spaCy's Scorer, timing the pipeline as users run it.

One code path serves ``hybridnlp evaluate`` and the comparison harness, so every system is
scored the same way. Score names are spaCy's (``cats_macro_f``, ``ents_f``, ...), plus
``accuracy`` for exclusive text classification and ``words_per_second``.
"""

import time
from typing import Dict, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example


def trained_n_sents(nlp: Language) -> int:
    """How many corpus sentences the pipeline read as one doc when it was trained and
    selected: ``n_sents`` of its ``[corpora.dev]`` reader (1 when unset). Evaluating with
    the same grouping scores the model on the inputs it was tuned for."""
    value = ((nlp.config.get("corpora") or {}).get("dev") or {}).get("n_sents", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def read_eval_examples(nlp: Language, info, split: str, n_sents: Optional[int] = None) -> List[Example]:
    """The examples of ``info``'s ``split`` as ``nlp`` should read them: NER corpora grouped
    into docs of ``n_sents`` sentences (default: :func:`trained_n_sents`), text
    classification corpora one text per doc."""
    if info.task != "ner":
        return info.examples(split, nlp)
    return info.examples(split, nlp, n_sents=n_sents or trained_n_sents(nlp))


def pipeline_inputs(examples: Sequence[Example]) -> List:
    """What a user would feed the pipeline: raw text for text classification (so the
    tokenizer is timed too), the corpus's own tokens for pre-tokenized NER corpora."""
    inputs = []
    for eg in examples:
        if eg.reference.has_annotation("ENT_IOB") or not eg.reference.cats:
            inputs.append(eg.predicted.copy())
        else:
            inputs.append(eg.reference.text)
    return inputs


def run_pipeline(
    nlp: Language,
    examples: Sequence[Example],
    *,
    batch_size: int = 256,
    progress: Optional[str] = None,
) -> Tuple[List[Doc], float]:
    """Run ``nlp.pipe`` over the examples' inputs; return the docs and seconds taken."""
    inputs = pipeline_inputs(examples)
    stream = nlp.pipe(inputs, batch_size=batch_size)
    if progress:
        from tqdm import tqdm

        stream = tqdm(stream, total=len(inputs), desc=progress, unit="doc", leave=False)
    start = time.perf_counter()
    docs = list(stream)
    return docs, time.perf_counter() - start


def exclusive_accuracy(examples: Sequence[Example]) -> Optional[float]:
    """Share of docs whose top predicted category is the gold one (exclusive classes only)."""
    hits = total = 0
    for eg in examples:
        gold = eg.reference.cats
        if not gold or sum(1 for v in gold.values() if v >= 0.5) != 1:
            return None
        total += 1
        pred = eg.predicted.cats
        if pred and max(pred, key=pred.get) == max(gold, key=gold.get):
            hits += 1
    return hits / total if total else None


def score_docs(nlp: Language, examples: Sequence[Example], docs: Sequence[Doc]) -> Dict:
    """spaCy's scores for predicted docs against the examples' references."""
    scored = [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]
    scores = Scorer(nlp).score(scored)
    accuracy = exclusive_accuracy(scored)
    if accuracy is not None:
        scores["accuracy"] = accuracy
    return {k: v for k, v in scores.items() if v is not None}


def evaluate(
    nlp: Language,
    examples: Sequence[Example],
    *,
    batch_size: int = 256,
    progress: Optional[str] = "evaluating",
) -> Dict:
    """Run and score a pipeline: spaCy score names, ``accuracy`` where it applies,
    ``words_per_second`` and ``docs_per_second`` over the whole run."""
    docs, seconds = run_pipeline(nlp, examples, batch_size=batch_size, progress=progress)
    scores = score_docs(nlp, examples, docs)
    n_words = sum(len(doc) for doc in docs)
    scores["words_per_second"] = n_words / seconds if seconds else float("inf")
    scores["docs_per_second"] = len(docs) / seconds if seconds else float("inf")
    scores["n_docs"] = len(docs)
    scores.pop("speed", None)
    return scores
