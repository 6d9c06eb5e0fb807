"""Training speed of a profile: gradient steps, docs and words per second of ``nlp.update``.

The pipeline is built and initialized exactly as ``hybridnlp train`` builds it (the profile's
config for the corpus, its batcher, optimizer and dropout), then ``--warmup`` steps run
untimed and ``--steps`` steps are timed. No dev evaluation, no saving: only the update loop.

    OMP_NUM_THREADS=2 python benchmarks/train_speed.py --corpus banking77 --steps 30 --threads 2
    python benchmarks/train_speed.py --corpus conll2003 --steps 200 --gpu-id 0

Prints one line: steps/s, docs/s, words/s, the device and the batch sizes seen.
"""

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="accurate")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--model", default=None, help="paths.transformer override (a local model directory)")
    args = parser.parse_args()

    import torch
    from tqdm import tqdm
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import create_train_batches
    from spacy.util import registry, resolve_dot_names
    from thinc.api import require_gpu

    import hybridnlp.components.transformer.architectures  # noqa: F401  (registered without installing)
    import hybridnlp.components.transformer.ner  # noqa: F401
    import hybridnlp.components.transformer.textcat  # noqa: F401
    from hybridnlp.corpora import resolve_corpus
    from hybridnlp.training import load_training_config

    torch.set_num_threads(args.threads)
    if args.gpu_id >= 0:
        require_gpu(args.gpu_id)
    info = resolve_corpus(args.corpus)
    overrides = {"paths.transformer": args.model} if args.model else {}
    config = load_training_config(args.profile, info, overrides)
    nlp = init_nlp(config, use_gpu=args.gpu_id)
    resolved = nlp.config.interpolate()
    T = registry.resolve(resolved["training"])
    (train_corpus,) = resolve_dot_names(resolved, [T["train_corpus"]])
    optimizer = T["optimizer"]
    frozen = T["frozen_components"]
    batches = create_train_batches(nlp, train_corpus, T["batcher"], T["max_epochs"] or 0)

    def step() -> tuple:
        _, batch = next(batches)
        nlp.update(batch, drop=T["dropout"], sgd=optimizer, losses={}, exclude=frozen,
                   annotates=T["annotating_components"])
        return len(batch), sum(len(eg.predicted) for eg in batch)

    def sync() -> None:
        if args.gpu_id >= 0:
            torch.cuda.synchronize()

    for _ in tqdm(range(args.warmup), desc="warm-up", leave=False):
        step()
    sync()
    start = time.perf_counter()
    sizes = [step() for _ in tqdm(range(args.steps), desc="timed steps", leave=False)]
    sync()
    seconds = time.perf_counter() - start
    docs, words = sum(s[0] for s in sizes), sum(s[1] for s in sizes)
    device = torch.cuda.get_device_name(args.gpu_id) if args.gpu_id >= 0 else f"cpu, {args.threads} threads"
    print(f"{args.profile} on {info.name}: {args.steps / seconds:.2f} steps/s, {docs / seconds:.0f} docs/s, "
          f"{words / seconds:.0f} words/s ({args.steps} steps after {args.warmup} warm-up, "
          f"{docs / args.steps:.1f} docs / {words / args.steps:.0f} words per batch; {device})")


if __name__ == "__main__":
    main()
