"""Throughput of ``tfidf_textcat`` inside spaCy against the bare scikit-learn model.

Fits the component on a corpus's train split, then times on the test split (one thread):

- component: ``nlp.pipe(texts, batch_size=B)`` of a pipeline holding only the tokenizer and
  the component (so spaCy's tokenization is counted against the component), docs/s;
- scikit-learn: the same features built the scikit-learn way, a ``FeatureUnion`` of
  ``TfidfVectorizer``s (word n-grams with sklearn's regex tokenizer, character n-grams),
  fitted on the same train texts, then ``LinearSVC.decision_function`` and the same
  calibration (softmax with the component's temperature, or Platt sigmoids), in batches of
  B raw texts. The component's extra start-of-text features have no scikit-learn
  counterpart, so the baseline does a little less work than the component.

Usage:

    OMP_NUM_THREADS=1 python benchmarks/tfidf_speed.py banking77 [--batch-size 1000] \
        [--repeats 3] [--set key=json_value ...]

Prints both throughputs (docs/s, best of ``repeats`` alternating runs) and the ratio component / sklearn.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import spacy  # noqa: E402
from spacy.training import Example  # noqa: E402

import hybridnlp.components.classical.tfidf_textcat as tt  # noqa: E402


def read_jsonl(path: Path):
    rows = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def sklearn_model(pipe: "tt.TfidfTextCategorizer", texts, labels):
    """The bare scikit-learn counterpart of the fitted component, and its predict function."""
    from sklearn.pipeline import FeatureUnion
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    cfg = pipe.cfg
    parts = []
    if cfg["word_ngram_range"]:
        parts.append(("word", TfidfVectorizer(ngram_range=tuple(cfg["word_ngram_range"]), sublinear_tf=cfg["sublinear_tf"],
                                              min_df=cfg["min_df"], lowercase=cfg["word_lowercase"])))
    if cfg["char_ngram_range"]:
        parts.append(("char", TfidfVectorizer(analyzer=cfg["char_analyzer_"], ngram_range=tuple(cfg["char_ngram_range"]),
                                              sublinear_tf=cfg["sublinear_tf"], min_df=cfg["min_df"],
                                              lowercase=cfg["char_lowercase"])))
    union = FeatureUnion(parts)
    X = union.fit_transform(texts)
    y = np.array([pipe.labels.index(label) for label in labels])
    clf = LinearSVC(C=cfg["C_"], class_weight=cfg["class_weight"], max_iter=cfg["max_iter"],
                    multi_class=cfg["multi_class"], random_state=0).fit(X, y)
    a, b = pipe._arrays["cal_a"], pipe._arrays["cal_b"]
    method, multi_label = cfg["calibration"], cfg["multi_label"]

    def predict(batch):
        scores = clf.decision_function(union.transform(batch))
        if scores.ndim == 1:
            scores = np.stack([-scores, scores], axis=1)
        return tt._apply_calibration(scores, a, b, method, multi_label)

    return predict


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--set", action="append", default=[], help="component setting key=json_value")
    args = parser.parse_args()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    data = Path(os.environ.get("HYBRIDNLP_DATA", "/work/shared/corpora")) / args.corpus
    train_texts, train_labels = read_jsonl(data / "train.jsonl")
    test_texts, _ = read_jsonl(data / "test.jsonl")
    # One C, one analyzer and two folds: the timing does not depend on how they were chosen.
    config = {"C": 1.0, "calibration_folds": 2, "char_analyzer": "char_wb"}
    config.update({k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)})
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("tfidf_textcat", config=config)
    names = sorted(set(train_labels))
    train = [Example.from_dict(nlp.make_doc(t), {"cats": {n: float(n == g) for n in names}})
             for t, g in zip(train_texts, train_labels)]
    t0 = time.perf_counter()
    nlp.initialize(lambda: train)
    fit_s = time.perf_counter() - t0
    predict = sklearn_model(pipe, train_texts, train_labels)

    bs = args.batch_size

    def run_component():
        for _ in nlp.pipe(test_texts, batch_size=bs):
            pass

    def run_sklearn():
        for i in range(0, len(test_texts), bs):
            predict(test_texts[i : i + bs])

    run_component(), run_sklearn()  # warm-up
    # Alternate the two so that a busy moment of a shared machine hits both alike.
    comp_s, skl_s = [], []
    for _ in range(args.repeats):
        comp_s.append(best_time(run_component, 1))
        skl_s.append(best_time(run_sklearn, 1))
    n = len(test_texts)
    comp, skl = n / min(comp_s), n / min(skl_s)
    agree = np.mean(
        pipe.predict([nlp.make_doc(t) for t in test_texts]).argmax(1) == predict(test_texts).argmax(1)
    )
    print(json.dumps({
        "corpus": args.corpus, "docs": n, "batch_size": bs, "settings": config, "fit_s": round(fit_s, 1),
        "component_docs_per_s": round(comp), "sklearn_docs_per_s": round(skl), "ratio": round(comp / skl, 3),
        "argmax_agreement": round(float(agree), 4),
    }))


if __name__ == "__main__":
    main()
