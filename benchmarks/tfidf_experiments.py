"""Accuracy of the ``tfidf_textcat`` component on the public corpora (train -> select on dev -> test).

Usage (one thread; HYBRIDNLP_DATA points at the corpora):

    OMP_NUM_THREADS=1 python benchmarks/tfidf_experiments.py trec6 banking77 sst2 sms_spam \
        [--set key=json_value ...]

Prints, per corpus: test accuracy, macro F1, the chosen C, fit time, and calibration quality
(log-loss and expected calibration error of the top label) on test.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import spacy
from spacy.training import Example

import hybridnlp.components.classical.tfidf_textcat  # noqa: F401  (registers the factory)


def read_jsonl(path: Path, nlp):
    rows = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    labels = sorted({r["label"] for r in rows})
    out = []
    for r in rows:
        doc = nlp.make_doc(r["text"])
        out.append(Example.from_dict(doc, {"cats": {lab: float(lab == r["label"]) for lab in labels}}))
    return out


def ece(probs: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-label confidence (equal-width bins)."""
    conf = probs.max(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def run(corpus: str, overrides: dict, data: Path) -> dict:
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("tfidf_textcat", config=overrides)
    train = read_jsonl(data / corpus / "train.jsonl", nlp)
    dev = read_jsonl(data / corpus / "dev.jsonl", nlp)
    test = read_jsonl(data / corpus / "test.jsonl", nlp)
    t0 = time.perf_counter()
    pipe.initialize(lambda: train, nlp=nlp, dev_corpus=lambda _nlp: dev)
    fit_s = time.perf_counter() - t0
    probs = pipe.predict([eg.predicted for eg in test])
    labels = list(pipe.labels)
    gold = np.array([labels.index(max(eg.reference.cats, key=eg.reference.cats.get)) for eg in test])
    pred = probs.argmax(axis=1)
    correct = (pred == gold).astype(float)
    f1s = []
    for k in range(len(labels)):
        tp = np.sum((pred == k) & (gold == k))
        denom = np.sum(pred == k) + np.sum(gold == k)
        f1s.append(2 * tp / denom if denom else 0.0)
    nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(gold)), gold], 1e-12, 1))))
    return {
        "corpus": corpus,
        "acc": round(float(correct.mean()), 4),
        "macro_f1": round(float(np.mean(f1s)), 4),
        "C": pipe.cfg["C_"],
        "char_analyzer": pipe.cfg["char_analyzer_"],
        "fit_s": round(fit_s, 1),
        "nll": round(nll, 4),
        "ece": round(ece(probs, correct), 4),
        "n_features": len(pipe._vocab_word) + len(pipe._vocab_char),
        "dev": pipe.cfg["selection_"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="+")
    parser.add_argument("--set", action="append", default=[], help="component setting key=json_value")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = json.loads(value)
    data = Path(os.environ.get("HYBRIDNLP_DATA", "/work/shared/corpora"))
    for corpus in args.corpora:
        print(json.dumps({"settings": overrides, **run(corpus, overrides, data)}), flush=True)


if __name__ == "__main__":
    main()
