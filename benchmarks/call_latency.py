"""Time per ``nlp(text)`` call: one text at a time, as a server handles a request.

    OMP_NUM_THREADS=1 python benchmarks/call_latency.py --corpus banking77 bench-out/banking77-fast

Calls each pipeline on the first ``--n`` test texts of the corpus after a warm-up on 100 of
them, ``--repeats`` times; prints the best mean time per call. Take it on an idle machine.
"""

import argparse
import time

from tqdm import tqdm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipelines", nargs="+")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import spacy

    from hybridnlp.corpora import resolve_corpus

    corpus = resolve_corpus(args.corpus)
    for path in args.pipelines:
        nlp = spacy.load(path)
        texts = [eg.reference.text for _, eg in zip(range(args.n), corpus.examples("test", nlp))]
        for text in texts[:100]:
            nlp(text)
        best = float("inf")
        for _ in tqdm(range(args.repeats), desc=path, leave=False):
            start = time.perf_counter()
            for text in texts:
                nlp(text)
            best = min(best, (time.perf_counter() - start) / len(texts))
        print(f"{path}: {best * 1e3:.3f} ms per nlp(text) call ({len(texts)} {args.corpus} test texts, best of {args.repeats})")


if __name__ == "__main__":
    main()
