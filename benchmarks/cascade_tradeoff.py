"""What a trained cascade pipeline trades: quality against the share of documents it sends to
its expensive components, on a test split, and the speed of three settings in one run.

    OMP_NUM_THREADS=2 python benchmarks/cascade_tradeoff.py bench-out/banking77-cascade --corpus banking77

Every test document goes through both routes once (the cheap components, then the expensive
ones), so the quality of every threshold comes from one pass: the printed table gives it at
a few shares routed, and at the threshold the pipeline chose on dev. Then ``nlp.pipe`` over
the test texts is timed (``--repeats`` times each, alternating, best kept) with nothing sent
on, with the pipeline's own threshold and with everything sent on. ``--plot FILE.png`` draws
the test curve.
"""

import argparse
import time
from pathlib import Path


def run(nlp, inputs, batch_size: int) -> float:
    start = time.perf_counter()
    for _ in nlp.pipe(inputs, batch_size=batch_size):
        pass
    return time.perf_counter() - start


def at_share(curve, share: float):
    """The curve's point whose routed share is closest to ``share`` (the smaller on ties)."""
    return min(curve, key=lambda p: (abs(p["routed"] - share), p["routed"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", type=Path, help="a trained cascade pipeline (hybridnlp train cascade)")
    parser.add_argument("--corpus", required=True, help="corpus name under $HYBRIDNLP_DATA, or a path")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2, help="0: the quality table only, no timing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", type=Path, default=None, help="write the test curve to this PNG")
    args = parser.parse_args()

    import spacy
    import torch

    from hybridnlp.corpora import resolve_corpus
    from hybridnlp.evaluation import pipeline_inputs, read_eval_examples

    torch.set_num_threads(args.threads)
    nlp = spacy.load(args.pipeline)
    cascade = nlp.get_pipe("cascade")
    info = resolve_corpus(args.corpus)
    examples = read_eval_examples(nlp, info, args.split)
    metric = "entity F1" if cascade.cfg["kind"] == "spans" else (
        "micro-F1" if cascade.cfg["multi_label"] else "accuracy")
    chosen = cascade.route_threshold
    curve = cascade.tradeoff(examples)
    own = max((p for p in curve if p["threshold"] <= chosen), key=lambda p: p["threshold"])
    print(f"{args.pipeline} on {info.name}/{args.split} ({len(examples)} docs); {metric}")
    print(f"{'setting':<34} {'routed':>7} {metric:>10}")
    for share in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0):
        point = at_share(curve, share)
        print(f"{'threshold ' + format(point['threshold'], '.4f'):<34} {point['routed']:>7.1%} {point['quality']:>10.4f}")
    print(f"{'the pipeline own (dev) ' + format(chosen, '.4f'):<34} {own['routed']:>7.1%} {own['quality']:>10.4f}")

    if args.repeats < 1:
        return plot(args, curve, cascade, own, info, metric)
    inputs = pipeline_inputs(examples)
    n_words = sum(len(eg.reference) for eg in examples)
    settings = [("nothing sent on", 0.0), ("the pipeline's threshold", chosen), ("everything sent on", 1.0 + 1e-9)]
    times = {name: [] for name, _ in settings}
    run(nlp, inputs[: args.batch_size], args.batch_size)  # warm-up
    for _ in range(args.repeats):
        for name, threshold in settings:
            cascade.cfg["route_threshold"] = threshold
            times[name].append(run(nlp, inputs, args.batch_size))
    cascade.cfg["route_threshold"] = chosen
    print(f"\nnlp.pipe, batch {args.batch_size}, {args.threads} threads, best of {args.repeats}:")
    for name, _ in settings:
        best = min(times[name])
        print(f"{name:<26} {len(inputs) / best:>8.1f} docs/s {n_words / best:>9.0f} words/s "
              f"(runs: {', '.join(f'{t:.1f}s' for t in times[name])})")

    plot(args, curve, cascade, own, info, metric)


def plot(args, curve, cascade, own, info, metric: str) -> None:
    """Draw the test curve, the saved dev curve and the pipeline's own share (``--plot``)."""
    if not args.plot:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p["routed"] for p in curve], [p["quality"] for p in curve], label=args.split)
    dev = cascade.dev_curve()
    ax.plot([p["routed"] for p in dev], [p["quality"] for p in dev], "--", label="dev (saved)")
    ax.axvline(own["routed"], color="grey", lw=0.8)
    ax.set_xlabel("share of documents sent to the expensive components")
    ax.set_ylabel(metric)
    ax.set_title(f"cascade on {info.name}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=120)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
