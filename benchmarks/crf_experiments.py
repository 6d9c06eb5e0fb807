"""Train and score the ``crf_ner`` component on a CoNLL corpus (feature experiments).

Reads ``$HYBRIDNLP_DATA/<corpus>/{train,dev,test}.conll`` directly, fits the component
on one core, and prints strict entity P/R/F (spaCy's NER scorer) with the training time.

    OMP_NUM_THREADS=1 python benchmarks/crf_experiments.py conll2003 --split test
    python benchmarks/crf_experiments.py conll2003 --limit 3000 --max-iterations 60 \
        --features word affix shape case position context bigram casing clusters
"""

import argparse
import json
import os
import time
from pathlib import Path

import spacy
from spacy.tokens import Doc
from spacy.training import Example


def read_conll(path: Path, nlp, limit: int = 0):
    """Examples from a token<TAB>IOB2 file (predicted doc = the same words, no entities)."""
    examples, words, tags = [], [], []

    def flush():
        if words:
            ref = Doc(nlp.vocab, words=list(words), ents=list(tags))
            examples.append(Example(Doc(nlp.vocab, words=list(words)), ref))
        words.clear()
        tags.clear()

    with open(path, encoding="utf8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                flush()
                if limit and len(examples) >= limit:
                    break
                continue
            tok, tag = line.split("\t")
            words.append(tok)
            tags.append(tag)
    flush()
    return examples[:limit] if limit else examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--split", nargs="+", default=["dev"], choices=["dev", "test"])
    parser.add_argument("--limit", type=int, default=0, help="use the first N training sentences")
    parser.add_argument("--eval-limit", type=int, default=0)
    parser.add_argument("--max-iterations", type=int, default=None)
    parser.add_argument("--c1", type=float, default=None)
    parser.add_argument("--c2", type=float, default=None)
    parser.add_argument("--candidates", type=str, default=None,
                        help='JSON list of [c1, c2] pairs chosen on dev, e.g. "[[0.05,0.01],[0.2,0.01]]"')
    parser.add_argument("--features", nargs="*", default=None)
    parser.add_argument("--window", type=int, default=None)
    parser.add_argument("--cluster-sizes", type=int, nargs="*", default=None)
    parser.add_argument("--rule-ner", action="store_true", help="put a rule_ner before crf_ner")
    parser.add_argument("--save", type=str, default=None, help="save the pipeline here")
    args = parser.parse_args()

    data = Path(os.environ.get("HYBRIDNLP_DATA", "/work/shared/corpora")) / args.corpus
    nlp = spacy.blank("en")
    config = {}
    for key in ("max_iterations", "c1", "c2", "features", "window", "cluster_sizes"):
        value = getattr(args, key)
        if value is not None:
            config[key] = value
    if args.candidates:
        config["c_candidates"] = json.loads(args.candidates)
    if args.rule_ner:
        nlp.add_pipe("rule_ner")
    nlp.add_pipe("crf_ner", config=config)
    train = read_conll(data / "train.conll", nlp, args.limit)
    dev_reader = (lambda _nlp: read_conll(data / "dev.conll", nlp)) if args.candidates else None

    start = time.perf_counter()
    # What nlp.initialize does, in pipeline order, but with a Python callable as dev reader
    # (a config can only name registered readers).
    for name, proc in nlp.pipeline:
        kwargs = {"dev_corpus": dev_reader} if name == "crf_ner" and dev_reader else {}
        proc.initialize(lambda: train, nlp=nlp, **kwargs)
    train_seconds = time.perf_counter() - start

    crf = nlp.get_pipe("crf_ner")
    result = {
        "corpus": args.corpus,
        "train_sentences": len(train),
        "train_seconds": round(train_seconds, 1),
        "c1": crf.cfg["c1"],
        "c2": crf.cfg["c2"],
        "max_iterations": crf.cfg["max_iterations"],
        "selection": crf.cfg["selection"],
        "features": crf.cfg["features"],
        "gazetteer_labels": crf.cfg["gazetteer_labels"],
    }
    for split in args.split:
        evaluation = read_conll(data / f"{split}.conll", nlp, args.eval_limit)
        start = time.perf_counter()
        scores = nlp.evaluate(evaluation)
        result[split] = {
            "ents_p": round(scores["ents_p"], 4),
            "ents_r": round(scores["ents_r"], 4),
            "ents_f": round(scores["ents_f"], 4),
            "per_type": {k: round(v["f"], 4) for k, v in scores["ents_per_type"].items()},
            "eval_seconds": round(time.perf_counter() - start, 1),
        }
    print(json.dumps(result))
    if args.save:
        nlp.to_disk(args.save)


if __name__ == "__main__":
    main()
