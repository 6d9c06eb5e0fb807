#!/usr/bin/env python3
"""Quick difficulty check of the generated corpora with two plain baselines.

Trains TF-IDF (word 1-2-grams + char 2-5-grams) + LinearSVC on support_intents and a CRF
(sklearn-crfsuite, basic word-shape and context features) on field_notes_ner, both on
train, and prints test accuracy / seqeval entity F1 and training times, plus the F1 of a plain
lookup of the entity strings seen in train (what a gazetteer alone gets). Not part of the
library; it only checks that the corpora are neither trivial nor impossible.

    OMP_NUM_THREADS=1 python corpora/sanity_check.py
"""

import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def read_jsonl(path):
    rows = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def read_conll(path):
    sents = []
    for block in path.read_text(encoding="utf8").split("\n\n"):
        if block.strip():
            sents.append([tuple(line.split("\t")) for line in block.splitlines()])
    return sents


def word_features(sent, i):
    word = sent[i][0]
    feats = {
        "bias": 1.0, "w": word.lower(), "suf3": word[-3:].lower(), "pre3": word[:3].lower(),
        "title": word.istitle(), "upper": word.isupper(), "digit": word.isdigit(),
    }
    for offset in (-2, -1, 1, 2):
        j = i + offset
        if 0 <= j < len(sent):
            other = sent[j][0]
            feats["%d:w" % offset] = other.lower()
            feats["%d:title" % offset] = other.istitle()
        else:
            feats["%d:pad" % offset] = True
    return feats


def textcat(name="support_intents"):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    x_train, y_train = read_jsonl(HERE / name / "train.jsonl")
    start = time.perf_counter()
    model = make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        LinearSVC(C=1.0),
    )
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - start
    for split in ("dev", "test"):
        x, y = read_jsonl(HERE / name / ("%s.jsonl" % split))
        acc = sum(p == g for p, g in zip(model.predict(x), y)) / len(y)
        print("%s TF-IDF+LinearSVC %s accuracy: %.3f" % (name, split, acc))
    print("%s train time: %.2fs" % (name, seconds))


def ner(name="field_notes_ner"):
    import sklearn_crfsuite
    from seqeval.metrics import classification_report, f1_score

    train = read_conll(HERE / name / "train.conll")
    start = time.perf_counter()
    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=100)
    crf.fit([[word_features(s, i) for i in range(len(s))] for s in train],
            [[tag for _, tag in s] for s in train])
    seconds = time.perf_counter() - start
    for split in ("dev", "test"):
        sents = read_conll(HERE / name / ("%s.conll" % split))
        pred = crf.predict([[word_features(s, i) for i in range(len(s))] for s in sents])
        gold = [[tag for _, tag in s] for s in sents]
        print("%s CRF %s entity F1: %.3f" % (name, split, f1_score(gold, pred)))
        if split == "test":
            print(classification_report(gold, pred, digits=3))
    print("%s train time: %.2fs" % (name, seconds))


def gazetteer(name="field_notes_ner"):
    """Exact-match lookup of every entity string seen in train (longest match first)."""
    from collections import Counter
    from seqeval.metrics import f1_score

    votes = {}
    for sent in read_conll(HERE / name / "train.conll"):
        start = None
        for i, (_, tag) in enumerate(sent + [("", "O")]):
            if start is not None and not tag.startswith("I-"):
                key = tuple(tok for tok, _ in sent[start:i])
                votes.setdefault(key, Counter())[sent[start][1][2:]] += 1
                start = None
            if tag.startswith("B-"):
                start = i
    lexicon = {key: counts.most_common(1)[0][0] for key, counts in votes.items()}
    longest = max(len(key) for key in lexicon)
    sents = read_conll(HERE / name / "test.conll")
    pred = []
    for sent in sents:
        words = [tok for tok, _ in sent]
        tags = ["O"] * len(words)
        i = 0
        while i < len(words):
            for n in range(min(longest, len(words) - i), 0, -1):
                label = lexicon.get(tuple(words[i:i + n]))
                if label:
                    tags[i:i + n] = ["B-" + label] + ["I-" + label] * (n - 1)
                    i += n
                    break
            else:
                i += 1
        pred.append(tags)
    gold = [[tag for _, tag in s] for s in sents]
    print("%s train-gazetteer test entity F1: %.3f" % (name, f1_score(gold, pred)))


if __name__ == "__main__":
    textcat()
    ner()
    gazetteer()
