"""One process with several threads, or several processes with one thread each?

Times ``nlp.pipe`` over the first ``--n`` texts of a corpus's test split with every trained
pipeline given, three ways, on the same texts and batch size:

* ``1 process``: torch on ``--threads`` threads (the classical components use one core);
* ``n_process``: ``nlp.pipe(texts, n_process=--threads)``, spaCy's forked workers, each
  with torch on one thread (hybridnlp sets that in a worker forked after torch ran);
* ``threads``: ``--threads`` Python threads calling ``nlp(text)``, as a web server's
  worker threads sharing one pipeline do.

Each way runs once to warm up, then ``--repeats`` times; the best run is kept. All outputs
are compared with the single-process ones (entities, top category); a row says how many
differ (a transformer on one thread can round differently from one on two).

    python benchmarks/parallel_speed.py --corpus conll2003 bench-out/conll2003-fast bench-out/conll2003-accurate

Take the figures on an otherwise idle machine: with other jobs running, two processes on
two cores measure the other jobs.
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm


def outputs(docs):
    return [([(e.start, e.end, e.label_) for e in doc.ents], max(doc.cats, key=doc.cats.get) if doc.cats else None)
            for doc in docs]


def best_time(run, repeats: int):
    result = run()  # warm-up (and the workers' start, for n_process, is timed in each run)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipelines", nargs="+")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import spacy
    import torch

    from hybridnlp.corpora import resolve_corpus

    torch.set_num_threads(args.threads)
    corpus = resolve_corpus(args.corpus)
    blank = spacy.blank("en")
    texts = [eg.reference.text for _, eg in zip(range(args.n), corpus.examples("test", blank))]
    words = sum(len(text.split()) for text in texts)
    print(f"{args.corpus}: {len(texts)} test texts, {words} words, batch {args.batch_size}, "
          f"{args.threads} threads / processes\n")
    print("| pipeline | 1 process, words/s | n_process, words/s | threads, words/s |")
    print("|---|---|---|---|")
    for path in tqdm(args.pipelines, desc="pipelines", leave=False):
        nlp = spacy.load(path)
        single_s, reference = best_time(lambda: outputs(nlp.pipe(texts, batch_size=args.batch_size)), args.repeats)
        procs_s, procs = best_time(
            lambda: outputs(nlp.pipe(texts, batch_size=args.batch_size, n_process=args.threads)), args.repeats)

        def threaded():
            with ThreadPoolExecutor(args.threads) as pool:
                return outputs(pool.map(nlp, texts))

        threads_s, threads = best_time(threaded, args.repeats)
        differ = sum(p != r for p, r in zip(procs, reference)) + sum(t != r for t, r in zip(threads, reference))
        note = f" ({differ} outputs differ from 1 process)" if differ else ""
        print(f"| {path} | {words / single_s:,.0f} | {words / procs_s:,.0f} | {words / threads_s:,.0f} |{note}",
              flush=True)


if __name__ == "__main__":
    main()
